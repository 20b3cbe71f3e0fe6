//! The plain structs and enums the store hands out and takes in, and the validation of values at
//! the store's edge.
//!
//! These types are what callers see instead of SQL: rows are owned Rust values, statuses are
//! enums. They must never expose a SQL type, and validation here must never touch the database
//! (it runs on the caller's task, before anything is queued).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Longest accepted piece slug, in bytes.
pub const MAX_SLUG_LEN: usize = 64;
/// Longest accepted piece title, in characters.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest accepted show code, in bytes.
pub const MAX_CODE_LEN: usize = 64;
/// Longest accepted override actor, parameter or action name, in characters.
pub const MAX_NAME_LEN: usize = 128;
/// Largest accepted spec document, in bytes.
pub const MAX_SPEC_JSON: usize = 1 << 20;
/// Largest accepted snapshot state document, in bytes.
pub const MAX_STATE_JSON: usize = 4 << 20;
/// Largest accepted crowd (a live show's participants at a snapshot), in bytes.
pub const MAX_CROWD_BYTES: usize = 64 << 20;
/// Largest accepted override detail document, in bytes.
pub const MAX_DETAIL_JSON: usize = 64 << 10;
/// Longest accepted username, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest accepted display name or ensemble name, in characters.
pub const MAX_DISPLAY_NAME_LEN: usize = 200;
/// Longest accepted password hash (a PHC string), in bytes.
pub const MAX_PASSWORD_HASH_LEN: usize = 512;
/// Longest accepted spec version note, in bytes.
pub const MAX_NOTE_LEN: usize = 2000;
/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;
/// Largest accepted stored idempotent response, in bytes.
pub const MAX_RESPONSE_JSON: usize = 1 << 20;
/// Largest accepted wizard session state, in bytes.
pub const MAX_WIZARD_STATE_JSON: usize = 1 << 20;
/// Largest page a paginated read returns.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Largest accepted outbox event `data`, in bytes (serialized).
pub const MAX_EVENT_JSON: usize = 64 << 10;

/// A token's SHA-256 hash: the store never sees token secrets, only their hashes.
pub type TokenHash = [u8; 32];

/// Whether a show is a rehearsal or a performance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShowKind {
    /// A rehearsal.
    Rehearsal,
    /// A performance in front of an audience.
    Performance,
}

impl ShowKind {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rehearsal => "rehearsal",
            Self::Performance => "performance",
        }
    }
}

/// Where a show is in its lifecycle: `scheduled → live ⇄ paused → ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShowStatus {
    /// Created, not started.
    Scheduled,
    /// Running.
    Live,
    /// Temporarily stopped; can go live again.
    Paused,
    /// Over; final.
    Ended,
}

impl ShowStatus {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Live => "live",
            Self::Paused => "paused",
            Self::Ended => "ended",
        }
    }

    /// The statuses a show in this status may move to.
    pub const fn allowed_next(self) -> &'static [ShowStatus] {
        match self {
            Self::Scheduled => &[Self::Live],
            Self::Live => &[Self::Paused, Self::Ended],
            Self::Paused => &[Self::Live, Self::Ended],
            Self::Ended => &[],
        }
    }

    /// Whether `self → to` is an allowed transition.
    pub fn can_become(self, to: ShowStatus) -> bool {
        self.allowed_next().contains(&to)
    }
}

/// The status of one version of a piece's spec. At most one version per piece is `Current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecStatus {
    /// Written but not published.
    Draft,
    /// The version new shows run.
    Current,
    /// Replaced by a later current version.
    Superseded,
}

impl SpecStatus {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Current => "current",
            Self::Superseded => "superseded",
        }
    }
}

/// A user account's global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// May do everything.
    Admin,
    /// Creates ensembles and performs.
    Performer,
    /// Technical crew.
    Crew,
    /// A signed-in audience member (no management rights).
    Audience,
}

impl UserRole {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Performer => "performer",
            Self::Crew => "crew",
            Self::Audience => "audience",
        }
    }
}

/// A member's role within an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnsembleRole {
    /// Manages the ensemble; at least one per ensemble.
    Owner,
    /// Edits the ensemble's pieces, specs and shows.
    Performer,
    /// Reads, and moves shows along their lifecycle.
    Crew,
}

impl EnsembleRole {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Performer => "performer",
            Self::Crew => "crew",
        }
    }
}

