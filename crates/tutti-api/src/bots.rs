//! Chat bots' outgoing webhooks (issue 12, item 7): when a post mentions a bot of its room
//! (`@name`, by `tutti_chat::mentions`) or is made in a direct room with a bot, the bot's URL
//! gets a signed POST (`tutti-signature` as issue 6's webhooks, with the bot's webhook secret;
//! `tutti-event: chat.bot_call`) of the room, the message, its author and the bot. A `2xx`
//! answer within `ApiConfig::bot_timeout` (7 s by default) whose body is `text/plain` or JSON
//! `{"text": "..."}` is posted into the room **as the bot**, replying to the message; an empty
//! `2xx` answer posts nothing (the bot chose not to answer). A timeout, another status, an
//! unreachable or refused address, or a body that is neither posts a failure message, also
//! **as the bot** and replying to the message, e.g. "Bot helper did not answer within 7 s"
//! (there is no system author; the bot is the one who failed). Reply and failure both use the
//! client message id `bot-reply-<message id>`, so a message gets at most one of them per bot.
//!
//! Calls never hold up the post that triggered them: [`ApiState::call_bots`] spawns them after
//! the commit. At most [`MAX_ACTIVE`] calls are in flight and [`MAX_WAITING`] wait for a slot;
//! a call beyond that is not made and its failure message says so. Posts by bots never call
//! bots (no loops), nor do shadow-muted posts (nobody else sees them). A reply is posted
//! through the store like any post and then told to chat's live side
//! ([`ApiState::chat_changed`]), so followers get it in the room's order.
//!
//! Posts that call bots: those made through the REST API (`POST /chat/rooms/{id}/messages`)
//! and over `/live/v1` (the composition root calls [`ApiState::chat_posted_live`]). A post
//! held by its room's audience delay calls its bots at its release (the server's chat sweep
//! calls [`ApiState::chat_posted_live`] for each message it released), never before, and never
//! if a moderator removed it first; a bot's own posts are never held (it is no phone).
//!
//! Must never: wait for a bot on the poster's request, call an address the webhook target
//! policy refuses, post a reply that `tutti_chat::MessageText` refuses, or put the secret or a
//! connection error's details into the room.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tutti_chat::MessageText;
use tutti_events::{Answer, CallError, SignedCaller, TargetPolicy};
use tutti_store::{ChatBotRow, ChatMessageRow, ChatRoomKind, NewChatMessage};

use crate::ApiState;

/// Calls in flight at once.
pub const MAX_ACTIVE: usize = 16;
/// Calls waiting for a slot; more are not made.
pub const MAX_WAITING: usize = 256;

/// The client and the slots for bots' outgoing webhooks.
pub(crate) struct BotCalls {
    caller: SignedCaller,
    waiting: Arc<Semaphore>,
    active: Arc<Semaphore>,
}

impl BotCalls {
    /// Calls that connect only where `policy` allows (the webhooks' policy).
    pub(crate) fn new(policy: TargetPolicy) -> BotCalls {
        BotCalls {
            caller: SignedCaller::new(policy),
            waiting: Arc::new(Semaphore::new(MAX_WAITING)),
            active: Arc::new(Semaphore::new(MAX_ACTIVE)),
        }
    }
}

/// What became of one call.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Post this text as the bot's reply.
    Reply(String),
    /// The bot answered 2xx with nothing: post nothing.
    Silent,
    /// Post this failure message (it already names the bot).
    Failed(String),
}

