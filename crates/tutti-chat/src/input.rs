//! Validated newtypes for what users type: each can only be built through `parse`, which
//! either returns a value that is safe to store and show or a [`ChatInputError`] with a stable
//! [`code`](ChatInputError::code).
//!
//! Characters that make text look like something else are refused everywhere: bidirectional
//! embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, the "Trojan Source"
//! characters) and invisible characters with no business in chat (zero-width space, word
//! joiner, invisible operators, byte order mark, …). Joiners (U+200C, U+200D) stay allowed:
//! emoji sequences and Persian need them.

use std::fmt;

/// The most characters (Unicode scalar values) in a message.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The most characters in a boost.
pub const MAX_BOOST_CHARS: usize = 16;
/// The most characters in a display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// The most bytes in a client message id.
pub const MAX_CLIENT_MESSAGE_ID_LEN: usize = 64;

/// Why a piece of input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatInputError {
    /// Nothing left after trimming.
    #[error("{field} must not be empty")]
    Empty {
        /// What was refused (`text`, `boost`, `display_name`, `client_message_id`).
        field: &'static str,
    },
    /// Longer than allowed.
    #[error("{field} is longer than {max} {unit} ({len})")]
    TooLong {
        /// What was refused.
        field: &'static str,
        /// The limit.
        max: usize,
        /// The length found.
        len: usize,
        /// `characters` or `bytes`.
        unit: &'static str,
    },
    /// The bytes are not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// What was refused.
        field: &'static str,
    },
    /// A character that hides or reorders text.
    #[error("{field} contains {name} (U+{code:04X}), which is not allowed", code = u32::from(*ch))]
    ForbiddenCharacter {
        /// What was refused.
        field: &'static str,
        /// The character.
        ch: char,
        /// Its description.
        name: &'static str,
    },
    /// A control character (other than newline and tab in a message).
    #[error("{field} contains the control character U+{code:04X}", code = u32::from(*ch))]
    ControlCharacter {
        /// What was refused.
        field: &'static str,
        /// The character.
        ch: char,
    },
    /// Not in the required format.
    #[error("{field} {reason}")]
    Format {
        /// What was refused.
        field: &'static str,
        /// What the format is.
        reason: &'static str,
    },
    /// A `/play` command with a sound Tutti does not have.
    #[error("{field}: /play knows no sound {name:?}; the sounds are {}", crate::SOUNDS.join(", "))]
    UnknownSound {
        /// What was refused.
        field: &'static str,
        /// The name asked for (at most 32 characters of it).
        name: String,
    },
}

impl ChatInputError {
    /// A stable code for the wire: `empty`, `too_long`, `invalid_utf8`, `forbidden_character`,
    /// `control_character`, `invalid_format` or `unknown_sound`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty { .. } => "empty",
            Self::TooLong { .. } => "too_long",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::ForbiddenCharacter { .. } => "forbidden_character",
            Self::ControlCharacter { .. } => "control_character",
            Self::Format { .. } => "invalid_format",
            Self::UnknownSound { .. } => "unknown_sound",
        }
    }

    /// The input field it is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Empty { field }
            | Self::TooLong { field, .. }
            | Self::InvalidUtf8 { field }
            | Self::ForbiddenCharacter { field, .. }
            | Self::ControlCharacter { field, .. }
            | Self::Format { field, .. }
            | Self::UnknownSound { field, .. } => field,
        }
    }
}

/// The name of a character that is refused in any chat text, if `c` is one.
fn forbidden(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{202A}' => "a left-to-right embedding",
        '\u{202B}' => "a right-to-left embedding",
        '\u{202C}' => "a pop directional formatting",
        '\u{202D}' => "a left-to-right override",
        '\u{202E}' => "a right-to-left override",
        '\u{2066}' => "a left-to-right isolate",
        '\u{2067}' => "a right-to-left isolate",
        '\u{2068}' => "a first strong isolate",
        '\u{2069}' => "a pop directional isolate",
        '\u{200B}' => "a zero-width space",
        '\u{2060}' => "a word joiner",
        '\u{2061}'..='\u{2064}' => "an invisible operator",
        '\u{206A}'..='\u{206F}' => "a deprecated format character",
        '\u{FEFF}' => "a zero-width no-break space (byte order mark)",
        '\u{180E}' => "a Mongolian vowel separator",
        '\u{FFF9}'..='\u{FFFB}' => "an interlinear annotation character",
        _ => return None,
    })
}

/// Checks every character: no forbidden ones, no controls except those `allowed`.
fn check_chars(field: &'static str, s: &str, allowed: &[char]) -> Result<(), ChatInputError> {
    for ch in s.chars() {
        if let Some(name) = forbidden(ch) {
            return Err(ChatInputError::ForbiddenCharacter { field, ch, name });
        }
        if ch.is_control() && !allowed.contains(&ch) {
            return Err(ChatInputError::ControlCharacter { field, ch });
        }
    }
    Ok(())
}

