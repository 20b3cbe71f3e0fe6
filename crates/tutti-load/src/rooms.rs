//! Chat in many rooms (`--chat-rooms`, `--chat-users`, issue 12): what the run needs made
//! before it starts, through the management API (`/api/v1` on the `--url`'s host and port).
//!
//! The admin (`--admin USER:PASSWORD`) is made by first-run setup on a server without
//! accounts, or signs in; it makes `--chat-users` staff accounts (role crew) for this run and
//! signs each in once (one access token per user, shared by its connections: a user holds one
//! connection per room), then makes `--chat-rooms` closed rooms with every user as a member.
//! Password hashing is the slow part (the server hashes in a fixed number of slots and
//! answers `429` when all are busy): the accounts are made and signed in one at a time, a
//! `429` waited out as its `Retry-After` says. The run itself is `run`'s, with one chat
//! client per user and room (`chat` keeps the rooms apart).
//!
//! Must never: retry anything but a busy server (`429`), or go on with a room or a user that
//! was not made (every failure ends the run with the step and the server's answer).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chat::StaffRooms;
use crate::client::Rng;
use crate::options::{Plan, RoomsPlan, Target};
use crate::LoadError;

/// Longest wait for one API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most `429` answers one request is retried through.
const MAX_BUSY_RETRIES: u32 = 120;
/// Largest answer read from the API.
const MAX_ANSWER: usize = 4 << 20;
/// Time kept between the end of a run and its access tokens' expiry.
pub(crate) const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// What `--chat-rooms` made, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RoomsFigures {
    /// Rooms made.
    pub rooms: u32,
    /// Users in each room (every user is in every room).
    pub users: u32,
    /// Connections asked for: rooms × users.
    pub connections: u64,
    /// The rooms' ids, in the order their connections were opened.
    pub room_ids: Vec<i64>,
    /// Whether the admin was made by first-run setup (else it signed in).
    pub admin_made: bool,
    /// Seconds spent making the admin's sign-in, the users, their sign-ins and the rooms.
    pub setup_s: f64,
    /// Seconds from the end of the ramp until every connected client followed its room.
    pub follow_s: f64,
    /// The users' access tokens' lifetime, seconds (`expires_in`).
    pub token_ttl_s: u64,
    /// Each room's last acknowledged `room_seq`, in `room_ids` order (the messages it got:
    /// the rooms are new).
    pub last_seqs: Vec<u64>,
    /// The lowest of them.
    pub last_seq_min: u64,
    /// The highest of them.
    pub last_seq_max: u64,
}

/// The users and rooms made for a run.
pub(crate) struct Made {
    pub staff: StaffRooms,
    pub admin_made: bool,
    pub setup_s: f64,
    pub token_ttl_s: u64,
}

/// An HTTP/1.1 request with a JSON body to the API; the status and the JSON answer (`null`
/// when the body is empty or not JSON).
async fn request(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value, Option<u64>), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n"
        );
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if method != "GET" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER as u64)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        parse_answer(&answer)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
}

