//! The live protocol on WebSocket `/live/v1`: JSON text frames with a `type` field.
//!
//! Client frames ([`ClientFrame`]) are parsed here with every limit checked, and the
//! parse error says what was wrong ([`FrameError`], whose [`ErrorCode`] is stable).
//! Server frames are built here too ([`ServerFrame`]), except the per-tick `state` frame,
//! which the hub serialises once per tick from the consensus snapshot
//! (see `docs/protocol.md` for its shape).
//!
//! Must never: do I/O, know about sockets or the engine's internals.

use serde::{Deserialize, Serialize};

/// Largest client frame accepted, in bytes. Larger frames get `frame_too_large`.
pub const MAX_FRAME_BYTES: usize = 4096;
/// Longest parameter, show code, zone or seat string accepted.
pub const MAX_NAME: usize = 64;

/// Stable error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a JSON object.
    BadJson,
    /// A JSON object without a string `type`, or with missing/extra/mistyped fields.
    BadFrame,
    /// `type` is not a known frame type.
    UnknownType,
    /// Frame larger than [`MAX_FRAME_BYTES`].
    FrameTooLarge,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The parameter does not exist in this piece.
    UnknownParam,
    /// A vote for a continuous parameter, a number for a vote, …
    WrongType,
    /// NaN or ±infinity.
    NotFinite,
    /// Outside the parameter's range.
    OutOfRange,
    /// Not one of the vote's choices.
    InvalidChoice,
    /// No such show.
    UnknownShow,
    /// The show has ended.
    ShowEnded,
    /// The show is not live (scheduled or paused): inputs are not taken.
    ShowNotLive,
    /// A frame that needs `join` first.
    NotJoined,
    /// `join` twice on one connection.
    AlreadyJoined,
    /// Unknown zone name.
    UnknownZone,
    /// A performer command from an audience or display connection.
    Forbidden,
    /// Wrong or missing performer token.
    Unauthorized,
    /// Inputs far over the piece's input rate were dropped.
    RateLimited,
    /// An override with invalid values.
    InvalidOverride,
    /// A session action not allowed from the show's current status.
    InvalidTransition,
    /// The server could not complete the request (e.g. storage failed); nothing changed.
    Internal,
    /// A `resume` token that a later `welcome` replaced: only the newest token resumes.
    ResumeReplaced,
    /// Another connection resumed this connection's slot; this one is closed.
    TakenOver,
    /// The data directory takes no writes (disk full, read-only): a performer command that
    /// must be stored was refused; the show goes on from memory.
    StorageUnavailable,
    /// A cue names a voice the piece does not have.
    UnknownVoice,
    /// A positional cue the piece's hall cannot take (no hall, a point outside it, a speed
    /// or radius out of range).
    InvalidCue,
    /// A `calibrated` for a chirp this show did not play recently, or already answered.
    UnknownChirp,
    /// Chat: no such room or message, or one the connection may not see.
    NotFound,
    /// Chat: the room is read-only (its show ended): nothing can be posted, edited or boosted.
    RoomReadOnly,
    /// Chat: a room `seq` the room has not reached.
    FutureSeq,
    /// Chat: a text, boost or name with nothing in it.
    Empty,
    /// Chat: a text over 4,000 characters, a boost over 16, a name over 64.
    TooLong,
    /// Chat: a character that hides or reorders text (bidirectional overrides, zero-width).
    ForbiddenCharacter,
    /// Chat: a control character (other than newline and tab in a message).
    ControlCharacter,
    /// Chat: a client message id that is not 1–64 of `A-Z a-z 0-9 . _ : -`.
    InvalidFormat,
    /// Chat: the change was already made (the same boost twice, a message already deleted).
    Conflict,
    /// Chat: the sender is muted in the room (a moderator's restriction).
    Muted,
    /// Chat: the sender is banned from the room: it can neither read nor post there.
    Banned,
    /// Chat: the room's slow mode; the message says how many seconds to wait.
    SlowMode,
    /// Chat: the message contains a word or phrase of the room's filter (named in the message).
    Filtered,
    /// Chat: `/play` with a sound Tutti does not have (the message lists the ones it has).
    UnknownSound,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::UnknownParam => "unknown_param",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::NotFinite => "not_finite",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::InvalidChoice => "invalid_choice",
            ErrorCode::UnknownShow => "unknown_show",
            ErrorCode::ShowEnded => "show_ended",
            ErrorCode::ShowNotLive => "show_not_live",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::UnknownZone => "unknown_zone",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InvalidOverride => "invalid_override",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::Internal => "internal",
            ErrorCode::ResumeReplaced => "resume_replaced",
            ErrorCode::TakenOver => "taken_over",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::UnknownVoice => "unknown_voice",
            ErrorCode::InvalidCue => "invalid_cue",
            ErrorCode::UnknownChirp => "unknown_chirp",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoomReadOnly => "room_read_only",
            ErrorCode::FutureSeq => "future_seq",
            ErrorCode::Empty => "empty",
            ErrorCode::TooLong => "too_long",
            ErrorCode::ForbiddenCharacter => "forbidden_character",
            ErrorCode::ControlCharacter => "control_character",
            ErrorCode::InvalidFormat => "invalid_format",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Muted => "muted",
            ErrorCode::Banned => "banned",
            ErrorCode::SlowMode => "slow_mode",
            ErrorCode::Filtered => "filtered",
            ErrorCode::UnknownSound => "unknown_sound",
        }
    }

    /// Every code, for counters and documentation tests.
    pub const ALL: [ErrorCode; 42] = [
        ErrorCode::BadJson,
        ErrorCode::BadFrame,
        ErrorCode::UnknownType,
        ErrorCode::FrameTooLarge,
        ErrorCode::BinaryNotSupported,
        ErrorCode::UnknownParam,
        ErrorCode::WrongType,
        ErrorCode::NotFinite,
        ErrorCode::OutOfRange,
        ErrorCode::InvalidChoice,
        ErrorCode::UnknownShow,
        ErrorCode::ShowEnded,
        ErrorCode::ShowNotLive,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::UnknownZone,
        ErrorCode::Forbidden,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::InvalidOverride,
        ErrorCode::InvalidTransition,
        ErrorCode::Internal,
        ErrorCode::ResumeReplaced,
        ErrorCode::TakenOver,
        ErrorCode::StorageUnavailable,
        ErrorCode::UnknownVoice,
        ErrorCode::InvalidCue,
        ErrorCode::UnknownChirp,
        ErrorCode::NotFound,
        ErrorCode::RoomReadOnly,
        ErrorCode::FutureSeq,
        ErrorCode::Empty,
        ErrorCode::TooLong,
        ErrorCode::ForbiddenCharacter,
        ErrorCode::ControlCharacter,
        ErrorCode::InvalidFormat,
        ErrorCode::Conflict,
        ErrorCode::Muted,
        ErrorCode::Banned,
        ErrorCode::SlowMode,
        ErrorCode::Filtered,
        ErrorCode::UnknownSound,
    ];
}