fn check_chars_len(field: &'static str, s: &str, max: usize) -> Result<(), ChatInputError> {
    let len = s.chars().count();
    if len > max {
        return Err(ChatInputError::TooLong {
            field,
            max,
            len,
            unit: "characters",
        });
    }
    Ok(())
}

fn utf8<'a>(field: &'static str, bytes: &'a [u8]) -> Result<&'a str, ChatInputError> {
    std::str::from_utf8(bytes).map_err(|_| ChatInputError::InvalidUtf8 { field })
}

macro_rules! text_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A message's text: line endings made `\n`, trailing whitespace removed, not empty after
/// trimming, at most [`MAX_MESSAGE_CHARS`] characters, no control characters but newline and
/// tab, no forbidden characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageText(String);

impl MessageText {
    /// Checks and normalises a message.
    pub fn parse(text: &str) -> Result<Self, ChatInputError> {
        const FIELD: &str = "text";
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        let kept = normalised.trim_end();
        if kept.trim().is_empty() {
            return Err(ChatInputError::Empty { field: FIELD });
        }
        check_chars_len(FIELD, kept, MAX_MESSAGE_CHARS)?;
        check_chars(FIELD, kept, &['\n', '\t'])?;
        if let Some(Err(name)) = crate::sounds::play_command(kept) {
            return Err(ChatInputError::UnknownSound { field: FIELD, name });
        }
        Ok(Self(kept.to_owned()))
    }

    /// The sound a `/play <sound>` message plays, if it is one.
    pub fn sound(&self) -> Option<&'static str> {
        crate::sounds::play_command(&self.0).and_then(Result::ok)
    }

    /// [`MessageText::parse`] for raw bytes (refused unless UTF-8).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChatInputError> {
        Self::parse(utf8("text", bytes)?)
    }
}

text_newtype!(MessageText);

/// A boost: a short reaction of 1–[`MAX_BOOST_CHARS`] characters on one line (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Boost(String);

impl Boost {
    /// Checks and trims a boost.
    pub fn parse(text: &str) -> Result<Self, ChatInputError> {
        const FIELD: &str = "boost";
        let kept = text.trim();
        if kept.is_empty() {
            return Err(ChatInputError::Empty { field: FIELD });
        }
        check_chars_len(FIELD, kept, MAX_BOOST_CHARS)?;
        check_chars(FIELD, kept, &[])?;
        Ok(Self(kept.to_owned()))
    }

    /// [`Boost::parse`] for raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChatInputError> {
        Self::parse(utf8("boost", bytes)?)
    }
}

text_newtype!(Boost);

/// A display name (an audience member's chosen name, say): trimmed, inner runs of whitespace
/// made one space, 1–[`MAX_DISPLAY_NAME_CHARS`] characters, no control or forbidden
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks and normalises a display name.
    pub fn parse(text: &str) -> Result<Self, ChatInputError> {
        const FIELD: &str = "display_name";
        check_chars(FIELD, text, &['\t', '\n', '\r'])?;
        let kept = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if kept.is_empty() {
            return Err(ChatInputError::Empty { field: FIELD });
        }
        check_chars_len(FIELD, &kept, MAX_DISPLAY_NAME_CHARS)?;
        Ok(Self(kept))
    }

    /// [`DisplayName::parse`] for raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChatInputError> {
        Self::parse(utf8("display_name", bytes)?)
    }
}

text_newtype!(DisplayName);

/// The sender's own id for a message, so a retried send is recognised: 1–64 bytes of
/// `[A-Za-z0-9._:-]` (a UUID or ULID fits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    /// Checks a client message id (not trimmed: it is compared exactly).
    pub fn parse(id: &str) -> Result<Self, ChatInputError> {
        const FIELD: &str = "client_message_id";
        if id.is_empty() {
            return Err(ChatInputError::Empty { field: FIELD });
        }
        if id.len() > MAX_CLIENT_MESSAGE_ID_LEN {
            return Err(ChatInputError::TooLong {
                field: FIELD,
                max: MAX_CLIENT_MESSAGE_ID_LEN,
                len: id.len(),
                unit: "bytes",
            });
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(ChatInputError::Format {
                field: FIELD,
                reason: "may only hold ASCII letters, digits, '.', '_', ':' and '-'",
            });
        }
        Ok(Self(id.to_owned()))
    }
}