/// Status, JSON body and `Retry-After` of a whole HTTP/1.1 answer (plain or chunked).
fn parse_answer(raw: &[u8]) -> Result<(u16, Value, Option<u64>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an answer without a header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("an answer without a status")?;
    let (mut chunked, mut retry_after) = (false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name == "retry-after" {
            retry_after = value.parse().ok();
        }
    }
    let mut body = &raw[split + 4..];
    let mut joined = Vec::new();
    if chunked {
        loop {
            let end = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a broken chunked answer")?;
            let size = std::str::from_utf8(&body[..end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                .ok_or("a broken chunk size")?;
            body = &body[end + 2..];
            if size == 0 {
                break;
            }
            joined.extend_from_slice(body.get(..size).ok_or("a short chunk")?);
            body = body.get(size + 2..).unwrap_or_default();
        }
        body = &joined;
    }
    let json = serde_json::from_slice(body).unwrap_or(Value::Null);
    Ok((status, json, retry_after))
}

/// The API's error code and message in its envelope, for an error's text.
fn why(status: u16, body: &Value) -> String {
    let code = body["error"]["code"].as_str().unwrap_or("");
    let message = body["error"]["message"].as_str().unwrap_or("");
    format!("HTTP {status} {code}: {message}")
}

/// Talks to one server's API.
struct Api {
    addr: SocketAddr,
    host: String,
    url: String,
}

impl Api {
    /// `request`, waiting out `429` (a busy password-hashing slot) as the answer says.
    async fn call(
        &self,
        step: &str,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), LoadError> {
        for _ in 0..=MAX_BUSY_RETRIES {
            let (status, json, retry) = request(self.addr, &self.host, method, path, bearer, body)
                .await
                .map_err(|message| LoadError::Unreachable {
                    url: self.url.clone(),
                    message: format!("{step}: {message}"),
                })?;
            if status != 429 {
                return Ok((status, json));
            }
            let wait = Duration::from_secs(retry.unwrap_or(1).clamp(1, 30));
            tokio::time::sleep(wait).await;
        }
        Err(LoadError::Unreachable {
            url: self.url.clone(),
            message: format!(
                "{step}: the server stayed busy (429) through {MAX_BUSY_RETRIES} tries"
            ),
        })
    }

    /// `call`, expecting `want`; anything else ends the run naming the step.
    async fn expect(
        &self,
        step: &str,
        want: u16,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, LoadError> {
        let (status, json) = self.call(step, method, path, bearer, body).await?;
        if status != want {
            return Err(LoadError::Unreachable {
                url: self.url.clone(),
                message: format!("{step}: {}", why(status, &json)),
            });
        }
        Ok(json)
    }
}

/// An access token and its lifetime from a sign-in's answer.
fn token_of(step: &str, url: &str, v: &Value) -> Result<(String, u64), LoadError> {
    match (v["access_token"].as_str(), v["expires_in"].as_u64()) {
        (Some(t), Some(ttl)) => Ok((t.to_owned(), ttl)),
        _ => Err(LoadError::Unreachable {
            url: url.to_owned(),
            message: format!("{step}: an answer without access_token and expires_in"),
        }),
    }
}

/// An id from an answer.
fn id_of(step: &str, url: &str, v: &Value) -> Result<i64, LoadError> {
    v["id"].as_i64().ok_or_else(|| LoadError::Unreachable {
        url: url.to_owned(),
        message: format!("{step}: an answer without an id"),
    })
}

/// Makes (or signs in) the admin, the users with their sign-ins, and the rooms.
pub(crate) async fn setup(
    target: &Target,
    addr: SocketAddr,
    rp: &RoomsPlan,
) -> Result<Made, LoadError> {
    let start = Instant::now();
    let host = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let api = Api {
        addr,
        host,
        url: target.url.clone(),
    };
    let url = target.url.as_str();
    let credentials = json!({"username": rp.admin_user, "password": rp.admin_password});
    let needed = api
        .expect("GET /api/v1/setup", 200, "GET", "/api/v1/setup", None, None)
        .await?["needed"]
        .as_bool()
        .unwrap_or(false);
    let (admin, admin_made) = if needed {
        let mut body = credentials.clone();
        body["display_name"] = "tutti load admin".into();
        let v = api
            .expect(
                "first-run setup (POST /api/v1/setup)",
                201,
                "POST",
                "/api/v1/setup",
                None,
                Some(&body),
            )
            .await?;
        (token_of("first-run setup", url, &v)?.0, true)
    } else {
        let (status, v) = api
            .call(
                "the admin's sign-in",
                "POST",
                "/api/v1/auth/login",
                None,
                Some(&credentials),
            )
            .await?;
        if status != 200 {
            return Err(LoadError::option(
                "--admin",
                format!(
                    "the server refused the admin's sign-in ({})",
                    why(status, &v)
                ),
            ));
        }
        (token_of("the admin's sign-in", url, &v)?.0, false)
    };

    // The users: names unique to this run, passwords nobody needs to know.
    let unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rng = Rng::new(unix_s ^ (u64::from(std::process::id()) << 32));
    let run = format!("{:x}", rng.next_u64() & 0xff_ffff_ffff);
    let mut ids = Vec::with_capacity(rp.users as usize);
    let mut tokens = Vec::with_capacity(rp.users as usize);
    let mut ttl = u64::MAX;
    for u in 0..rp.users {
        let username = format!("load-{run}-{u}");
        let password = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        let body = json!({"username": username, "password": password,
                          "display_name": format!("load {u}"), "role": "crew"});
        let (status, v) = api
            .call(
                "making a user (POST /api/v1/users)",
                "POST",
                "/api/v1/users",
                Some(&admin),
                Some(&body),
            )
            .await?;
        if status == 403 {
            return Err(LoadError::option(
                "--admin",
                format!(
                    "'{}' may not make users: it must be an admin ({})",
                    rp.admin_user,
                    why(status, &v)
                ),
            ));
        }
        if status != 201 {
            return Err(LoadError::Unreachable {
                url: url.to_owned(),
                message: format!("making user {username}: {}", why(status, &v)),
            });
        }
        ids.push(id_of("making a user", url, &v)?);
        let v = api
            .expect(
                "a user's sign-in (POST /api/v1/auth/login)",
                200,
                "POST",
                "/api/v1/auth/login",
                None,
                Some(&json!({"username": username, "password": password})),
            )
            .await?;
        let (token, t) = token_of("a user's sign-in", url, &v)?;
        ttl = ttl.min(t);
        tokens.push(token);
    }

    let mut rooms = Vec::with_capacity(rp.rooms as usize);
    for r in 0..rp.rooms {
        let body =
            json!({"kind": "closed", "name": format!("load {run} room {r}"), "members": ids});
        let v = api
            .expect(
                "making a room (POST /api/v1/chat/rooms)",
                201,
                "POST",
                "/api/v1/chat/rooms",
                Some(&admin),
                Some(&body),
            )
            .await?;
        rooms.push(id_of("making a room", url, &v)?);
    }
    Ok(Made {
        staff: StaffRooms { rooms, tokens },
        admin_made,
        setup_s: start.elapsed().as_secs_f64(),
        token_ttl_s: ttl,
    })
}

/// Refuses a run that would outlive its users' access tokens (they are checked with every
/// chat frame, so a sender's posts would be refused after they expire).
pub(crate) fn check_token_life(plan: &Plan, made: &Made) -> Result<(), LoadError> {
    let needed = plan.ramp_time() + plan.duration + crate::chat::CHAT_SETTLE + TOKEN_MARGIN;
    if needed.as_secs() > made.token_ttl_s {
        return Err(LoadError::option(
            "--duration",
            format!(
                "the users' access tokens live {} s (the server's api.access_token_ttl_s), but \
                 the ramp, --duration and settling need {} s plus a margin of {} s: ask for a \
                 shorter run",
                made.token_ttl_s,
                (needed - TOKEN_MARGIN).as_secs(),
                TOKEN_MARGIN.as_secs()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_plain_and_chunked() {
        let plain = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 8\r\n\r\n{\"id\":7}";
        let (status, v, retry) = parse_answer(plain).unwrap();
        assert_eq!((status, v["id"].as_i64(), retry), (201, Some(7), None));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n4\r\n\":9}\r\n0\r\n\r\n";
        let (status, v, _) = parse_answer(chunked).unwrap();
        assert_eq!((status, v["id"].as_i64()), (200, Some(9)));
        let busy = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\ncontent-length: 0\r\n\r\n";
        let (status, v, retry) = parse_answer(busy).unwrap();
        assert_eq!((status, v, retry), (429, Value::Null, Some(2)));
        assert!(parse_answer(b"garbage").is_err());
    }
}
