//! Typed events and their stored and wire forms.
//!
//! [`Event`] is the typed view (kind + data struct) used inside the process; [`EventRecord`] is
//! an outbox row as it travels on the bus, to webhooks and to streams (the data kept as the
//! stored JSON, so fields this build does not know are passed through untouched). The kind
//! names are [`EventKind`] (owned by the store, which writes them) and are stable.
//!
//! Data structs are lenient: ids are required, descriptive fields optional, unknown fields ignored,
//! so an older reader never rejects a newer writer's event. This module must never put secrets or
//! password hashes into event data.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tutti_store::{EventKind, NewEvent, OutboxEvent};

use crate::error::EventsError;

/// `account.*` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountData {
    /// The user.
    pub user_id: i64,
    /// Their username, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Their role, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `ensemble.created` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsembleData {
    /// The ensemble.
    pub ensemble_id: i64,
    /// Its slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `ensemble.member_added` / `ensemble.member_removed` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberData {
    /// The ensemble.
    pub ensemble_id: i64,
    /// The member.
    pub user_id: i64,
    /// Their role in the ensemble.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `piece.created` / `piece.updated` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceData {
    /// The piece.
    pub piece_id: i64,
    /// Its slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Its (new) title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `piece.transitioned` / `show.transitioned` data: a lifecycle move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceTransitionData {
    /// The piece.
    pub piece_id: i64,
    /// The status it left.
    pub from: String,
    /// The status it entered.
    pub to: String,
}

/// `spec.drafted` / `spec.published` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecData {
    /// The piece.
    pub piece_id: i64,
    /// The spec version's row id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version_id: Option<i64>,
    /// The version number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// For `spec.published`: the version it replaced as current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_version: Option<i64>,
}

/// `show.created` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowData {
    /// The show.
    pub show_id: i64,
    /// Its piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece_id: Option<i64>,
    /// The spec version it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version_id: Option<i64>,
    /// Its join code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `rehearsal` or `performance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `show.transitioned` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowTransitionData {
    /// The show.
    pub show_id: i64,
    /// The status it left.
    pub from: String,
    /// The status it entered.
    pub to: String,
}

/// `override.applied` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideData {
    /// The show.
    pub show_id: i64,
    /// The logged override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_id: Option<i64>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Which parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// What was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// `chat.*` data: a change in an open or show room (direct and closed rooms emit no events;
/// see `tutti-store`'s `chat/published.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatData {
    /// The room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<i64>,
    /// The show, for a show's room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_id: Option<i64>,
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
    /// The change's place in the room's sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The message's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<i64>,
    /// Who made the change (the author for a post; the editor, deleter, booster or crew member;
    /// not published for a vote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<i64>,
    /// The author's display name (posts, edits and wall approvals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    /// The text (posts, edits and wall approvals; removed from the stored event once the
    /// message is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The message it replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// A deletion by a moderator of someone else's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderated: Option<bool>,
    /// The boost added or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boost: Option<String>,
    /// `question` or `announcement`: the message is one (on every event of that message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// A question's vote count after the vote (`chat.vote_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<u64>,
}

/// `webhook.created` data (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCreatedData {
    /// The webhook.
    pub webhook_id: i64,
    /// Its ensemble.
    pub ensemble_id: i64,
    /// Its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its kind filter (empty = all).
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// `webhook.disabled` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDisabledData {
    /// The webhook.
    pub webhook_id: i64,
    /// Its ensemble.
    pub ensemble_id: i64,
    /// Deliveries in a row that gave up.
    pub consecutive_failures: u32,
    /// Why it was disabled.
    pub reason: String,
}