/// Where a piece is in its lifecycle: `draft → rehearsal → ready → archived` (see
/// [`PieceStatus::allowed_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PieceStatus {
    /// Being written.
    Draft,
    /// Being rehearsed.
    Rehearsal,
    /// Ready to perform.
    Ready,
    /// Retired; final.
    Archived,
}

impl PieceStatus {
    /// The stored (and serialized) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Rehearsal => "rehearsal",
            Self::Ready => "ready",
            Self::Archived => "archived",
        }
    }

    /// The statuses a piece in this status may move to.
    pub const fn allowed_next(self) -> &'static [PieceStatus] {
        match self {
            Self::Draft => &[Self::Rehearsal, Self::Archived],
            Self::Rehearsal => &[Self::Ready, Self::Draft, Self::Archived],
            Self::Ready => &[Self::Rehearsal, Self::Archived],
            Self::Archived => &[],
        }
    }

    /// Whether `self → to` is an allowed transition.
    pub fn can_become(self, to: PieceStatus) -> bool {
        self.allowed_next().contains(&to)
    }
}

/// The kind of an outbox event. The names ([`EventKind::as_str`]) are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// `account.created`
    #[serde(rename = "account.created")]
    AccountCreated,
    /// `account.deactivated`
    #[serde(rename = "account.deactivated")]
    AccountDeactivated,
    /// `account.password_changed`
    #[serde(rename = "account.password_changed")]
    AccountPasswordChanged,
    /// `ensemble.created`
    #[serde(rename = "ensemble.created")]
    EnsembleCreated,
    /// `ensemble.member_added`
    #[serde(rename = "ensemble.member_added")]
    EnsembleMemberAdded,
    /// `ensemble.member_removed`
    #[serde(rename = "ensemble.member_removed")]
    EnsembleMemberRemoved,
    /// `piece.created`
    #[serde(rename = "piece.created")]
    PieceCreated,
    /// `piece.updated`
    #[serde(rename = "piece.updated")]
    PieceUpdated,
    /// `piece.transitioned`
    #[serde(rename = "piece.transitioned")]
    PieceTransitioned,
    /// `spec.drafted`
    #[serde(rename = "spec.drafted")]
    SpecDrafted,
    /// `spec.published`
    #[serde(rename = "spec.published")]
    SpecPublished,
    /// `show.created`
    #[serde(rename = "show.created")]
    ShowCreated,
    /// `show.transitioned`
    #[serde(rename = "show.transitioned")]
    ShowTransitioned,
    /// `override.applied`
    #[serde(rename = "override.applied")]
    OverrideApplied,
    /// `chat.message`: a message posted in an open or show room (see `chat/published.rs`)
    #[serde(rename = "chat.message")]
    ChatMessage,
    /// `chat.message_edited`
    #[serde(rename = "chat.message_edited")]
    ChatMessageEdited,
    /// `chat.message_deleted`
    #[serde(rename = "chat.message_deleted")]
    ChatMessageDeleted,
    /// `chat.boost_added`
    #[serde(rename = "chat.boost_added")]
    ChatBoostAdded,
    /// `chat.boost_removed`
    #[serde(rename = "chat.boost_removed")]
    ChatBoostRemoved,
    /// `chat.vote_changed`: a vote for a question added or taken back (`votes`: the count after it)
    #[serde(rename = "chat.vote_changed")]
    ChatVoteChanged,
    /// `chat.question_answered`: crew marked a question answered
    #[serde(rename = "chat.question_answered")]
    ChatQuestionAnswered,
    /// `chat.message_pinned`: crew pinned a message
    #[serde(rename = "chat.message_pinned")]
    ChatMessagePinned,
    /// `chat.message_unpinned`: crew unpinned a message
    #[serde(rename = "chat.message_unpinned")]
    ChatMessageUnpinned,
    /// `chat.wall_approved`: crew approved a message for the big screen's wall (`text`: the text approved)
    #[serde(rename = "chat.wall_approved")]
    ChatWallApproved,
    /// `chat.wall_rejected`: crew rejected a message for the wall, or took it off
    #[serde(rename = "chat.wall_rejected")]
    ChatWallRejected,
    /// `webhook.created`
    #[serde(rename = "webhook.created")]
    WebhookCreated,
    /// `webhook.disabled`
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

