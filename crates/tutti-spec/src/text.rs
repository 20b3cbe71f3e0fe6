//! Display text: titles, names, labels and units that people read on phones and on the big
//! screen. Such text must look like what it says, so [`display_problem`] refuses control
//! characters, bidirectional controls (which reorder what follows, e.g. U+202E RIGHT-TO-LEFT
//! OVERRIDE) and invisible format characters (zero-width space, word joiner, BOM, soft hyphen,
//! tags, fillers, …). The zero-width joiner and non-joiner are allowed only between two
//! visible non-ASCII characters, where emoji sequences and scripts such as Persian need them.
//!
//! Must never: accept a character that renders as nothing or reorders the text around it
//! (outside those joins), or count length in bytes (limits are in characters).

/// Why `text` is not fit to display, naming the first offending character; `None` if it is.
pub fn display_problem(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.iter().enumerate().find_map(|(i, &c)| {
        let what = if c.is_control() {
            "control characters"
        } else if is_bidi_control(c) {
            "bidirectional control characters"
        } else if (is_invisible(c) && !is_allowed_tag(&chars, i))
            || (is_joiner(c) && !joins_visible(&chars, i))
        {
            "invisible characters"
        } else {
            return None;
        };
        Some(format!(
            "must not contain {what} (U+{:04X} at character {})",
            u32::from(c),
            i + 1
        ))
    })
}

/// Checks a display text's length in characters and its characters; the problem, if any.
pub fn check_display(text: &str, min: usize, max: usize) -> Option<String> {
    let n = text.chars().count();
    if n < min || n > max {
        return Some(format!("must be {min}–{max} characters (got {n})"));
    }
    if min > 0 && text.trim().is_empty() {
        return Some("must not be blank".to_owned());
    }
    display_problem(text)
}

/// Explicit bidirectional formatting: embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that render as nothing (or only break lines) and have no place in a title.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// A tag character continuing a flag sequence (U+1F3F4 followed by tags, as in 🏴󠁧󠁢󠁳󠁣󠁴󠁿).
fn is_allowed_tag(chars: &[char], i: usize) -> bool {
    let is_tag = |c: char| ('\u{E0020}'..='\u{E007F}').contains(&c);
    is_tag(chars[i])
        && chars[..i]
            .iter()
            .rev()
            .find(|&&c| !is_tag(c))
            .is_some_and(|&c| c == '\u{1F3F4}')
}

/// Whether the joiner at `i` sits between two visible non-ASCII characters.
fn joins_visible(chars: &[char], i: usize) -> bool {
    let visible = |c: &char| {
        !c.is_ascii()
            && !c.is_whitespace()
            && !is_invisible(*c)
            && !is_bidi_control(*c)
            && !is_joiner(*c)
    };
    i > 0 && chars.get(i - 1).is_some_and(visible) && chars.get(i + 1).is_some_and(visible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_of_any_script_is_fine() {
        for ok in [
            "Murmuration (Tutti demo)",
            "Été à Montréal",
            "Ἀρχή",
            "東京の夜",
            "שלום עולם",
            "\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}", // Persian, ZWNJ
            "\u{1F469}\u{200D}\u{1F3A4} Rock",                           // a joined emoji
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}", // variation selector, joiner, rainbow
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}", // Scotland
        ] {
            assert_eq!(display_problem(ok), None, "{ok:?}");
        }
    }

    #[test]
    fn reordering_and_invisible_characters_are_named() {
        for (bad, what, at) in [
            (
                "abc\u{202E}gpj.exe",
                "bidirectional control characters (U+202E",
                4,
            ),
            ("\u{2067}x", "bidirectional control characters (U+2067", 1),
            ("ad\u{200B}min", "invisible characters (U+200B", 3),
            ("ad\u{200D}min", "invisible characters (U+200D", 3),
            ("\u{FEFF}Title", "invisible characters (U+FEFF", 1),
            ("soft\u{00AD}hyphen", "invisible characters (U+00AD", 5),
            ("x\u{E0041}", "invisible characters (U+E0041", 2),
            ("a\nb", "control characters (U+000A", 2),
        ] {
            let p = display_problem(bad).unwrap_or_default();
            assert!(p.contains(what), "{bad:?}: {p}");
            assert!(p.ends_with(&format!("at character {at})")), "{bad:?}: {p}");
        }
    }

    #[test]
    fn lengths_are_in_characters() {
        assert_eq!(check_display(&"é".repeat(200), 1, 200), None);
        assert_eq!(
            check_display(&"é".repeat(201), 1, 200).as_deref(),
            Some("must be 1–200 characters (got 201)")
        );
        assert_eq!(
            check_display("   ", 1, 200).as_deref(),
            Some("must not be blank")
        );
    }
}
