//! `/play <sound>`: a message that plays one of Tutti's own short sounds on the phones and
//! pages following its room. The set is fixed here; the sounds themselves are synthesized by
//! the pages (`web/sounds.js`, Web Audio, no sample files), so nothing is downloaded and
//! every name on this list has a recipe there (a Chromium test renders each one).
//!
//! Must never: accept a name not on the list (the message is refused with `unknown_sound`,
//! naming the ones there are), or treat text that merely mentions `/play` mid-sentence as a
//! command.

/// The sounds `/play` knows, in the order the pages list them.
pub const SOUNDS: &[&str] = &[
    "applause", "bell", "crickets", "drumroll", "gong", "horn", "rimshot", "tada", "trombone",
    "whoosh",
];

/// The most characters of an unknown name echoed back in an error.
const ECHO_CHARS: usize = 32;

/// What a message's text asks to play: `None` when it is not a `/play` command (it does not
/// start with `/play` followed by a space or its end), `Some(Ok(sound))` for a known sound,
/// `Some(Err(name))` for a missing or unknown one (the name cut to 32 characters).
pub fn play_command(text: &str) -> Option<Result<&'static str, String>> {
    let rest = text.trim().strip_prefix("/play")?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let name = rest.trim();
    match SOUNDS.iter().find(|s| s.eq_ignore_ascii_case(name)) {
        Some(s) => Some(Ok(s)),
        None => Some(Err(name.chars().take(ECHO_CHARS).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_play_command_names_a_known_sound_or_is_refused() {
        assert_eq!(play_command("/play tada"), Some(Ok("tada")));
        assert_eq!(play_command("  /play   Trombone \n"), Some(Ok("trombone")));
        assert_eq!(play_command("/play"), Some(Err(String::new())));
        assert_eq!(play_command("/play kazoo"), Some(Err("kazoo".into())));
        assert_eq!(
            play_command(&format!("/play {}", "x".repeat(100))),
            Some(Err("x".repeat(32)))
        );
        // Not commands: text that only mentions it, or a longer word.
        assert_eq!(play_command("try /play tada"), None);
        assert_eq!(play_command("/playlist tada"), None);
        assert_eq!(play_command("hello"), None);
    }

    #[test]
    fn the_list_is_sorted_lowercase_and_without_repeats() {
        let mut sorted = SOUNDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, SOUNDS);
        assert!(SOUNDS
            .iter()
            .all(|s| s.chars().all(|c| c.is_ascii_lowercase())));
    }
}