impl EventKind {
    /// Every kind, in a stable order.
    pub const ALL: [EventKind; 27] = [
        Self::AccountCreated,
        Self::AccountDeactivated,
        Self::AccountPasswordChanged,
        Self::EnsembleCreated,
        Self::EnsembleMemberAdded,
        Self::EnsembleMemberRemoved,
        Self::PieceCreated,
        Self::PieceUpdated,
        Self::PieceTransitioned,
        Self::SpecDrafted,
        Self::SpecPublished,
        Self::ShowCreated,
        Self::ShowTransitioned,
        Self::OverrideApplied,
        Self::ChatMessage,
        Self::WebhookCreated,
        Self::WebhookDisabled,
        Self::ChatMessageEdited,
        Self::ChatMessageDeleted,
        Self::ChatBoostAdded,
        Self::ChatBoostRemoved,
        Self::ChatVoteChanged,
        Self::ChatQuestionAnswered,
        Self::ChatMessagePinned,
        Self::ChatMessageUnpinned,
        Self::ChatWallApproved,
        Self::ChatWallRejected,
    ];

    /// The stored (and serialized) name, e.g. `piece.created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccountCreated => "account.created",
            Self::AccountDeactivated => "account.deactivated",
            Self::AccountPasswordChanged => "account.password_changed",
            Self::EnsembleCreated => "ensemble.created",
            Self::EnsembleMemberAdded => "ensemble.member_added",
            Self::EnsembleMemberRemoved => "ensemble.member_removed",
            Self::PieceCreated => "piece.created",
            Self::PieceUpdated => "piece.updated",
            Self::PieceTransitioned => "piece.transitioned",
            Self::SpecDrafted => "spec.drafted",
            Self::SpecPublished => "spec.published",
            Self::ShowCreated => "show.created",
            Self::ShowTransitioned => "show.transitioned",
            Self::OverrideApplied => "override.applied",
            Self::ChatMessage => "chat.message",
            Self::WebhookCreated => "webhook.created",
            Self::WebhookDisabled => "webhook.disabled",
            Self::ChatMessageEdited => "chat.message_edited",
            Self::ChatMessageDeleted => "chat.message_deleted",
            Self::ChatBoostAdded => "chat.boost_added",
            Self::ChatBoostRemoved => "chat.boost_removed",
            Self::ChatVoteChanged => "chat.vote_changed",
            Self::ChatQuestionAnswered => "chat.question_answered",
            Self::ChatMessagePinned => "chat.message_pinned",
            Self::ChatMessageUnpinned => "chat.message_unpinned",
            Self::ChatWallApproved => "chat.wall_approved",
            Self::ChatWallRejected => "chat.wall_rejected",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| invalid("event kind", s, "not a known event kind"))
    }
}

macro_rules! text_enum {
    ($ty:ident, $field:literal, [$($variant:ident),+]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s == Self::$variant.as_str() {
                    return Ok(Self::$variant);
                })+
                Err(StoreError::Invalid {
                    field: $field,
                    value: preview(s),
                    reason: format!(
                        "expected one of: {}",
                        [$(Self::$variant.as_str()),+].join(", ")
                    ),
                })
            }
        }
    };
}

text_enum!(ShowKind, "show kind", [Rehearsal, Performance]);
text_enum!(ShowStatus, "show status", [Scheduled, Live, Paused, Ended]);
text_enum!(SpecStatus, "spec status", [Draft, Current, Superseded]);
text_enum!(UserRole, "role", [Admin, Performer, Crew, Audience]);
text_enum!(EnsembleRole, "role", [Owner, Performer, Crew]);
text_enum!(
    PieceStatus,
    "piece status",
    [Draft, Rehearsal, Ready, Archived]
);

/// A piece: a work that can be performed, identified by its slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRow {
    /// Store id.
    pub id: i64,
    /// Unique, URL-safe name (`[a-z0-9_-]`).
    pub slug: String,
    /// Human title.
    pub title: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// The owning ensemble (`None` for pieces from the configuration, e.g. the demo).
    pub ensemble_id: Option<i64>,
    /// Lifecycle status.
    pub status: PieceStatus,
}

/// One immutable version of a piece's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecVersionRow {
    /// Store id.
    pub id: i64,
    /// The piece it belongs to.
    pub piece_id: i64,
    /// 1, 2, 3, … per piece.
    pub version: i64,
    /// The spec document, exactly as it was given.
    pub spec_json: String,
    /// Draft, current or superseded.
    pub status: SpecStatus,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// The user who wrote it (`None` for versions from the configuration).
    pub created_by: Option<i64>,
    /// The author's note.
    pub note: Option<String>,
}