/// A protocol error: a stable code and a human message naming what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct FrameError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human message.
    pub message: String,
}

impl FrameError {
    /// Build an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
        }
    }
}

/// Who a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A phone in the audience (the default).
    #[default]
    Audience,
    /// A performer: may override and control the session (needs a token).
    Performer,
    /// A read-only big screen: detailed state, no inputs.
    Display,
}

/// A performer's session action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionAction {
    /// scheduled → live
    Start,
    /// live → paused
    Pause,
    /// paused → live
    Resume,
    /// live | paused → ended
    End,
}

/// Override modes, in the order the engine applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideModeName {
    /// Limit the value to `lo..=hi`.
    Clamp,
    /// Add `amount`.
    Bias,
    /// Mix towards `target` by `factor`.
    Blend,
    /// Hold at `value`.
    Lock,
    /// Hold the current value.
    Freeze,
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Join a show. Must be the first frame.
    Join {
        /// Show code; absent = the server's default show.
        #[serde(default)]
        show: Option<String>,
        /// Role (default audience).
        #[serde(default)]
        role: Role,
        /// Performer token.
        #[serde(default)]
        token: Option<String>,
        /// Seat zone name from the piece's seat map.
        #[serde(default)]
        zone: Option<String>,
        /// Seat label (free text, informational).
        #[serde(default)]
        seat: Option<String>,
        /// Resume token from an earlier `welcome`, to get the same slot back.
        #[serde(default)]
        resume: Option<String>,
    },
    /// Move a slider.
    Input {
        /// Parameter name.
        param: String,
        /// New value within the parameter's range.
        value: f64,
        /// Client sequence number, echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Vote for a choice of a discrete parameter.
    Vote {
        /// Parameter name.
        param: String,
        /// Choice name.
        choice: String,
        /// Client sequence number, echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Performer: set an override.
    Override {
        /// Parameter name.
        param: String,
        /// Which override.
        mode: OverrideModeName,
        /// lock: the value to hold.
        #[serde(default)]
        value: Option<f64>,
        /// bias: the amount to add.
        #[serde(default)]
        amount: Option<f64>,
        /// blend: the target value.
        #[serde(default)]
        target: Option<f64>,
        /// blend: 0..1.
        #[serde(default)]
        factor: Option<f64>,
        /// clamp: the bottom.
        #[serde(default)]
        lo: Option<f64>,
        /// clamp: the top.
        #[serde(default)]
        hi: Option<f64>,
        /// Seconds until it expires by itself.
        #[serde(default)]
        expires_in: Option<f64>,
        /// Echoed in `ack` once the override is stored.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Performer: remove an override (one mode, or all modes of the parameter).
    Release {
        /// Parameter name.
        param: String,
        /// The mode to release; absent = all.
        #[serde(default)]
        mode: Option<OverrideModeName>,
        /// Echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Performer: change the show's status.
    Session {
        /// The action.
        action: SessionAction,
        /// Echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Performer: clear all inputs and overrides.
    Reset {
        /// Echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Performer: ignore the audience (values held at defaults, overrides still apply).
    Bypass {
        /// On or off.
        on: bool,
        /// Echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Keep-alive; answered with `pong`.
    Ping {
        /// Echoed.
        #[serde(default)]
        id: Option<u64>,
    },
    /// Clock sync: answered at once with the show clock's times of receipt and reply.
    Sync {
        /// Echoed.
        #[serde(default)]
        id: Option<u64>,
        /// The client's clock when it sent this (milliseconds, any origin); echoed.
        t0: f64,
    },
    /// How well this client's clock is synced (it reports; performers see the spread).
    SyncReport {
        /// Its estimated error, milliseconds (0 to [`MAX_SYNC_ERROR_MS`]).
        error_ms: f64,
        /// Its estimated show clock minus local clock, milliseconds (informational).
        #[serde(default)]
        offset_ms: Option<f64>,
        /// Cues this connection received too late to play, since it joined.
        #[serde(default)]
        cues_late: Option<u64>,
        /// Whether this phone has sound on (enabled by a tap and not muted): ready for cues.
        #[serde(default)]
        sound_on: Option<bool>,
    },
    /// Performer: play a voice on every phone of the show, `lead_ms` from now.
    Cue {
        /// The piece's phone voice.
        voice: String,
        /// Milliseconds ahead (0–[`MAX_CUE_LEAD_MS`]); absent = the piece's lead.
        #[serde(default)]
        lead_ms: Option<u32>,
        /// Only the phones in these seat zones play it (absent = every phone).
        #[serde(default)]
        zones: Option<Vec<String>>,
        /// A wave across the hall: each phone plays it when the wave reaches its place.
        #[serde(default)]
        sweep: Option<Sweep>,
        /// A sound from a point in the hall: each phone's gain falls with its distance.
        #[serde(default)]
        source: Option<Source>,
        /// Echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Audience: play the calibration chirp soon (answered with `chirp`, which the show's
    /// performers get too, so a microphone can time it).
    Chirp {},
    /// Performer: how late (positive) or early a phone's chirp was heard, milliseconds
    /// (±[`MAX_CALIBRATION_MS`]); passed to that phone as `calibration`.
    Calibrated {
        /// The chirp's id.
        id: u64,
        /// Heard minus due, milliseconds.
        offset_ms: f64,
        /// Echoed in `ack`.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Chat: sign this connection in as a staff account (an API access token), for a
    /// connection that is not a show's audience (the `/chat` page). Answered by `chat_hello`.
    ChatAuth {
        /// A bearer access token of the management API.
        token: String,
    },
    /// Chat: the display name an audience member chats under (1–64 characters). Answered by
    /// `chat_hello`.
    ChatName {
        /// The name.
        name: String,
    },
    /// Chat: follow rooms from the last `seq` seen in each: the missed events come first
    /// (paged, then `chat_caught_up`), then live ones, none twice.
    ChatSub {
        /// The rooms, each with the last room `seq` the client has (0 for everything).
        rooms: Vec<ChatSubRoom>,
    },
    /// Chat: stop following rooms.
    ChatUnsub {
        /// Room ids.
        rooms: Vec<i64>,
    },
    /// Chat: post a message; answered by `chat_ack` once committed (a retry with the same
    /// `client_id` is answered with the original).
    ChatPost {
        /// The room.
        room: i64,
        /// The sender's own id for the message: 1–64 of `A-Z a-z 0-9 . _ : -`.
        client_id: String,
        /// 1–4,000 characters of light formatting.
        text: String,
        /// The message it replies to (same room).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
        /// Post it as a `question` (anyone in a show's room) or an `announcement` (crew, at
        /// most 500 characters, to every phone of the show).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flag: Option<String>,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: vote for a question (or with `remove`, take the vote back); one per person.
    ChatVote {
        /// The question.
        message: i64,
        /// Take the caller's vote back.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remove: bool,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: crew mark a question answered.
    ChatAnswered {
        /// The question.
        message: i64,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: crew pin a message in its room (or with `remove`, unpin it).
    ChatPin {
        /// The message.
        message: i64,
        /// Unpin it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remove: bool,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: crew approve a message for the big screen's wall (or with `reject`, keep it off
    /// or take it down).
    ChatApprove {
        /// The message.
        message: i64,
        /// Reject it instead.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reject: bool,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: a show's connection without a chat identity (a phone that chose no name yet, a
    /// display) asks for its show's room: answered by `chat_hello` with user 0; a display is
    /// then handed only the wall's events of the room it follows.
    ChatShow {},
    /// Chat: replace a message's text (its author, or a moderator).
    ChatEdit {
        /// The message.
        message: i64,
        /// The new text.
        text: String,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: delete a message (its author, or a moderator).
    ChatDelete {
        /// The message.
        message: i64,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: add (or with `remove`, take back) a boost of 1–16 characters.
    ChatBoost {
        /// The message.
        message: i64,
        /// The boost.
        content: String,
        /// Take the caller's boost with this content back.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remove: bool,
        /// Echoed in `chat_ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Chat: the member has read the room up to `read_seq`; answered by `chat_unread`.
    ChatRead {
        /// The room.
        room: i64,
        /// The room `seq` read up to.
        read_seq: u64,
    },
    /// Chat: the user is typing in a room (sent to the room's others; never stored).
    ChatTyping {
        /// The room.
        room: i64,
    },
    /// Chat: the heartbeat that keeps the connection in its rooms' presence.
    ChatHere {},
}

/// A room to follow and the last room `seq` the client has of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSubRoom {
    /// The room.
    pub room: i64,
    /// The last room `seq` seen (0 for everything).
    #[serde(default)]
    pub after_seq: u64,
    /// Also state the room's current pins and latest announcement, however old
    /// (`chat_extras`, before `chat_caught_up`): a page opening the room asks for it; a
    /// reconnect that had it already need not.
    #[serde(default, skip_serializing_if = "is_false")]
    pub extras: bool,
}

/// Most rooms one `chat_sub` or `chat_unsub` may name.
pub const MAX_CHAT_SUB_ROOMS: usize = 64;
/// Largest chat frame that carries a message's text (`chat_post`, `chat_edit`): 4,000
/// characters of up to four bytes, escaped.
pub const MAX_CHAT_FRAME_BYTES: usize = 24 * 1024;
/// Longest staff token `chat_auth` carries.
pub const MAX_CHAT_TOKEN: usize = 256;

/// A wave across the hall from `(x, y)` at `speed` metres a second.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Metres across the hall.
    pub x: f64,
    /// Metres from the stage.
    pub y: f64,
    /// Metres a second ([`MIN_SWEEP_SPEED`]–[`MAX_SWEEP_SPEED`]).
    pub speed: f64,
}

/// A sound at `(x, y)` heard within `radius` metres, louder the nearer.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Metres across the hall.
    pub x: f64,
    /// Metres from the stage.
    pub y: f64,
    /// Metres ([`MIN_SOURCE_RADIUS`]–[`MAX_SOURCE_RADIUS`]).
    pub radius: f64,
}

/// Slowest sweep, metres a second.
pub const MIN_SWEEP_SPEED: f64 = 1.0;
/// Fastest sweep, metres a second.
pub const MAX_SWEEP_SPEED: f64 = 1_000.0;
/// Smallest source radius, metres.
pub const MIN_SOURCE_RADIUS: f64 = 0.5;
/// Largest source radius, metres.
pub const MAX_SOURCE_RADIUS: f64 = 2_000.0;
/// Most zones a cue may name.
pub const MAX_CUE_ZONES: usize = 64;

/// The longest lead a cue may ask for, milliseconds.
pub const MAX_CUE_LEAD_MS: u32 = 10_000;

/// The largest sync error a `sync_report` may state, milliseconds (a minute).
pub const MAX_SYNC_ERROR_MS: f64 = 60_000.0;

/// The largest correction a `calibrated` may carry, milliseconds (a phone's output is
/// late by tens of milliseconds, not seconds).
pub const MAX_CALIBRATION_MS: f64 = 1_000.0;

const KNOWN_TYPES: [&str; 30] = [
    "join",
    "input",
    "vote",
    "override",
    "release",
    "session",
    "reset",
    "bypass",
    "ping",
    "sync",
    "sync_report",
    "cue",
    "chirp",
    "calibrated",
    "chat_auth",
    "chat_name",
    "chat_sub",
    "chat_unsub",
    "chat_post",
    "chat_edit",
    "chat_delete",
    "chat_boost",
    "chat_read",
    "chat_typing",
    "chat_here",
    "chat_vote",
    "chat_answered",
    "chat_pin",
    "chat_approve",
    "chat_show",
];

fn check_name(field: &str, s: &str) -> Result<(), FrameError> {
    if s.is_empty() || s.len() > MAX_NAME {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!("{field} must be 1–{MAX_NAME} characters"),
        ));
    }
    Ok(())
}

impl ClientFrame {
    /// Parse one text frame, checking size, JSON, type and field limits.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        Self::read(text).map_err(|u| u.error)
    }

    /// Parse and validate one text frame; when it is refused, also the `seq` it carried
    /// where that can still be read (an error frame echoes it, so a client can tell which
    /// of its frames was refused).
    pub fn read(text: &str) -> Result<ClientFrame, Unreadable> {
        // Frames with a message's text may be larger; every other kind is held to
        // MAX_FRAME_BYTES after parsing (parsing at most MAX_CHAT_FRAME_BYTES costs little).
        if text.len() > MAX_CHAT_FRAME_BYTES {
            return Err(Unreadable {
                error: FrameError::new(
                    ErrorCode::FrameTooLarge,
                    format!(
                        "frame of {} bytes is over the {MAX_CHAT_FRAME_BYTES}-byte limit",
                        text.len()
                    ),
                ),
                seq: None,
            });
        }
        if text.len() > MAX_FRAME_BYTES && !carries_text(text) {
            return Err(Unreadable {
                error: FrameError::new(
                    ErrorCode::FrameTooLarge,
                    format!(
                        "frame of {} bytes is over the {MAX_FRAME_BYTES}-byte limit",
                        text.len()
                    ),
                ),
                seq: None,
            });
        }
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => return Err(explain(text, e)),
        };
        if let Err(error) = frame.check() {
            return Err(Unreadable {
                error,
                seq: frame.seq(),
            });
        }
        Ok(frame)
    }

    fn check(&self) -> Result<(), FrameError> {
        match self {
            ClientFrame::Join {
                show,
                token,
                zone,
                seat,
                resume,
                ..
            } => {
                for (k, v) in [
                    ("show", show),
                    ("token", token),
                    ("zone", zone),
                    ("seat", seat),
                    ("resume", resume),
                ] {
                    if let Some(v) = v {
                        check_name(k, v)?;
                    }
                }
            }
            ClientFrame::Input { param, .. }
            | ClientFrame::Override { param, .. }
            | ClientFrame::Release { param, .. } => check_name("param", param)?,
            ClientFrame::Vote { param, choice, .. } => {
                check_name("param", param)?;
                check_name("choice", choice)?;
            }
            ClientFrame::Cue {
                voice,
                lead_ms,
                zones,
                sweep,
                source,
                ..
            } => {
                check_name("voice", voice)?;
                if let Some(z) = zones {
                    if z.is_empty() || z.len() > MAX_CUE_ZONES {
                        return Err(FrameError::new(
                            ErrorCode::BadFrame,
                            format!("zones must list 1–{MAX_CUE_ZONES} zones"),
                        ));
                    }
                    for name in z {
                        check_name("zones", name)?;
                    }
                }
                if sweep.is_some_and(|w| !(MIN_SWEEP_SPEED..=MAX_SWEEP_SPEED).contains(&w.speed)) {
                    return Err(FrameError::new(
                        ErrorCode::InvalidCue,
                        format!("sweep.speed must be {MIN_SWEEP_SPEED}–{MAX_SWEEP_SPEED} m/s"),
                    ));
                }
                if source
                    .is_some_and(|s| !(MIN_SOURCE_RADIUS..=MAX_SOURCE_RADIUS).contains(&s.radius))
                {
                    return Err(FrameError::new(
                        ErrorCode::InvalidCue,
                        format!(
                            "source.radius must be {MIN_SOURCE_RADIUS}–{MAX_SOURCE_RADIUS} metres"
                        ),
                    ));
                }
                if lead_ms.is_some_and(|l| l > MAX_CUE_LEAD_MS) {
                    return Err(FrameError::new(
                        ErrorCode::OutOfRange,
                        format!("lead_ms must be 0–{MAX_CUE_LEAD_MS}"),
                    ));
                }
            }
            ClientFrame::SyncReport {
                error_ms,
                offset_ms,
                ..
            } => {
                if !(0.0..=MAX_SYNC_ERROR_MS).contains(error_ms) {
                    return Err(FrameError::new(
                        ErrorCode::OutOfRange,
                        format!("error_ms must be 0–{MAX_SYNC_ERROR_MS} milliseconds"),
                    ));
                }
                if offset_ms.is_some_and(|o| !o.is_finite()) {
                    return Err(FrameError::new(
                        ErrorCode::NotFinite,
                        "offset_ms is not finite",
                    ));
                }
            }
            ClientFrame::Calibrated { offset_ms, .. } => {
                if !offset_ms.is_finite() {
                    return Err(FrameError::new(
                        ErrorCode::NotFinite,
                        "offset_ms is not finite",
                    ));
                }
                if offset_ms.abs() > MAX_CALIBRATION_MS {
                    return Err(FrameError::new(
                        ErrorCode::OutOfRange,
                        format!("offset_ms must be within ±{MAX_CALIBRATION_MS} milliseconds"),
                    ));
                }
            }
            ClientFrame::ChatAuth { token } if token.is_empty() || token.len() > MAX_CHAT_TOKEN => {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    format!("token must be 1–{MAX_CHAT_TOKEN} bytes"),
                ));
            }
            ClientFrame::ChatSub { rooms } => {
                if rooms.is_empty() || rooms.len() > MAX_CHAT_SUB_ROOMS {
                    return Err(FrameError::new(
                        ErrorCode::BadFrame,
                        format!("rooms must list 1–{MAX_CHAT_SUB_ROOMS} rooms"),
                    ));
                }
                if rooms.iter().any(|r| i64::try_from(r.after_seq).is_err()) {
                    return Err(FrameError::new(
                        ErrorCode::FutureSeq,
                        "after_seq is beyond any room's sequence",
                    ));
                }
            }
            ClientFrame::ChatUnsub { rooms }
                if rooms.is_empty() || rooms.len() > MAX_CHAT_SUB_ROOMS =>
            {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    format!("rooms must list 1–{MAX_CHAT_SUB_ROOMS} rooms"),
                ));
            }
            ClientFrame::ChatPost { client_id, .. }
                if client_id.is_empty() || client_id.len() > MAX_NAME =>
            {
                return Err(FrameError::new(
                    ErrorCode::InvalidFormat,
                    format!("client_id must be 1–{MAX_NAME} bytes"),
                ));
            }
            ClientFrame::ChatRead { read_seq, .. } if i64::try_from(*read_seq).is_err() => {
                return Err(FrameError::new(
                    ErrorCode::FutureSeq,
                    "read_seq is beyond any room's sequence",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether this is a chat frame (handled by the chat service, not the show).
    pub fn is_chat(&self) -> bool {
        matches!(
            self,
            ClientFrame::ChatAuth { .. }
                | ClientFrame::ChatName { .. }
                | ClientFrame::ChatSub { .. }
                | ClientFrame::ChatUnsub { .. }
                | ClientFrame::ChatPost { .. }
                | ClientFrame::ChatEdit { .. }
                | ClientFrame::ChatDelete { .. }
                | ClientFrame::ChatBoost { .. }
                | ClientFrame::ChatRead { .. }
                | ClientFrame::ChatTyping { .. }
                | ClientFrame::ChatHere {}
                | ClientFrame::ChatVote { .. }
                | ClientFrame::ChatAnswered { .. }
                | ClientFrame::ChatPin { .. }
                | ClientFrame::ChatApprove { .. }
                | ClientFrame::ChatShow {}
        )
    }

    /// The frame's `seq`, if it carries one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ClientFrame::Input { seq, .. }
            | ClientFrame::Vote { seq, .. }
            | ClientFrame::Override { seq, .. }
            | ClientFrame::Release { seq, .. }
            | ClientFrame::Session { seq, .. }
            | ClientFrame::Reset { seq }
            | ClientFrame::Bypass { seq, .. }
            | ClientFrame::Cue { seq, .. }
            | ClientFrame::Calibrated { seq, .. }
            | ClientFrame::ChatPost { seq, .. }
            | ClientFrame::ChatEdit { seq, .. }
            | ClientFrame::ChatDelete { seq, .. }
            | ClientFrame::ChatBoost { seq, .. }
            | ClientFrame::ChatVote { seq, .. }
            | ClientFrame::ChatAnswered { seq, .. }
            | ClientFrame::ChatPin { seq, .. }
            | ClientFrame::ChatApprove { seq, .. } => *seq,
            ClientFrame::Join { .. }
            | ClientFrame::Ping { .. }
            | ClientFrame::Sync { .. }
            | ClientFrame::SyncReport { .. }
            | ClientFrame::Chirp {}
            | ClientFrame::ChatAuth { .. }
            | ClientFrame::ChatName { .. }
            | ClientFrame::ChatSub { .. }
            | ClientFrame::ChatUnsub { .. }
            | ClientFrame::ChatRead { .. }
            | ClientFrame::ChatTyping { .. }
            | ClientFrame::ChatHere {}
            | ClientFrame::ChatShow {} => None,
        }
    }
}

/// Whether a frame over [`MAX_FRAME_BYTES`] is one of the kinds that carry a message's text
/// (`chat_post`, `chat_edit`), which may be larger: only its `type` is read.
fn carries_text(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Kind<'_>>(text)
        .is_ok_and(|k| k.kind == "chat_post" || k.kind == "chat_edit")
}

/// Turn a serde failure into the right code: only the failure path pays for this.
/// A client frame that was refused: what was wrong, and its `seq` if it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// What was wrong.
    pub error: FrameError,
    /// The frame's `seq`, where it could be read.
    pub seq: Option<u64>,
}

/// What a scan of text that is not valid JSON can still tell: whether it holds a bare
/// `NaN` or `Infinity` (JSON has neither), and a top-level-looking `"seq": N`.
fn scan_invalid(text: &str) -> (bool, Option<u64>) {
    let b = text.as_bytes();
    let (mut i, mut in_string, mut non_finite, mut seq) = (0, false, false, None);
    let mut last_key: Option<(usize, usize)> = None;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                last_key = Some((start, j.min(b.len())));
                in_string = true;
            }
            b'N' if b[i..].starts_with(b"NaN") => non_finite = true,
            b'I' if b[i..].starts_with(b"Infinity") => non_finite = true,
            b':' => {
                if let Some((s0, s1)) = last_key.take() {
                    if &b[s0..s1] == b"seq" {
                        let digits: String = text[i + 1..]
                            .trim_start()
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        seq = seq.or_else(|| digits.parse().ok());
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (non_finite, seq)
}

const MODES: [&str; 5] = ["clamp", "bias", "blend", "lock", "freeze"];

fn explain(text: &str, e: serde_json::Error) -> Unreadable {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (non_finite, seq) = scan_invalid(text);
            // JSON has no NaN or infinity: a bare `NaN`/`Infinity`, or a number too large
            // for f64, is how a non-finite number arrives.
            let error = if non_finite || e.to_string().contains("number out of range") {
                FrameError::new(
                    ErrorCode::NotFinite,
                    format!("a number is not finite (JSON has no NaN or Infinity): {e}"),
                )
            } else {
                FrameError::new(ErrorCode::BadJson, format!("not valid JSON: {e}"))
            };
            return Unreadable { error, seq };
        }
    };
    let Some(obj) = value.as_object() else {
        return Unreadable {
            error: FrameError::new(ErrorCode::BadJson, "a frame must be a JSON object"),
            seq: None,
        };
    };
    let seq = obj.get("seq").and_then(serde_json::Value::as_u64);
    let error = match obj.get("type") {
        None => FrameError::new(ErrorCode::BadFrame, "the frame has no \"type\" field"),
        Some(serde_json::Value::String(t)) if !KNOWN_TYPES.contains(&t.as_str()) => {
            let shown: String = t.chars().take(MAX_NAME).collect();
            FrameError::new(
                ErrorCode::UnknownType,
                format!("unknown frame type \"{shown}\""),
            )
        }
        Some(serde_json::Value::String(t)) => {
            let mode = obj.get("mode");
            if (t == "input" && obj.get("value").is_some_and(|v| !v.is_number()))
                || (t == "vote" && obj.get("choice").is_some_and(|v| !v.is_string()))
            {
                // A mistyped `value` of an input (or `choice` of a vote) is wrong_type.
                FrameError::new(ErrorCode::WrongType, format!("invalid {t} frame: {e}"))
            } else if (t == "override" || t == "release")
                && mode.is_some_and(|m| !m.is_null())
                && !mode
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|m| MODES.contains(&m))
            {
                FrameError::new(
                    ErrorCode::InvalidOverride,
                    format!("unknown override mode: the modes are {}", MODES.join(", ")),
                )
            } else {
                FrameError::new(ErrorCode::BadFrame, format!("invalid {t} frame: {e}"))
            }
        }
        Some(_) => FrameError::new(ErrorCode::BadFrame, "\"type\" must be a string"),
    };
    Unreadable { error, seq }
}

/// Description of one parameter in `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    /// Name used in frames.
    pub name: String,
    /// Label to show.
    pub label: String,
    /// "continuous" or "discrete".
    pub kind: String,
    /// Continuous: bottom.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min: Option<f64>,
    /// Continuous: top.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max: Option<f64>,
    /// Continuous: slider step.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<f64>,
    /// Continuous: unit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    /// Default value (continuous) or choice index (discrete).
    pub default: f64,
    /// Discrete: the choices.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub choices: Option<Vec<String>>,
}

/// The phones' voices and cue lead, in `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneInfo {
    /// How far ahead cues are sent, milliseconds.
    pub lead_ms: u32,
    /// The voices.
    pub voices: Vec<VoiceInfo>,
    /// The hall's floor, metres `[width, depth]`, when cues can be positional.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hall: Option<[f64; 2]>,
    /// The continuous voices that follow a parameter (the piece's `[[phone.drones]]`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub drones: Vec<DroneInfo>,
}

/// One continuous phone voice, in `welcome`: its gain follows `follow`'s collective value
/// (the parameter's range mapped to 0–`gain`), its pitch glides from `freq` to `freq_to`
/// when given; each phone smooths the changes over about `smooth_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroneInfo {
    /// Name.
    pub name: String,
    /// The continuous parameter it follows.
    pub follow: String,
    /// sine | triangle | square | sawtooth | noise.
    pub wave: String,
    /// Hz at the bottom of the parameter's range.
    pub freq: f64,
    /// Hz at its top, when the pitch follows too.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub freq_to: Option<f64>,
    /// Gain at the top of the range, 0–1.
    pub gain: f64,
    /// Milliseconds to about 95 % of a change.
    pub smooth_ms: f64,
    /// A moving source: the continuous parameters `x` (across the hall) and `y` (from the
    /// stage) place it; a phone's gain falls from 1 at the point to 0 at `radius` metres.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<DroneSourceInfo>,
}

/// Where a drone sounds from (see [`DroneInfo::source`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroneSourceInfo {
    /// The parameter that moves it across the hall.
    pub x: String,
    /// The parameter that moves it from the stage to the back.
    pub y: String,
    /// Metres.
    pub radius: f64,
}

/// One phone voice, in `welcome` (the piece's `[[phone.voices]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceInfo {
    /// Name cues use.
    pub name: String,
    /// sine | triangle | square | sawtooth | noise.
    pub wave: String,
    /// Hz.
    pub freq: f64,
    /// Peak gain, 0–1.
    pub gain: f64,
    /// Milliseconds.
    pub attack_ms: f64,
    /// Milliseconds.
    pub hold_ms: f64,
    /// Milliseconds.
    pub release_ms: f64,
}

/// The show a connection joined, in `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowInfo {
    /// Join code.
    pub code: String,
    /// Piece title.
    pub title: String,
    /// scheduled | live | paused | ended
    pub status: String,
    /// URL an audience member opens to join.
    pub join_url: String,
}