/// "7 s", "0.3 s".
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The reply in a 2xx answer (`None`: empty), or why there is none.
fn answer_text(a: &Answer) -> Result<Option<String>, String> {
    if !(200..300).contains(&a.status) {
        return Err(format!("answered HTTP {} instead of a reply", a.status));
    }
    if a.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let media = a
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = match media.as_str() {
        "text/plain" => std::str::from_utf8(&a.body)
            .map(str::to_owned)
            .map_err(|_| "answered text that is not UTF-8".to_owned())?,
        "application/json" => {
            let v: Value = serde_json::from_slice(&a.body)
                .map_err(|_| "answered JSON that does not parse".to_owned())?;
            match v.get("text") {
                Some(Value::String(t)) => t.clone(),
                _ => return Err("answered JSON without a \"text\" string".to_owned()),
            }
        }
        "" => return Err("answered without a Content-Type".to_owned()),
        other => return Err(format!("answered {other}, not text/plain or JSON")),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    MessageText::parse(&text)
        .map(|t| Some(t.into_string()))
        .map_err(|e| format!("answered a text that cannot be posted ({e})"))
}

fn outcome(bot: &ChatBotRow, answer: Result<Answer, CallError>) -> Outcome {
    let name = &bot.name;
    match answer {
        Ok(a) => match answer_text(&a) {
            Ok(Some(text)) => Outcome::Reply(text),
            Ok(None) => Outcome::Silent,
            Err(why) => Outcome::Failed(format!("Bot {name} {why}.")),
        },
        Err(CallError::Timeout(d)) => {
            Outcome::Failed(format!("Bot {name} did not answer within {}.", seconds(d)))
        }
        Err(CallError::Forbidden(_)) => Outcome::Failed(format!(
            "Bot {name} could not be called: its webhook's address is not allowed."
        )),
        Err(CallError::Url(_)) => Outcome::Failed(format!(
            "Bot {name} could not be called: its webhook URL is not usable."
        )),
        Err(CallError::Connection(_)) => {
            Outcome::Failed(format!("Bot {name} could not be reached."))
        }
    }
}

impl ApiState {
    /// A post committed through a route (not a retry): call the bots it calls, in the
    /// background (see the module's documentation). Returns at once.
    pub(crate) fn call_bots(&self, message: &ChatMessageRow) {
        // Shadow-muted: never; held by the room's audience delay: when it is released
        // (`chat_posted_live` again, from the release), so crew can catch it first; deleted
        // (removed between its release and this read): never.
        if message.hidden || message.held_until_ms.is_some() || message.deleted_at_ms.is_some() {
            return;
        }
        if !self.store.chat_bots_may_exist() {
            return;
        }
        let s = self.clone();
        let m = message.clone();
        tokio::spawn(async move {
            if let Err(e) = s.call_bots_now(m).await {
                tracing::warn!(error = %e.message, "calling chat bots failed");
            }
        });
    }

    /// A post committed over `/live/v1` (not a retry): call the bots it calls, as
    /// [`ApiState::call_bots`] does for the API's own posts. Returns at once.
    pub fn chat_posted_live(&self, message_id: i64) {
        // Without a bot nothing is called: no read for every post of a busy room.
        if !self.store.chat_bots_may_exist() {
            return;
        }
        let s = self.clone();
        tokio::spawn(async move {
            match s.store.chat_message(message_id).await {
                Ok(Some(m)) => s.call_bots(&m),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading a live post for chat bots failed"),
            }
        });
    }

    async fn call_bots_now(&self, m: ChatMessageRow) -> Result<(), crate::error::ApiError> {
        if self.store.chat_bot(m.author_id).await?.is_some() {
            return Ok(());
        }
        let mentions = MessageText::parse(&m.text)
            .map(|t| tutti_chat::mentions(&t))
            .unwrap_or_default();
        let bots = self
            .store
            .chat_called_bots(m.room_id, m.author_id, mentions)
            .await?;
        if bots.is_empty() {
            return Ok(());
        }
        let room = self
            .store
            .chat_room(m.room_id)
            .await?
            .ok_or_else(|| crate::error::ApiError::not_found("chat room"))?;
        let author = self.store.user(m.author_id).await?;
        let payload_base = json!({
            "kind": "chat.bot_call",
            "reason": if room.kind == ChatRoomKind::Direct { "direct" } else { "mention" },
            "at_ms": self.now_ms(),
            "room": {
                "id": room.id,
                "kind": room.kind.as_str(),
                "name": room.name,
                "ensemble_id": room.ensemble_id,
                "show_id": room.show_id,
            },
            "message": {
                "id": m.id,
                "seq": m.posted_seq,
                "text": m.text,
                "reply_to": m.reply_to,
                "client_message_id": m.client_message_id,
                "created_at_ms": m.created_at_ms,
            },
            "author": {
                "id": m.author_id,
                "name": author.as_ref().map(|u| u.display_name.clone()),
                "username": author.as_ref().map(|u| u.username.clone()),
            },
        });
        for bot in bots {
            let mut payload = payload_base.clone();
            payload["bot"] = json!({"id": bot.user_id, "name": bot.name});
            match self.bots.waiting.clone().try_acquire_owned() {
                Ok(permit) => {
                    let s = self.clone();
                    let m = m.clone();
                    tokio::spawn(async move { s.call_bot(bot, m, payload, permit).await });
                }
                Err(_) => {
                    let text = format!(
                        "Bot {} could not be called: too many bot calls are waiting.",
                        bot.name
                    );
                    self.post_as_bot(&bot, &m, text).await;
                }
            }
        }
        Ok(())
    }

    async fn call_bot(
        &self,
        bot: ChatBotRow,
        m: ChatMessageRow,
        payload: Value,
        waiting: OwnedSemaphorePermit,
    ) {
        let Some(url) = bot.webhook_url.clone() else {
            return;
        };
        let Ok(_active) = self.bots.active.clone().acquire_owned().await else {
            return;
        };
        drop(waiting);
        let answer = self
            .bots
            .caller
            .post(
                &url,
                &bot.webhook_secret,
                "chat.bot_call",
                &format!("bot-{}-message-{}", bot.user_id, m.id),
                payload.to_string(),
                self.config.bot_timeout,
            )
            .await;
        if let Err(e) = &answer {
            tracing::info!(bot = bot.user_id, message = m.id, error = %e, "a chat bot's webhook failed");
        }
        match outcome(&bot, answer) {
            Outcome::Reply(text) | Outcome::Failed(text) => self.post_as_bot(&bot, &m, text).await,
            Outcome::Silent => {}
        }
    }

    /// Posts `text` as `bot`, replying to `to`, and tells chat's live side.
    async fn post_as_bot(&self, bot: &ChatBotRow, to: &ChatMessageRow, text: String) {
        let posted = self
            .store
            .chat_post(NewChatMessage {
                room_id: to.room_id,
                author_id: bot.user_id,
                client_message_id: format!("bot-reply-{}", to.id),
                text,
                reply_to: Some(to.id),
                at_ms: self.now_ms(),
            })
            .await;
        match posted {
            Ok(p) if !p.duplicate => self.chat_changed(to.room_id, p.seq),
            Ok(_) => {}
            Err(e) => tracing::warn!(bot = bot.user_id, message = to.id, error = %e,
                "a chat bot's reply could not be posted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, ct: Option<&str>, body: &str) -> Answer {
        Answer {
            status,
            content_type: ct.map(str::to_owned),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn answers_become_replies_or_named_failures() {
        let plain = answer(200, Some("text/plain; charset=utf-8"), "hello");
        assert_eq!(answer_text(&plain), Ok(Some("hello".into())));
        let json = answer(201, Some("application/json"), r#"{"text":"hi"}"#);
        assert_eq!(answer_text(&json), Ok(Some("hi".into())));
        assert_eq!(answer_text(&answer(204, None, "")), Ok(None));
        assert!(answer_text(&answer(500, Some("text/plain"), "x"))
            .unwrap_err()
            .contains("HTTP 500"));
        assert!(answer_text(&answer(200, Some("text/html"), "<b>x</b>"))
            .unwrap_err()
            .contains("text/html"));
        assert!(answer_text(&answer(200, Some("application/json"), r#"{"t":1}"#)).is_err());
        // A reply the message checks refuse (a bidi override) is a failure, never posted.
        assert!(answer_text(&answer(200, Some("text/plain"), "a\u{202e}b")).is_err());
        assert_eq!(seconds(Duration::from_secs(7)), "7 s");
        assert_eq!(seconds(Duration::from_millis(300)), "0.3 s");
    }
}