/// A show (a rehearsal or performance session) of a piece, running one spec version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowRow {
    /// Store id.
    pub id: i64,
    /// The piece performed.
    pub piece_id: i64,
    /// The spec version the show runs (its store id).
    pub spec_version_id: i64,
    /// That spec version's number within its piece (1, 2, …).
    pub spec_version: i64,
    /// The unique join code.
    pub code: String,
    /// Rehearsal or performance.
    pub kind: ShowKind,
    /// Lifecycle status.
    pub status: ShowStatus,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// When it first went live.
    pub started_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}

/// The consensus state of a show at one tick (written about once a second).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    /// The show.
    pub show_id: i64,
    /// The tick number; increasing within a show (a resumed show continues from the latest one).
    pub tick: u64,
    /// The tick's time, unix milliseconds.
    pub at_ms: i64,
    /// The state document.
    pub state_json: String,
    /// The show's health at this tick (a JSON document the report reads), if recorded.
    pub health_json: Option<String>,
}

/// An override to log: who did what to which parameter, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOverride {
    /// The show.
    pub show_id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Who (a performer name, token label or `osc`).
    pub actor: String,
    /// Which parameter (or `*` for a global action).
    pub param: String,
    /// What, e.g. `lock`, `bias`, `release`, `reset`.
    pub action: String,
    /// The action's arguments as a JSON document.
    pub detail_json: String,
}

/// A logged override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRow {
    /// Store id; increases in commit order.
    pub id: i64,
    /// The show.
    pub show_id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// Which parameter.
    pub param: String,
    /// What.
    pub action: String,
    /// The action's arguments as a JSON document.
    pub detail_json: String,
}

/// A page request for a paginated read: rows with `id > after_id` (all when `None`), at most
/// `limit` (1..=[`MAX_PAGE_LIMIT`]) of them, in id order. The read returns the rows and the
/// `after_id` of the next page (`None` when there are no more rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Start after this id (the previous page's `next`).
    pub after_id: Option<i64>,
    /// Most rows to return.
    pub limit: u32,
}

impl Page {
    /// The first page of `limit` rows.
    pub const fn first(limit: u32) -> Self {
        Self {
            after_id: None,
            limit,
        }
    }
}

/// A user account (without its password hash; see [`UserCredentials`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Store id.
    pub id: i64,
    /// Unique login name (compared case-insensitively).
    pub username: String,
    /// Human name.
    pub display_name: String,
    /// Global role.
    pub role: UserRole,
    /// Whether the account may sign in (deactivated accounts are kept, never deleted).
    pub active: bool,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Last password change (creation time at first), unix milliseconds.
    pub password_changed_at_ms: i64,
}

/// A user with the password hash, for checking a login.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The account.
    pub user: UserRow,
    /// The argon2id PHC string.
    pub password_hash: String,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// A user to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// 1–64 bytes of `[A-Za-z0-9._-]`; unique ignoring ASCII case.
    pub username: String,
    /// 1–200 characters, no control characters.
    pub display_name: String,
    /// An argon2id PHC string (`$argon2id$…`), at most 512 bytes.
    pub password_hash: String,
    /// Global role.
    pub role: UserRole,
    /// Creation time, unix milliseconds.
    pub at_ms: i64,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .field("at_ms", &self.at_ms)
            .finish()
    }
}

/// A cookie session to create (for the web pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthSession {
    /// The signed-in user.
    pub user_id: i64,
    /// SHA-256 of the cookie secret.
    pub token_hash: TokenHash,
    /// The CSRF token pages echo in `x-csrf-token`: 16–128 visible ASCII characters.
    pub csrf_token: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Expiry, unix milliseconds.
    pub expires_at_ms: i64,
}

/// A cookie session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSessionRow {
    /// Store id.
    pub id: i64,
    /// The signed-in user.
    pub user_id: i64,
    /// The CSRF token.
    pub csrf_token: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Expiry, unix milliseconds.
    pub expires_at_ms: i64,
    /// When it was revoked (logout, password change, deactivation).
    pub revoked_at_ms: Option<i64>,
}