/// A typed event: its kind and its data. Serialized as `{"kind": "...", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data")]
#[non_exhaustive]
pub enum Event {
    /// `account.created`
    #[serde(rename = "account.created")]
    AccountCreated(AccountData),
    /// `account.deactivated`
    #[serde(rename = "account.deactivated")]
    AccountDeactivated(AccountData),
    /// `account.password_changed`
    #[serde(rename = "account.password_changed")]
    AccountPasswordChanged(AccountData),
    /// `ensemble.created`
    #[serde(rename = "ensemble.created")]
    EnsembleCreated(EnsembleData),
    /// `ensemble.member_added`
    #[serde(rename = "ensemble.member_added")]
    EnsembleMemberAdded(MemberData),
    /// `ensemble.member_removed`
    #[serde(rename = "ensemble.member_removed")]
    EnsembleMemberRemoved(MemberData),
    /// `piece.created`
    #[serde(rename = "piece.created")]
    PieceCreated(PieceData),
    /// `piece.updated`
    #[serde(rename = "piece.updated")]
    PieceUpdated(PieceData),
    /// `piece.transitioned`
    #[serde(rename = "piece.transitioned")]
    PieceTransitioned(PieceTransitionData),
    /// `spec.drafted`
    #[serde(rename = "spec.drafted")]
    SpecDrafted(SpecData),
    /// `spec.published`
    #[serde(rename = "spec.published")]
    SpecPublished(SpecData),
    /// `show.created`
    #[serde(rename = "show.created")]
    ShowCreated(ShowData),
    /// `show.transitioned`
    #[serde(rename = "show.transitioned")]
    ShowTransitioned(ShowTransitionData),
    /// `override.applied`
    #[serde(rename = "override.applied")]
    OverrideApplied(OverrideData),
    /// `chat.message`
    #[serde(rename = "chat.message")]
    ChatMessage(ChatData),
    /// `chat.message_edited`
    #[serde(rename = "chat.message_edited")]
    ChatMessageEdited(ChatData),
    /// `chat.message_deleted`
    #[serde(rename = "chat.message_deleted")]
    ChatMessageDeleted(ChatData),
    /// `chat.boost_added`
    #[serde(rename = "chat.boost_added")]
    ChatBoostAdded(ChatData),
    /// `chat.boost_removed`
    #[serde(rename = "chat.boost_removed")]
    ChatBoostRemoved(ChatData),
    /// `chat.vote_changed`
    #[serde(rename = "chat.vote_changed")]
    ChatVoteChanged(ChatData),
    /// `chat.question_answered`
    #[serde(rename = "chat.question_answered")]
    ChatQuestionAnswered(ChatData),
    /// `chat.message_pinned`
    #[serde(rename = "chat.message_pinned")]
    ChatMessagePinned(ChatData),
    /// `chat.message_unpinned`
    #[serde(rename = "chat.message_unpinned")]
    ChatMessageUnpinned(ChatData),
    /// `chat.wall_approved`
    #[serde(rename = "chat.wall_approved")]
    ChatWallApproved(ChatData),
    /// `chat.wall_rejected`
    #[serde(rename = "chat.wall_rejected")]
    ChatWallRejected(ChatData),
    /// `webhook.created`
    #[serde(rename = "webhook.created")]
    WebhookCreated(WebhookCreatedData),
    /// `webhook.disabled`
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled(WebhookDisabledData),
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::AccountCreated(_) => EventKind::AccountCreated,
            Self::AccountDeactivated(_) => EventKind::AccountDeactivated,
            Self::AccountPasswordChanged(_) => EventKind::AccountPasswordChanged,
            Self::EnsembleCreated(_) => EventKind::EnsembleCreated,
            Self::EnsembleMemberAdded(_) => EventKind::EnsembleMemberAdded,
            Self::EnsembleMemberRemoved(_) => EventKind::EnsembleMemberRemoved,
            Self::PieceCreated(_) => EventKind::PieceCreated,
            Self::PieceUpdated(_) => EventKind::PieceUpdated,
            Self::PieceTransitioned(_) => EventKind::PieceTransitioned,
            Self::SpecDrafted(_) => EventKind::SpecDrafted,
            Self::SpecPublished(_) => EventKind::SpecPublished,
            Self::ShowCreated(_) => EventKind::ShowCreated,
            Self::ShowTransitioned(_) => EventKind::ShowTransitioned,
            Self::OverrideApplied(_) => EventKind::OverrideApplied,
            Self::ChatMessage(_) => EventKind::ChatMessage,
            Self::ChatMessageEdited(_) => EventKind::ChatMessageEdited,
            Self::ChatMessageDeleted(_) => EventKind::ChatMessageDeleted,
            Self::ChatBoostAdded(_) => EventKind::ChatBoostAdded,
            Self::ChatBoostRemoved(_) => EventKind::ChatBoostRemoved,
            Self::ChatVoteChanged(_) => EventKind::ChatVoteChanged,
            Self::ChatQuestionAnswered(_) => EventKind::ChatQuestionAnswered,
            Self::ChatMessagePinned(_) => EventKind::ChatMessagePinned,
            Self::ChatMessageUnpinned(_) => EventKind::ChatMessageUnpinned,
            Self::ChatWallApproved(_) => EventKind::ChatWallApproved,
            Self::ChatWallRejected(_) => EventKind::ChatWallRejected,
            Self::WebhookCreated(_) => EventKind::WebhookCreated,
            Self::WebhookDisabled(_) => EventKind::WebhookDisabled,
        }
    }

    /// Builds the typed event from a kind name and its data object.
    pub fn from_parts(kind: &str, data: &Value) -> Result<Self, EventsError> {
        let known: EventKind = kind
            .parse()
            .map_err(|_| EventsError::UnknownKind(kind.to_owned()))?;
        let tagged = serde_json::json!({ "kind": known.as_str(), "data": data });
        serde_json::from_value(tagged).map_err(|e| EventsError::Data {
            kind: kind.to_owned(),
            detail: e.to_string(),
        })
    }

    /// The data object, as stored in the outbox.
    pub fn data(&self) -> Value {
        let mut tagged = serde_json::to_value(self).unwrap_or(Value::Null);
        tagged
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null)
    }

    /// The outbox row to append for this event (used by store operations through
    /// `append_event`, or by tests).
    pub fn to_new_event(&self, ensemble_id: Option<i64>, subject: String, at_ms: i64) -> NewEvent {
        NewEvent {
            kind: self.kind(),
            ensemble_id,
            subject,
            data: self.data(),
            at_ms,
        }
    }
}