/// Frames the server sends (other than `state`, which the hub writes directly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Reply to `join`.
    Welcome {
        /// This connection's participant number in the show.
        participant: u32,
        /// Token to send as `resume` after a reconnect to get the same slot.
        resume: String,
        /// Role granted.
        role: Role,
        /// The show.
        show: ShowInfo,
        /// The parameters.
        params: Vec<ParamInfo>,
        /// Zone names of the seat map.
        zones: Vec<String>,
        /// Consensus tick rate.
        tick_hz: u32,
        /// State frames per second sent to this connection (may adapt).
        state_hz: u32,
        /// Inputs per second allowed before rate limiting.
        input_rate: u32,
        /// What the phones play on a cue (absent when the piece has no phone voices).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        phone: Option<PhoneInfo>,
    },
    /// An accepted frame: inputs are applied by tick `tick` (the first state with
    /// `tick >= this` reflects them); performer commands are stored before this is sent.
    Ack {
        /// The client's sequence number.
        seq: u64,
        /// The tick that applies it.
        tick: u64,
        /// The server's clock (Unix milliseconds) when that tick ran — when the input was
        /// applied; for performer commands, when the change was stored.
        at: u64,
    },
    /// Something was wrong; nothing else changed.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Human message.
        message: String,
        /// The `seq` of the frame it answers, if known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        seq: Option<u64>,
    },
    /// Reply to `ping`.
    Pong {
        /// Echoed id.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<u64>,
    },
    /// Play `voice` at show-clock time `at` (to the audience, when a performer cues).
    Cue {
        /// The show's cue number (1, 2, …).
        id: u64,
        /// The voice (described in `welcome.phone`).
        voice: String,
        /// When to play it: show clock, milliseconds.
        at: f64,
        /// Only phones in these zones play it.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        zones: Option<Vec<String>>,
        /// Each phone plays it when this wave reaches its place.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        sweep: Option<Sweep>,
        /// Each phone plays it at a gain falling with its distance from this point.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        source: Option<Source>,
    },
    /// The calibration chirp a phone asked for: it plays it at show-clock time `at`; the
    /// show's performers get the same frame, to time it with a microphone.
    Chirp {
        /// The show's chirp number.
        id: u64,
        /// The phone's participant number.
        participant: u32,
        /// When the chirp is due to leave the phone's speaker: show clock, milliseconds.
        at: f64,
    },
    /// To the phone whose chirp was timed: how late (positive) it was heard, milliseconds.
    /// The phone adds it to its output-latency correction.
    Calibration {
        /// The chirp's id.
        id: u64,
        /// Heard minus due, milliseconds.
        offset_ms: f64,
    },
    /// Reply to `sync`: when the show clock received it and when it replied.
    Sync {
        /// Echoed id.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<u64>,
        /// Echoed client time.
        t0: f64,
        /// The show clock when the frame was read, milliseconds.
        t1: f64,
        /// The show clock when the reply was written, milliseconds.
        t2: f64,
    },
    /// Chat: who this connection chats as, and its rooms (reply to `chat_auth`, `chat_name`).
    ChatHello {
        /// The user id.
        user: i64,
        /// The display name.
        name: String,
        /// The rooms it may follow.
        rooms: Vec<ChatRoomInfo>,
    },
    /// Chat: one event of a room's sequence (live, or missed and caught up).
    ChatEvent(ChatEventInfo),
    /// Chat: the missed events of a room have all been sent; live ones follow.
    ChatCaughtUp {
        /// The room.
        room: i64,
        /// The last room `seq` sent.
        room_seq: u64,
    },
    /// Chat: a room's live-show state however old it is — the pinned messages and the latest
    /// announcement — as of `room_seq` (after `chat_sub` with `extras`, before
    /// `chat_caught_up`). Events after `room_seq` change it as usual.
    ChatExtras {
        /// The room.
        room: i64,
        /// The room's latest `seq` when it was read: the state after that event.
        room_seq: u64,
        /// The pinned messages, oldest pin first (none: an empty list).
        pins: Vec<ChatMessageInfo>,
        /// The latest announcement; absent when the room has none.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        announcement: Option<ChatMessageInfo>,
    },
    /// Chat: a change was committed (a retried post: the original message).
    ChatAck {
        /// The `seq` of the frame it answers.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        seq: Option<u64>,
        /// The room.
        room: i64,
        /// The room `seq` of the change (of the original post, for a retry).
        room_seq: u64,
        /// The message.
        message: i64,
        /// The message's client id.
        client_id: String,
        /// A retried post: nothing was written.
        duplicate: bool,
    },
    /// Chat: who is in a room now.
    ChatPresence {
        /// The room.
        room: i64,
        /// How many people are there.
        count: u64,
        /// The people there in user id order: all of them, or the first few in a big room
        /// (fewer than `count`).
        here: Vec<ChatPerson>,
    },
    /// Chat: someone is typing in a room.
    ChatTyping {
        /// The room.
        room: i64,
        /// Who.
        user: i64,
        /// Their display name.
        name: String,
    },
    /// Chat: the member's unread messages in a room.
    ChatUnread {
        /// The room.
        room: i64,
        /// The room `seq` read up to.
        read_seq: u64,
        /// Messages of others, not deleted, after it.
        unread: u64,
    },
}