/// A new access + refresh token pair starting a new token family (a login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokenPair {
    /// The signed-in user.
    pub user_id: i64,
    /// SHA-256 of the access token.
    pub access_hash: TokenHash,
    /// SHA-256 of the refresh token.
    pub refresh_hash: TokenHash,
    /// Issue time, unix milliseconds.
    pub at_ms: i64,
    /// When the access token expires.
    pub access_expires_at_ms: i64,
    /// When the refresh token expires.
    pub refresh_expires_at_ms: i64,
}

/// What was issued by [`crate::Store::issue_token_pair`] or [`crate::Store::rotate_refresh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPairRow {
    /// The token family (one per login; refreshes stay in it).
    pub family_id: i64,
    /// The user.
    pub user_id: i64,
    /// When the access token expires.
    pub access_expires_at_ms: i64,
    /// When the refresh token expires.
    pub refresh_expires_at_ms: i64,
}

/// An access token with its user, as looked up by hash. The caller checks `expires_at_ms`,
/// `revoked_at_ms` and `user.active`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenRow {
    /// The token family.
    pub family_id: i64,
    /// The token's user.
    pub user: UserRow,
    /// Issue time, unix milliseconds.
    pub created_at_ms: i64,
    /// Expiry, unix milliseconds.
    pub expires_at_ms: i64,
    /// When it was revoked.
    pub revoked_at_ms: Option<i64>,
}

/// A refresh: the presented refresh token and the new pair to issue in its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateRefresh {
    /// SHA-256 of the presented refresh token.
    pub presented: TokenHash,
    /// SHA-256 of the new access token.
    pub access_hash: TokenHash,
    /// SHA-256 of the new refresh token.
    pub refresh_hash: TokenHash,
    /// The time of the refresh, unix milliseconds.
    pub at_ms: i64,
    /// When the new access token expires.
    pub access_expires_at_ms: i64,
    /// When the new refresh token expires.
    pub refresh_expires_at_ms: i64,
}

/// Which of the user's credentials a password change keeps (the one making the change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepCredential {
    /// Revoke everything.
    None,
    /// Keep the cookie session with this token hash.
    Session(TokenHash),
    /// Keep this token family.
    Family(i64),
}

/// An anonymous audience device bound to a show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestRow {
    /// Store id.
    pub id: i64,
    /// The show.
    pub show_id: i64,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
}

/// An ensemble (a team) owning pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsembleRow {
    /// Store id.
    pub id: i64,
    /// Unique, URL-safe name (`[a-z0-9_-]`).
    pub slug: String,
    /// Human name.
    pub name: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
}

/// A member of an ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    /// The ensemble.
    pub ensemble_id: i64,
    /// The user.
    pub user_id: i64,
    /// The user's login name.
    pub username: String,
    /// The user's human name.
    pub display_name: String,
    /// Role in the ensemble.
    pub role: EnsembleRole,
    /// When they joined, unix milliseconds.
    pub created_at_ms: i64,
}

/// A show with what a permission check needs: its piece's ensemble and the caller's role there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowAccess {
    /// The show.
    pub show: ShowRow,
    /// The ensemble owning the show's piece (`None` for configuration pieces).
    pub ensemble_id: Option<i64>,
    /// The caller's role in that ensemble (`None`: not a member).
    pub role: Option<EnsembleRole>,
}

/// A piece to create in an ensemble (status `draft`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPiece {
    /// The owning ensemble.
    pub ensemble_id: i64,
    /// Unique across all pieces, `[a-z0-9_-]`, 1–64 bytes.
    pub slug: String,
    /// Human title, 1–200 characters.
    pub title: String,
    /// Creation time, unix milliseconds.
    pub at_ms: i64,
}

/// A draft spec version to add to a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSpecDraft {
    /// The piece.
    pub piece_id: i64,
    /// The spec document (valid JSON, at most [`MAX_SPEC_JSON`] bytes).
    pub spec_json: String,
    /// The author.
    pub created_by: Option<i64>,
    /// A note (at most [`MAX_NOTE_LEN`] bytes).
    pub note: Option<String>,
    /// Creation time, unix milliseconds.
    pub at_ms: i64,
}

/// A show to create for a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShow {
    /// The piece.
    pub piece_id: i64,
    /// The spec version NUMBER (1, 2, …) to run; `None` = the piece's current version.
    pub spec_version: Option<i64>,
    /// The unique join code.
    pub code: String,
    /// Rehearsal or performance.
    pub kind: ShowKind,
    /// Creation time, unix milliseconds.
    pub at_ms: i64,
}