/// Whether events of `kind` are about objects only an ensemble's editors (owners, performers,
/// admins) may read: webhooks, whose URLs often carry a secret. Readers who are not editors get
/// such events [redacted](EventRecord::redacted).
pub fn editors_only(kind: &str) -> bool {
    kind.starts_with("webhook.")
}

/// One stored event as it travels on the bus, to webhooks and to streams.
///
/// Its JSON form (the body of a webhook POST, the `data:` of an SSE event, a WebSocket text
/// frame) is `{"id", "kind", "ensemble_id", "subject", "at_ms", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The outbox id: increasing, the order of commits; use it to resume (`Last-Event-ID`).
    pub id: i64,
    /// The kind name (kept as text so kinds added later still travel).
    pub kind: String,
    /// The ensemble it belongs to (`None` for account events).
    pub ensemble_id: Option<i64>,
    /// What it is about, e.g. `piece:12`.
    pub subject: String,
    /// When it happened (unix ms).
    pub at_ms: i64,
    /// The data object, exactly as stored.
    pub data: Value,
}

impl EventRecord {
    /// The record of an outbox row. Data that is not valid JSON (the store refuses it, so only a
    /// damaged file has it) is carried as a JSON string.
    pub fn from_row(row: OutboxEvent) -> Self {
        let data = serde_json::from_str(&row.data_json).unwrap_or(Value::String(row.data_json));
        Self {
            id: row.id,
            kind: row.kind,
            ensemble_id: row.ensemble_id,
            subject: row.subject,
            at_ms: row.at_ms,
            data,
        }
    }

    /// The same event with its data reduced to the ids it names (`*_id` fields) plus
    /// `"redacted": true`: what a reader may see of an event about an object they may not read.
    pub fn redacted(&self) -> EventRecord {
        let mut data = serde_json::Map::new();
        if let Value::Object(fields) = &self.data {
            for (k, v) in fields {
                if k.ends_with("_id") && (v.is_i64() || v.is_null()) {
                    data.insert(k.clone(), v.clone());
                }
            }
        }
        data.insert("redacted".into(), Value::Bool(true));
        EventRecord {
            data: Value::Object(data),
            ..self.clone()
        }
    }