/// A room in `chat_hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRoomInfo {
    /// The room id.
    pub room: i64,
    /// `open`, `closed`, `direct` or `show`.
    pub kind: String,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Nothing can be posted (a show that ended, or a show not live for its audience).
    pub read_only: bool,
    /// Its latest `seq`.
    pub last_seq: u64,
    /// Unread messages of others (0 where the connection is not a member yet).
    pub unread: u64,
}

/// A person in `chat_presence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatPerson {
    /// The user id.
    pub user: i64,
    /// The display name.
    pub name: String,
}

/// A `chat_event` frame's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEventInfo {
    /// The room.
    pub room: i64,
    /// Its place in the room's sequence.
    pub room_seq: u64,
    /// `message_posted`, `message_edited`, `message_deleted`, `boost_added`, `boost_removed`;
    /// the live-show extras `vote_added`, `vote_removed`, `question_answered`,
    /// `message_pinned`, `message_unpinned`, `wall_approved` (`text`: the text approved),
    /// `wall_rejected`.
    pub kind: String,
    /// The message.
    pub message: i64,
    /// Its author.
    pub author: i64,
    /// The author's display name.
    pub author_name: String,
    /// The author's client id for it.
    pub client_id: String,
    /// Who made the change.
    pub actor: i64,
    /// When, Unix milliseconds.
    pub at: i64,
    /// The text of a post or edit (absent once deleted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    /// That text rendered to safe HTML.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub html: Option<String>,
    /// A boost's content.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub boost: Option<String>,
    /// The message it replies to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<i64>,
    /// A `message_deleted` by a moderator, not by its author (a removal); absent otherwise.
    #[serde(skip_serializing_if = "is_false", default)]
    pub moderated: bool,
    /// Written while the message was held by the room's audience delay: only its author and
    /// the room's moderators get it; a later `message_released` shows it to everyone. Absent
    /// when false.
    #[serde(skip_serializing_if = "is_false", default)]
    pub held: bool,
    /// The sound a `/play <sound>` message plays (on `message_posted` and `message_released`
    /// only; a page plays it when the event arrives live, not in catch-up). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sound: Option<String>,
    /// The files a `message_posted` carries, in order; absent when none (and once deleted).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<ChatAttachmentInfo>,
    /// The message is a `question` or an `announcement` (on every event of that message).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub flag: Option<String>,
    /// `vote_added`, `vote_removed`: the question's vote count after it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub votes: Option<u64>,
}