/// A stored response to a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRow {
    /// The user who made the request.
    pub user_id: i64,
    /// The key: 1–64 visible ASCII characters.
    pub key: String,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// SHA-256 of the request body.
    pub request_sha256: [u8; 32],
    /// The response's HTTP status (100–599).
    pub status: u16,
    /// The response body (JSON).
    pub response_json: String,
    /// When it was stored, unix milliseconds.
    pub created_at_ms: i64,
}

/// The status stored for a claimed idempotency key whose request is still running (HTTP 102
/// Processing; its `response_json` is `null`).
pub const IDEMPOTENCY_IN_FLIGHT: u16 = 102;

/// A claim on an idempotency key, taken before running the request it guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdempotencyClaim {
    /// The user making the request.
    pub user_id: i64,
    /// The key: 1–64 visible ASCII characters.
    pub key: String,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// SHA-256 of the request body.
    pub request_sha256: [u8; 32],
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// What [`crate::Store::claim_idempotency_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free and is now claimed by this request: run it, then
    /// `complete_idempotency_key` (or `release_idempotency_key` if it failed without effect).
    Claimed,
    /// A request with this key already finished: replay it if the body hash matches.
    Done(IdempotencyRow),
    /// A request with this key is still running (or crashed after claiming it less than the
    /// caller's patience ago); `request_sha256` says whether it was the same body.
    InFlight {
        /// SHA-256 of the running request's body.
        request_sha256: [u8; 32],
        /// When it was claimed.
        claimed_at_ms: i64,
    },
}

/// A wizard session to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWizardSession {
    /// The user running the wizard.
    pub user_id: i64,
    /// The domain pack's id (1–64 bytes).
    pub pack_id: String,
    /// The wizard's state (JSON, at most [`MAX_WIZARD_STATE_JSON`] bytes).
    pub state_json: String,
    /// Creation time, unix milliseconds.
    pub at_ms: i64,
}

/// A wizard session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WizardSessionRow {
    /// Store id.
    pub id: i64,
    /// The user running the wizard.
    pub user_id: i64,
    /// The domain pack's id.
    pub pack_id: String,
    /// The piece it drafted into, once it did.
    pub piece_id: Option<i64>,
    /// The wizard's state (JSON).
    pub state_json: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Last update, unix milliseconds.
    pub updated_at_ms: i64,
}

/// An event to append to the outbox, in the same transaction as the change it describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// The ensemble it concerns (for visibility and webhooks); `None` for global events.
    pub ensemble_id: Option<i64>,
    /// The object, e.g. `piece:12`.
    pub subject: String,
    /// A small JSON object with the ids and the changed fields (never secrets).
    pub data: serde_json::Value,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// Counters describing the writer, read from atomics (cheap, never blocks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Operations accepted but not yet committed (or failed): in the queue or in the open batch.
    pub queued: u64,
    /// The writer queue's capacity.
    pub queue_capacity: u64,
    /// Batch transactions committed.
    pub transactions_committed: u64,
    /// Operations committed (snapshots included).
    pub ops_committed: u64,
    /// Operations that failed (their own error or their batch's).
    pub ops_failed: u64,
    /// Snapshots committed.
    pub snapshots_written: u64,
    /// Snapshots dropped because the queue was full.
    pub snapshots_dropped: u64,
    /// Snapshots that reached the writer but failed (e.g. unknown show).
    pub snapshots_failed: u64,
    /// The most operations committed in one transaction.
    pub largest_batch: u64,
}

/// A value shortened for error messages.
pub(crate) fn preview(value: &str) -> String {
    const MAX: usize = 64;
    if value.len() <= MAX {
        return value.to_owned();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        value: preview(value),
        reason: reason.into(),
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(invalid(field, value, "must not be empty"));
    }
    if value.len() > max {
        return Err(invalid(
            field,
            value,
            format!("longer than {max} bytes ({})", value.len()),
        ));
    }
    Ok(())
}

/// A slug: 1–64 bytes of `[a-z0-9_-]`.
pub(crate) fn validate_slug(slug: &str) -> Result<(), StoreError> {
    check_len("slug", slug, MAX_SLUG_LEN)?;
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "slug",
            slug,
            "only lowercase ASCII letters, digits, '-' and '_' are allowed",
        ));
    }
    Ok(())
}

