//! Chat's wiring (issue 12): the chat service (`tutti-rooms`) behind the live hub's [`Chat`]
//! trait, the management API's staff tokens behind the service's [`StaffAuth`], and the
//! service behind the API's [`ChatNotifier`], so a change made through a REST route reaches
//! live subscribers too; every committed change that may show a message (a live post, a REST
//! change, a held post's release) is also handed to [`ChatSounds`], which plays a `/play`
//! through its show's sound when the room allows it. Dependencies stay one-way: neither the
//! API nor the hub knows the service, and the service knows neither (nor any sound).
//!
//! Must never: hold chat logic (the service owns it) or a lock across `.await`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tutti_live::{BoxFuture, Chat, ChatOrigin, ChatSession, Header, Peer};
use tutti_protocol::{ClientFrame, FrameError};
use tutti_rooms::{Origin, Outlet, Rooms, Session, Staff, StaffAuth, Wrote};
use tutti_store::UserRole;

use crate::chat_sounds::ChatSounds;

/// The API's bearer access tokens as the chat service's staff sign-in.
pub struct ApiStaff(pub tutti_api::ApiState);

impl StaffAuth for ApiStaff {
    fn staff<'a>(&'a self, token: &'a str) -> tutti_rooms::BoxFuture<'a, Option<Staff>> {
        Box::pin(async move {
            let caller = self.0.verify_access(token).await.ok()?;
            (caller.user.role != UserRole::Audience && caller.user.active).then(|| Staff {
                user: caller.user.id,
                name: caller.user.display_name.clone(),
                admin: caller.user.role == UserRole::Admin,
            })
        })
    }
}

/// The service as the hub's [`Chat`]; the API's state calls chat bots for live posts, and
/// live posts may play through their show's sound.
pub struct LiveChat(pub Rooms, pub tutti_api::ApiState, pub ChatSounds);

struct LiveSession(Session, tutti_api::ApiState, ChatSounds);

impl Chat for LiveChat {
    fn session(&self, origin: ChatOrigin, peer: &Arc<Peer>) -> Box<dyn ChatSession> {
        let origin = match origin {
            ChatOrigin::Staff => Origin::Staff,
            ChatOrigin::Audience { show, guest } => Origin::Audience { show, guest },
            ChatOrigin::Display { show } => Origin::Display { show },
        };
        let mut session = self.0.session(origin);
        session.write_to(Arc::new(PeerOutlet(peer.clone())));
        Box::new(LiveSession(session, self.1.clone(), self.2.clone()))
    }
}

/// A connection's socket as the chat service's outlet: the room's writer writes a waiting
/// session's events itself, framed here, only while nothing else waits for the socket.
struct PeerOutlet(Arc<Peer>);

impl Outlet for PeerOutlet {
    fn write(&self, frames: &[&str]) -> Wrote {
        let sent = match frames {
            [one] => self
                .0
                .send_if_idle([Header::text(one.len()).as_bytes(), one.as_bytes()]),
            many => {
                let len = many.iter().map(|f| f.len() + 10).sum();
                let mut buf = Vec::with_capacity(len);
                for f in many {
                    buf.extend_from_slice(Header::text(f.len()).as_bytes());
                    buf.extend_from_slice(f.as_bytes());
                }
                self.0.send_if_idle([&buf, &[]])
            }
        };
        match sent {
            None => Wrote::Not,
            Some(false) => Wrote::All,
            Some(true) => Wrote::Behind,
        }
    }
}

impl ChatSession for LiveSession {
    fn handle(&mut self, frame: ClientFrame) -> BoxFuture<'_, Result<Vec<String>, FrameError>> {
        // A post, and whether it asks for a sound (only those are looked up for one).
        let post = match &frame {
            ClientFrame::ChatPost { text, .. } => Some(tutti_chat::play_command(text).is_some()),
            _ => None,
        };
        Box::pin(async move {
            let replies = self.0.handle(frame).await?;
            if let Some(plays) = post {
                // A new post (not a retry) may call chat bots, as a post through the API does.
                for (id, room, seq) in replies.iter().filter_map(|r| new_post(r)) {
                    self.1.chat_posted_live(id);
                    if plays {
                        self.2.changed(room, seq);
                    }
                }
            }
            Ok(replies)
        })
    }

    fn next(&mut self) -> BoxFuture<'_, Arc<str>> {
        Box::pin(self.0.next())
    }

    fn try_next(&mut self) -> Option<Arc<str>> {
        self.0.try_next()
    }

    fn signed_in(&self) -> bool {
        self.0.user().is_some()
    }
}

/// The message id, room and `seq` of a `chat_ack` for a new post (not a retry).
fn new_post(reply: &str) -> Option<(i64, i64, u64)> {
    let v: serde_json::Value = serde_json::from_str(reply).ok()?;
    if v["type"] != "chat_ack" || v["duplicate"] != false {
        return None;
    }
    Some((
        v["message"].as_i64()?,
        v["room"].as_i64()?,
        v["room_seq"].as_u64()?,
    ))
}

/// The service as the API's [`tutti_api::ChatNotifier`]: the room reads the change from the
/// store and publishes it in order (in a task: the route does not wait for subscribers); a
/// `/play` post may play through its show's sound.
pub struct Notifier(pub Rooms, pub ChatSounds);

impl tutti_api::ChatNotifier for Notifier {
    fn chat_changed(&self, room_id: i64, seq: u64) {
        let rooms = self.0.clone();
        tokio::spawn(async move { rooms.advanced(room_id, seq).await });
        self.1.changed(room_id, seq);
    }

    fn chat_banned(&self, room_id: i64, user_id: i64) {
        self.0.kick(room_id, user_id);
    }
}

/// Expires silent connections from the rooms' presence, sends the presence changes that
/// waited for the end of their room's interval (`presence_every`), and releases the audience
/// messages whose room delay ended (calling the chat bots they call then, and playing their
/// sounds through the show, as a post does), a few times per TTL and per interval (at least
/// every 250 ms), until shutdown.
pub async fn sweep_presence(
    rooms: Rooms,
    api: tutti_api::ApiState,
    sounds: ChatSounds,
    ttl: Duration,
    presence_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (ttl / 4)
        .min(presence_every / 4)
        .clamp(Duration::from_millis(25), Duration::from_millis(250));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                rooms.sweep_presence();
                for (room, seq, message) in rooms.release_held().await {
                    api.chat_posted_live(message);
                    sounds.changed(room, seq);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// How long an upload may wait for a message to take it before it is forgotten.
pub const UNPOSTED_UPLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often unposted uploads and unneeded attachment files are swept.
const UPLOAD_SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Forgets uploads no message took within [`UNPOSTED_UPLOAD_TTL`] and removes the files no
/// row names any more (deleted messages' too), at start and every 10 minutes, until shutdown.
pub async fn sweep_uploads(store: tutti_store::Store, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(UPLOAD_SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let cutoff = std::time::SystemTime::now()
                    .checked_sub(UNPOSTED_UPLOAD_TTL)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
                match store.chat_sweep_uploads(cutoff).await {
                    Ok(s) if s.rows + s.files > 0 => {
                        tracing::info!(uploads = s.rows, files = s.files, "swept chat attachments");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sweeping chat attachments failed"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