    /// The outbox row this record came from.
    pub fn to_row(&self) -> OutboxEvent {
        OutboxEvent {
            id: self.id,
            kind: self.kind.clone(),
            ensemble_id: self.ensemble_id,
            subject: self.subject.clone(),
            data_json: self.data.to_string(),
            at_ms: self.at_ms,
        }
    }

    /// The known kind, if this build knows it.
    pub fn known_kind(&self) -> Option<EventKind> {
        self.kind.parse().ok()
    }

    /// The typed event.
    pub fn event(&self) -> Result<Event, EventsError> {
        Event::from_parts(&self.kind, &self.data)
    }

    /// The wire form (compact JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl From<OutboxEvent> for EventRecord {
    fn from(row: OutboxEvent) -> Self {
        Self::from_row(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EventKind::ALL {
            let data = match kind {
                EventKind::WebhookDisabled => serde_json::json!({
                    "webhook_id": 1, "ensemble_id": 2, "consecutive_failures": 3, "reason": "x"}),
                _ => serde_json::json!({
                    "user_id": 1, "ensemble_id": 2, "piece_id": 3, "show_id": 4, "webhook_id": 5,
                    "from": "a", "to": "b"}),
            };
            let ev =
                Event::from_parts(kind.as_str(), &data).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(ev.kind(), kind);
            let again = Event::from_parts(kind.as_str(), &ev.data()).expect("round trip");
            assert_eq!(again, ev);
        }
    }

    #[test]
    fn unknown_kinds_and_bad_data_are_named() {
        assert_eq!(
            Event::from_parts("piece.eaten", &serde_json::json!({})),
            Err(EventsError::UnknownKind("piece.eaten".into()))
        );
        match Event::from_parts("piece.created", &serde_json::json!({"title": "x"})) {
            Err(EventsError::Data { kind, detail }) => {
                assert_eq!(kind, "piece.created");
                assert!(detail.contains("piece_id"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redaction_keeps_only_ids() {
        let rec = EventRecord {
            id: 9,
            kind: "webhook.created".into(),
            ensemble_id: Some(4),
            subject: "webhook:2".into(),
            at_ms: 1,
            data: serde_json::json!({"webhook_id": 2, "ensemble_id": 4,
                "url": "http://venue.example/hook?token=s3cret", "kinds": ["piece.created"]}),
        };
        let r = rec.redacted();
        assert_eq!(
            r.data,
            serde_json::json!({"webhook_id": 2, "ensemble_id": 4, "redacted": true})
        );
        assert_eq!((r.id, &r.kind, r.ensemble_id), (9, &rec.kind, Some(4)));
        assert!(editors_only("webhook.created") && editors_only("webhook.disabled"));
        assert!(!editors_only("piece.created"));
    }

    #[test]
    fn records_keep_unknown_fields_and_convert_to_rows() {
        let row = OutboxEvent {
            id: 7,
            kind: "piece.created".into(),
            ensemble_id: Some(2),
            subject: "piece:3".into(),
            data_json: r#"{"piece_id":3,"slug":"s","future":true}"#.into(),
            at_ms: 99,
        };
        let rec = EventRecord::from_row(row.clone());
        assert_eq!(rec.data["future"], Value::Bool(true));
        assert_eq!(
            rec.to_row().data_json.parse::<Value>().ok(),
            row.data_json.parse::<Value>().ok()
        );
        match rec.event().expect("typed") {
            Event::PieceCreated(p) => assert_eq!((p.piece_id, p.slug.as_deref()), (3, Some("s"))),
            other => panic!("{other:?}"),
        }
        let wire: Value = serde_json::from_str(&rec.to_json()).expect("json");
        assert_eq!(wire["id"], 7);
        assert_eq!(wire["kind"], "piece.created");
    }
}