/// A show code: 1–64 bytes of `[A-Za-z0-9_-]`.
pub(crate) fn validate_code(code: &str) -> Result<(), StoreError> {
    check_len("code", code, MAX_CODE_LEN)?;
    if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "code",
            code,
            "only ASCII letters, digits, '-' and '_' are allowed",
        ));
    }
    Ok(())
}

/// Free text (a title, actor, parameter or action): non-empty, at most `max` characters (not
/// bytes: a title of 200 × "é" fits), no control characters.
pub(crate) fn validate_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(invalid(field, value, "must not be empty"));
    }
    let n = value.chars().count();
    if n > max {
        return Err(invalid(
            field,
            value,
            format!("longer than {max} characters ({n})"),
        ));
    }
    if value.trim().is_empty() {
        return Err(invalid(field, value, "must not be blank"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, value, "must not contain control characters"));
    }
    Ok(())
}

/// A well-formed JSON document of at most `max` bytes.
pub(crate) fn validate_json(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(invalid(
            field,
            value,
            format!("longer than {max} bytes ({})", value.len()),
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(value)
        .map(|_| ())
        .map_err(|e| invalid(field, value, format!("not valid JSON: {e}")))
}

/// A caller-supplied time: unix milliseconds, not negative.
pub(crate) fn validate_time(field: &'static str, at_ms: i64) -> Result<(), StoreError> {
    if at_ms < 0 {
        return Err(invalid(
            field,
            &at_ms.to_string(),
            "must be unix milliseconds (not negative)",
        ));
    }
    Ok(())
}

/// A username: 1–64 bytes of `[A-Za-z0-9._-]`.
pub(crate) fn validate_username(name: &str) -> Result<(), StoreError> {
    check_len("username", name, MAX_USERNAME_LEN)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "username",
            name,
            "only ASCII letters, digits, '.', '-' and '_' are allowed",
        ));
    }
    Ok(())
}

/// An argon2id PHC string (only the shape is checked; hashing is the caller's job).
pub(crate) fn validate_password_hash(hash: &str) -> Result<(), StoreError> {
    if hash.len() > MAX_PASSWORD_HASH_LEN {
        return Err(StoreError::Invalid {
            field: "password_hash",
            value: "<redacted>".into(),
            reason: format!("longer than {MAX_PASSWORD_HASH_LEN} bytes ({})", hash.len()),
        });
    }
    if !hash.starts_with("$argon2id$") || hash.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(StoreError::Invalid {
            field: "password_hash",
            value: "<redacted>".into(),
            reason: "not an argon2id PHC string ($argon2id$…)".into(),
        });
    }
    Ok(())
}

/// 1..=`max` visible ASCII characters (no spaces).
pub(crate) fn validate_visible_ascii(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), StoreError> {
    check_len(field, value, max)?;
    if value.len() < min {
        return Err(invalid(field, value, format!("shorter than {min} bytes")));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            value,
            "only visible ASCII characters are allowed",
        ));
    }
    Ok(())
}

/// A page request: limit 1..=[`MAX_PAGE_LIMIT`].
pub(crate) fn validate_page(page: Page) -> Result<(), StoreError> {
    if page.limit == 0 || page.limit > MAX_PAGE_LIMIT {
        return Err(invalid(
            "limit",
            &page.limit.to_string(),
            format!("must be 1..={MAX_PAGE_LIMIT}"),
        ));
    }
    Ok(())
}