/// A message as it stands (`chat_extras`): what a `message_posted` event would show of it
/// now, with the `seq` it was posted at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatMessageInfo {
    /// The message.
    pub message: i64,
    /// Its place in the room's sequence when posted.
    pub posted_seq: u64,
    /// Its author.
    pub author: i64,
    /// The author's display name.
    pub author_name: String,
    /// The author's client id for it.
    pub client_id: String,
    /// When it was posted, Unix milliseconds.
    pub at: i64,
    /// Its text now (as edited).
    pub text: String,
    /// That text rendered to safe HTML.
    pub html: String,
    /// The message it replies to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<i64>,
    /// Its files, in order; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<ChatAttachmentInfo>,
    /// `question` or `announcement`, if it is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub flag: Option<String>,
    /// It was edited.
    #[serde(skip_serializing_if = "is_false", default)]
    pub edited: bool,
    /// A question's votes; absent when none.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub votes: u64,
    /// A question crew marked answered.
    #[serde(skip_serializing_if = "is_false", default)]
    pub answered: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A file carried by a chat message (`chat_event`'s `attachments`). Its bytes are downloaded
/// through the management API (`GET /api/v1/chat/attachments/{id}`, and `/thumbnail` for an
/// image's thumbnail) by whoever may read the room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatAttachmentInfo {
    /// The attachment's id.
    pub id: i64,
    /// Its name for showing (sanitised; it decides nothing).
    pub name: String,
    /// Its media type, sniffed from its bytes.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// An image's width in pixels.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub width: Option<u32>,
    /// An image's height in pixels.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub height: Option<u32>,
    /// An image has a thumbnail (at most 320 pixels on its longest side).
    #[serde(skip_serializing_if = "is_false", default)]
    pub thumbnail: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServerFrame {
    /// Serialise to a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialise")
    }

    /// An error frame from a [`FrameError`].
    pub fn error(e: FrameError, seq: Option<u64>) -> ServerFrame {
        ServerFrame::Error {
            code: e.code,
            message: e.message,
            seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        ClientFrame::parse(text).unwrap_err().code
    }

    #[test]
    fn bare_non_finite_numbers_are_not_finite_and_refusals_echo_seq() {
        for text in [
            r#"{"type":"input","param":"x","value":NaN,"seq":4}"#,
            r#"{"type":"input","param":"x","value":Infinity,"seq":4}"#,
            r#"{"type":"input","param":"x","value":-Infinity,"seq":4}"#,
            r#"{"type":"input","param":"x","value":1e999,"seq":4}"#,
        ] {
            let u = ClientFrame::read(text).unwrap_err();
            assert_eq!(u.error.code, ErrorCode::NotFinite, "{text}");
            assert_eq!(u.seq, Some(4), "{text}");
        }
        // "NaN" inside a string is text, not a number.
        let u = ClientFrame::read(r#"{"type":"vote","param":"NaN","choice":"Infinity","seq":2"#)
            .unwrap_err();
        assert_eq!(u.error.code, ErrorCode::BadJson);
        assert_eq!(u.seq, Some(2));
        let cases = [
            (r#"{"type":"dance","seq":9}"#, ErrorCode::UnknownType),
            (
                r#"{"type":"input","param":"x","value":"loud","seq":9}"#,
                ErrorCode::WrongType,
            ),
            (
                r#"{"type":"input","param":"x","seq":9}"#,
                ErrorCode::BadFrame,
            ),
            (
                r#"{"type":"input","param":"","value":1,"seq":9}"#,
                ErrorCode::BadFrame,
            ),
            (
                r#"{"type":"override","param":"x","mode":"smash","value":1,"seq":9}"#,
                ErrorCode::InvalidOverride,
            ),
            (
                r#"{"type":"release","param":"x","mode":3,"seq":9}"#,
                ErrorCode::InvalidOverride,
            ),
        ];
        for (text, want) in cases {
            let u = ClientFrame::read(text).unwrap_err();
            assert_eq!(u.error.code, want, "{text}");
            assert_eq!(u.seq, Some(9), "{text}");
        }
        // A known mode with a missing field stays a bad frame.
        assert_eq!(
            code(r#"{"type":"override","param":"x","mode":"lock","value":"a"}"#),
            ErrorCode::BadFrame
        );
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(code("{"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"param":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::BadFrame);
        assert_eq!(
            code(r#"{"type":"input","param":"x","value":"loud"}"#),
            ErrorCode::WrongType
        );
        assert_eq!(code(r#"{"type":"input","param":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(
            code(r#"{"type":"input","param":"x","value":1,"extra":2}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"input","param":"","value":1}"#),
            ErrorCode::BadFrame
        );
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(5000));
        assert_eq!(code(&big), ErrorCode::FrameTooLarge);
    }

    #[test]
    fn parses_good_frames() {
        let f = ClientFrame::parse(r#"{"type":"input","param":"intensity","value":0.5,"seq":3}"#)
            .unwrap();
        assert_eq!(f.seq(), Some(3));
        let j = ClientFrame::parse(r#"{"type":"join","show":"DEMO","zone":"front"}"#).unwrap();
        assert!(matches!(
            j,
            ClientFrame::Join {
                role: Role::Audience,
                ..
            }
        ));
        let o = ClientFrame::parse(
            r#"{"type":"override","param":"pitch","mode":"lock","value":3,"expires_in":10}"#,
        )
        .unwrap();
        assert!(matches!(
            o,
            ClientFrame::Override {
                mode: OverrideModeName::Lock,
                ..
            }
        ));
    }

    #[test]
    fn chat_frames_carrying_text_may_be_larger_than_others() {
        let text = "é".repeat(4000);
        let post = format!(r#"{{"type":"chat_post","room":1,"client_id":"a","text":"{text}"}}"#);
        assert!(post.len() > MAX_FRAME_BYTES);
        assert!(matches!(
            ClientFrame::parse(&post),
            Ok(ClientFrame::ChatPost { .. })
        ));
        let sub = format!(
            r#"{{"type":"chat_sub","rooms":[{{"room":1}}],"pad":"{}"}}"#,
            "x".repeat(5000)
        );
        assert_eq!(code(&sub), ErrorCode::FrameTooLarge);
        let huge = format!(
            r#"{{"type":"chat_post","room":1,"client_id":"a","text":"{}"}}"#,
            "x".repeat(MAX_CHAT_FRAME_BYTES)
        );
        assert_eq!(code(&huge), ErrorCode::FrameTooLarge);
        assert_eq!(
            code(r#"{"type":"chat_sub","rooms":[]}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"chat_sub","rooms":[{"room":1,"after_seq":18446744073709551615}]}"#),
            ErrorCode::FutureSeq
        );
        let u =
            ClientFrame::read(r#"{"type":"chat_post","room":1,"client_id":"","text":"x","seq":5}"#)
                .unwrap_err();
        assert_eq!((u.error.code, u.seq), (ErrorCode::InvalidFormat, Some(5)));
        assert!(ClientFrame::parse(r#"{"type":"chat_here"}"#)
            .unwrap()
            .is_chat());
        assert!(!ClientFrame::parse(r#"{"type":"ping"}"#).unwrap().is_chat());
    }

    #[test]
    fn error_codes_serialise_as_their_names() {
        for c in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }
}

/// The per-tick `state` frame as a client reads it (the hub writes it directly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFrame {
    /// Always "state".
    #[serde(rename = "type")]
    pub kind: String,
    /// Consensus tick number.
    pub tick: u64,
    /// Show status: scheduled | live | paused | ended.
    pub status: String,
    /// Audience bypassed by a performer.
    pub bypass: bool,
    /// Current state frames per second for this class of client (lower when degraded).
    pub rate: f64,
    /// Participants joined.
    pub participants: u32,
    /// Per parameter, by name.
    pub params: std::collections::BTreeMap<String, ParamState>,
}

/// One parameter in a `state` frame. Fields after `agreement` are only in the detailed
/// state that performers and displays receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamState {
    /// The collective value (choice index for votes).
    pub value: f64,
    /// Votes: the winning choice's name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub choice: Option<String>,
    /// Participants with an input on this parameter.
    pub participants: u32,
    /// 0..1: how much the crowd agrees.
    pub agreement: f64,
    /// Detail: the aggregate before smoothing and overrides.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw: Option<f64>,
    /// Detail: participants with an input / participants joined.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub participation: Option<f64>,
    /// Detail: weighted standard deviation in parameter units.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dispersion: Option<f64>,
    /// Detail: the distribution over fixed bins of the range (sums to 1, or all 0).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub histogram: Option<Vec<f32>>,
    /// Detail, votes: weight share of each choice.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub choices: Option<Vec<f32>>,
    /// Detail: active overrides.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub overrides: Option<Vec<OverrideState>>,
}

/// An active override in a detailed `state` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideState {
    /// Mode.
    pub mode: OverrideModeName,
    /// Who set it.
    pub by: String,
    /// lock value, bias amount, blend target, or clamp bottom.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub a: Option<f64>,
    /// blend factor or clamp top.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub b: Option<f64>,
    /// Seconds until it expires.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_in: Option<f64>,
}
