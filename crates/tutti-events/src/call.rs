//! One signed POST and its answer: what chat bots' outgoing webhooks need (issue 12, item 7),
//! where the receiver's answer matters, unlike an event delivery's.
//!
//! The request is signed exactly as a webhook delivery (`tutti-signature`, see
//! [`crate::signature`]), goes only to an address the [`TargetPolicy`] allows (checked on the
//! resolved address when connecting), follows no redirect, and is bounded by one timeout from
//! connecting to the answer's last byte. At most [`MAX_ANSWER`] bytes of the answer are read.
//!
//! Must never: connect to an address the policy refuses, read an unbounded answer, wait past
//! its timeout, or put the secret or the signature into an error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use crate::dispatch::{check_webhook_url, http_client, HttpClient};
use crate::signature::{sign, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
use crate::target::{TargetForbidden, TargetPolicy};

/// The most bytes of an answer read.
pub const MAX_ANSWER: usize = 64 << 10;

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Its `Content-Type`, if any (as sent).
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The URL cannot be delivered to (not http/https, no host) or the request not built.
    #[error("{0}")]
    Url(String),
    /// The target policy refused the address.
    #[error("{0}")]
    Forbidden(String),
    /// No full answer within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connecting, sending or reading failed (the answer may have been larger than
    /// [`MAX_ANSWER`]).
    #[error("connection error: {0}")]
    Connection(String),
}

/// A client for signed calls (HTTP/1.1, rustls for `https://`), pooled; cheap to clone.
#[derive(Clone)]
pub struct SignedCaller {
    client: HttpClient,
}

impl std::fmt::Debug for SignedCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedCaller")
    }
}

impl SignedCaller {
    /// A client that connects only where `policy` allows.
    pub fn new(policy: TargetPolicy) -> SignedCaller {
        SignedCaller {
            client: http_client(policy),
        }
    }

    /// POSTs `body` (JSON) to `url`, signed with `secret`, with the `tutti-event` header
    /// `kind` and the `tutti-delivery` header `delivery`; the answer, or why none came within
    /// `timeout`.
    pub async fn post(
        &self,
        url: &str,
        secret: &str,
        kind: &str,
        delivery: &str,
        body: String,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        check_webhook_url(url).map_err(|e| CallError::Url(e.to_string()))?;
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let request = Request::post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("tutti-bots/", env!("CARGO_PKG_VERSION")),
            )
            .header(EVENT_HEADER, kind)
            .header(DELIVERY_HEADER, delivery)
            .header(SIGNATURE_HEADER, sign(secret, t, body.as_bytes()))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Url(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| match forbidden_in(&e) {
                        Some(f) => CallError::Forbidden(f.to_string()),
                        None => CallError::Connection(chain(&e)),
                    })?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CallError::Connection(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer {
                status,
                content_type,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout(timeout)))
    }
}

/// The error and its sources, joined.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// The refusal of the target policy behind a failed request, if that is why it failed.
fn forbidden_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a TargetForbidden> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<TargetForbidden>() {
            return Some(f);
        }
        source = s.source();
    }
    None
}