/// Optional free text of at most `max` bytes, no control characters other than newlines and tabs.
pub(crate) fn validate_note(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), StoreError> {
    let Some(value) = value else { return Ok(()) };
    if value.len() > max {
        return Err(invalid(
            field,
            value,
            format!("longer than {max} bytes ({})", value.len()),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(field, value, "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_transitions_follow_the_lifecycle() {
        use PieceStatus::*;
        let all = [Draft, Rehearsal, Ready, Archived];
        let allowed = [
            (Draft, Rehearsal),
            (Rehearsal, Ready),
            (Ready, Rehearsal),
            (Rehearsal, Draft),
            (Draft, Archived),
            (Rehearsal, Archived),
            (Ready, Archived),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        use ShowStatus::*;
        let all = [Scheduled, Live, Paused, Ended];
        let allowed = [
            (Scheduled, Live),
            (Live, Paused),
            (Paused, Live),
            (Live, Ended),
            (Paused, Ended),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn enums_round_trip_through_text_and_reject_unknown_names() {
        for s in [
            ShowStatus::Scheduled,
            ShowStatus::Live,
            ShowStatus::Paused,
            ShowStatus::Ended,
        ] {
            assert_eq!(s.as_str().parse::<ShowStatus>(), Ok(s));
        }
        for k in [ShowKind::Rehearsal, ShowKind::Performance] {
            assert_eq!(k.to_string().parse::<ShowKind>(), Ok(k));
        }
        let err = "Live".parse::<ShowStatus>().unwrap_err();
        assert!(err.to_string().contains("\"Live\""), "{err}");
        assert!(
            err.to_string().contains("scheduled, live, paused, ended"),
            "{err}"
        );
    }

    #[test]
    fn validation_names_the_field_and_value() {
        let err = validate_slug("Bad Slug").unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { field: "slug", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("Bad Slug"), "{err}");
        assert!(validate_slug("demo-piece_2").is_ok());
        assert!(validate_slug("").is_err());
        assert!(validate_slug(&"a".repeat(MAX_SLUG_LEN + 1)).is_err());
        assert!(validate_code("AB12-x").is_ok());
        assert!(validate_code("AB 12").is_err());
        assert!(validate_text("title", "  ", 10).is_err());
        assert!(validate_text("title", "a\nb", 10).is_err());
        assert!(
            validate_text("title", &"é".repeat(10), 10).is_ok(),
            "characters, not bytes"
        );
        assert!(validate_text("title", &"é".repeat(11), 10).is_err());
        assert!(validate_json("spec_json", "{\"a\":1}", 100).is_ok());
        let err = validate_json("spec_json", "{\"a\":", 100).unwrap_err();
        assert!(err.to_string().contains("spec_json"), "{err}");
        assert!(validate_json("spec_json", "{} x", 100).is_err());
        assert!(validate_json("spec_json", "[1,2,3]", 3).is_err());
        assert!(validate_time("at_ms", -1).is_err());
    }

    #[test]
    fn event_kinds_have_one_stable_name_everywhere() {
        let mut names = std::collections::HashSet::new();
        for k in EventKind::ALL {
            assert!(names.insert(k.as_str()), "{k} twice");
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
            assert_eq!(
                serde_json::to_value(k).expect("serialize"),
                serde_json::Value::String(k.as_str().to_owned())
            );
        }
        assert!("piece.deleted".parse::<EventKind>().is_err());
        for (role, name) in [(UserRole::Admin, "admin"), (UserRole::Audience, "audience")] {
            assert_eq!(name.parse::<UserRole>(), Ok(role));
        }
        assert_eq!("owner".parse::<EnsembleRole>(), Ok(EnsembleRole::Owner));
        assert!("Owner".parse::<EnsembleRole>().is_err());
    }

    #[test]
    fn only_visible_ascii_and_sane_pages_and_phc_strings_pass() {
        assert!(validate_visible_ascii("key", "abc-123_!", 1, 64).is_ok());
        assert!(validate_visible_ascii("key", "a b", 1, 64).is_err());
        assert!(validate_visible_ascii("key", "é", 1, 64).is_err());
        assert!(validate_visible_ascii("csrf_token", "short", 16, 128).is_err());
        assert!(validate_page(Page::first(1)).is_ok());
        assert!(validate_page(Page::first(MAX_PAGE_LIMIT)).is_ok());
        assert!(validate_page(Page::first(0)).is_err());
        assert!(validate_password_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_ok());
        assert!(validate_password_hash("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_err());
        let err = validate_password_hash("hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(validate_username("Ana.Maria_2-x").is_ok());
        assert!(validate_username("ana maria").is_err());
        assert!(validate_note("note", Some("two\nlines\tand a tab"), 100).is_ok());
        assert!(validate_note("note", Some("bell\u{7}"), 100).is_err());
        assert!(validate_note("note", None, 0).is_ok());
    }

    #[test]
    fn preview_cuts_long_values_on_a_char_boundary() {
        let long = "é".repeat(100);
        let p = preview(&long);
        assert!(p.ends_with('…'));
        assert!(p.len() <= 64 + '…'.len_utf8());
    }
}