text_newtype!(ClientMessageId);

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(r: Result<T, ChatInputError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn messages() {
        let table: &[(&str, &str)] = &[
            ("hello", "ok"),
            ("  indented code stays\n", "ok"),
            ("", "empty"),
            (" \n\t \r\n", "empty"),
            ("tab\tand\nnewline", "ok"),
            ("bell\u{7}", "control_character"),
            ("nul\u{0}", "control_character"),
            ("escape \u{1b}[31m", "control_character"),
            ("next\u{85}line", "control_character"),
            ("abc\u{202E}fed", "forbidden_character"),
            ("x\u{2066}y\u{2069}", "forbidden_character"),
            ("zero\u{200B}width", "forbidden_character"),
            ("\u{FEFF}bom", "forbidden_character"),
            ("word\u{2060}joiner", "forbidden_character"),
            ("family 👨\u{200D}👩\u{200D}👧", "ok"),
            ("می\u{200C}خواهم", "ok"),
            ("שלום עולם", "ok"),
        ];
        for (input, want) in table {
            assert_eq!(code(MessageText::parse(input)), *want, "{input:?}");
        }
        assert_eq!(
            MessageText::parse("a\r\nb\rc  \n\n").expect("ok").as_str(),
            "a\nb\nc"
        );
    }

    #[test]
    fn message_length_counts_characters() {
        let fits = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(fits.len(), 2 * MAX_MESSAGE_CHARS);
        assert!(MessageText::parse(&fits).is_ok());
        let err = MessageText::parse(&format!("{fits}é")).expect_err("too long");
        assert_eq!(
            err,
            ChatInputError::TooLong {
                field: "text",
                max: MAX_MESSAGE_CHARS,
                len: MAX_MESSAGE_CHARS + 1,
                unit: "characters"
            }
        );
        assert_eq!(
            err.to_string(),
            "text is longer than 4000 characters (4001)"
        );
        // Trailing whitespace does not count against the limit.
        assert!(MessageText::parse(&format!("{fits}   \n")).is_ok());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        for bytes in [&b"\xff\xfe"[..], b"ok \xc3", b"\xed\xa0\x80"] {
            let err = MessageText::from_bytes(bytes).expect_err("not UTF-8");
            assert_eq!(err.code(), "invalid_utf8");
            assert_eq!(
                Boost::from_bytes(bytes).map_err(|e| e.code()),
                Err("invalid_utf8")
            );
            assert_eq!(
                DisplayName::from_bytes(bytes).map_err(|e| e.code()),
                Err("invalid_utf8")
            );
        }
        assert_eq!(
            MessageText::from_bytes("héllo".as_bytes())
                .expect("UTF-8")
                .as_str(),
            "héllo"
        );
    }

    #[test]
    fn boosts() {
        assert_eq!(Boost::parse(" 👏 ").expect("ok").as_str(), "👏");
        assert!(Boost::parse(&"🎉".repeat(16)).is_ok());
        assert_eq!(code(Boost::parse(&"🎉".repeat(17))), "too_long");
        assert_eq!(code(Boost::parse("  ")), "empty");
        assert_eq!(code(Boost::parse("two\nlines")), "control_character");
        assert_eq!(code(Boost::parse("\u{202E}olleh")), "forbidden_character");
    }

    #[test]
    fn display_names() {
        assert_eq!(
            DisplayName::parse("  Row   7\tseat 12 ")
                .expect("ok")
                .as_str(),
            "Row 7 seat 12"
        );
        assert_eq!(code(DisplayName::parse(" \t ")), "empty");
        assert_eq!(code(DisplayName::parse(&"x".repeat(65))), "too_long");
        assert!(DisplayName::parse(&"x".repeat(64)).is_ok());
        assert_eq!(
            code(DisplayName::parse("admin\u{202E}")),
            "forbidden_character"
        );
        assert_eq!(
            code(DisplayName::parse("ad\u{200B}min")),
            "forbidden_character"
        );
        assert_eq!(code(DisplayName::parse("bell\u{7}")), "control_character");
    }

    #[test]
    fn client_message_ids() {
        for ok in [
            "a",
            "0190f6b2-7c3e-7c59-9d1f-3f9a1e3c2b11",
            "m:1.2_3",
            &"x".repeat(64),
        ] {
            assert!(ClientMessageId::parse(ok).is_ok(), "{ok:?}");
        }
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            (" a", "invalid_format"),
            ("a/b", "invalid_format"),
            ("ü", "invalid_format"),
            ("<script>", "invalid_format"),
        ];
        for (input, want) in table {
            assert_eq!(code(ClientMessageId::parse(input)), *want, "{input:?}");
        }
        assert_eq!(code(ClientMessageId::parse(&"x".repeat(65))), "too_long");
    }

    #[test]
    fn errors_name_their_field() {
        let err = Boost::parse("").expect_err("empty");
        assert_eq!(err.field(), "boost");
        let err = MessageText::parse("a\u{202E}").expect_err("forbidden");
        assert_eq!(
            err.to_string(),
            "text contains a right-to-left override (U+202E), which is not allowed"
        );
    }
}
