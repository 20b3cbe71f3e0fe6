//! The webhook dispatcher task: claims due deliveries, POSTs them signed, records the outcome.
//!
//! Each claimed delivery is one HTTP/1.1 POST of the event's JSON with the headers
//! `tutti-event`, `tutti-delivery`, `tutti-signature` (see [`crate::signature`]), bounded by
//! `request_timeout` (connect to the last body byte). 2xx is delivered; 5xx, 408, 429, timeouts
//! and connection errors are retried with jittered exponential backoff
//! (`backoff_base × 2^(attempt-1)`, capped at `backoff_cap`, then a uniformly random 50–100 % of
//! it) until `max_attempts`; any other status gives up at once. Each outcome is recorded in the
//! store, which counts consecutive deliveries that gave up and disables the webhook (with a
//! `webhook.disabled` event) at `failure_threshold`.
//!
//! Delivery is at least once: a claim leases the delivery for `request_timeout + lease_margin`,
//! and a dispatcher that dies mid-attempt leaves it due again after the lease; receivers dedupe on
//! `tutti-delivery`. `http://` and `https://` (rustls, Mozilla roots) URLs are delivered, each
//! only to an address the [`TargetPolicy`] allows, checked on the resolved address when
//! connecting (a refused target gives up at once, with a `webhook_target_forbidden` error).
//! It must never hold the store's writer while waiting on the network, never retry a 4xx other
//! than 408/429, never connect to an address the policy refuses, and never follow redirects.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tutti_store::{AttemptOutcome, DueDelivery, Store, StoreError};

use crate::config::DispatcherConfig;
use crate::error::EventsError;
use crate::event::EventRecord;
use crate::signature::{sign, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
use crate::target::{GuardedConnector, TargetForbidden, TargetPolicy};

pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// Largest response body read (and thrown away) from a receiver.
const MAX_RESPONSE_BODY: usize = 64 << 10;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Checks that this build can deliver to `url`: an absolute `http://` or `https://` URL (the
/// scheme in any case) with a host. Call it before creating a webhook, so a subscription that
/// can never be delivered is refused up front. Where it may be delivered is the
/// [`TargetPolicy`](crate::TargetPolicy)'s business.
pub fn check_webhook_url(url: &str) -> Result<(), EventsError> {
    let bad = |reason| EventsError::WebhookUrl {
        url: url.to_owned(),
        reason,
    };
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(bad("must be an http:// or https:// URL"));
    }
    let uri: Uri = url.parse().map_err(|_| bad("is not a valid URL"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// The delay before attempt `attempt + 1`, given `attempt` (>= 1) attempts failed:
/// `base × 2^(attempt-1)` capped at `cap`, then scaled by `jitter` in `[0.5, 1.0]`.
pub fn backoff_delay(base: Duration, cap: Duration, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1);
    let full = if exp >= 32 {
        cap
    } else {
        base.saturating_mul(1u32 << exp).min(cap)
    };
    full.mul_f64(jitter.clamp(0.5, 1.0))
}

/// The client for deliveries: HTTP/1.1 over TCP, or over TLS (rustls, the Mozilla roots) for
/// `https://`, connecting only where `policy` allows (see [`crate::target`]).
pub(crate) fn http_client(policy: TargetPolicy) -> HttpClient {
    let tcp = GuardedConnector {
        policy: Arc::new(policy),
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4)
        .build(connector)
}

/// TLS for `https://` receivers: the ring provider and the Mozilla root certificates built in
/// (no dependence on the machine's certificate store). rustls deprecates ring's provider for
/// lacking post-quantum key exchange; aws-lc-rs has it but is a large C build, and a webhook
/// body is no long-lived secret, so ring stays until that trade changes.
#[allow(deprecated)]
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub(crate) struct Dispatcher {
    pub(crate) store: Store,
    pub(crate) cfg: DispatcherConfig,
    pub(crate) client: HttpClient,
    pub(crate) wake: Arc<Notify>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// What one HTTP attempt produced.
enum Attempted {
    Status(StatusCode),
    Failed { error: String, retryable: bool },
}

impl Dispatcher {
    pub(crate) async fn run(mut self) {
        let slots = Arc::new(Semaphore::new(self.cfg.max_in_flight));
        let mut in_flight = JoinSet::new();
        let lease_ms = duration_ms(self.cfg.request_timeout + self.cfg.lease_margin);
        let cfg = Arc::new(self.cfg.clone());
        loop {
            if *self.stop.borrow() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            let mut sleep_for = self.cfg.poll_interval;
            let free = slots.available_permits();
            if free > 0 {
                // A cheap read first, so an idle dispatcher never queues a write.
                let now = now_ms();
                match self.store.next_delivery_due_at().await {
                    Ok(Some(at)) if at <= now => {
                        let limit = u32::try_from(free).unwrap_or(u32::MAX).min(1000);
                        match self.store.claim_due_deliveries(now, lease_ms, limit).await {
                            Ok(claimed) => {
                                let full = claimed.len() >= limit as usize;
                                for due in claimed {
                                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                                        break; // cannot happen: at most `free` were claimed
                                    };
                                    in_flight.spawn(attempt(
                                        self.store.clone(),
                                        self.client.clone(),
                                        Arc::clone(&cfg),
                                        due,
                                        slot,
                                    ));
                                }
                                if full {
                                    continue; // more may be due; claim again when slots free up
                                }
                                sleep_for = Duration::from_millis(1).max(sleep_for / 4);
                            }
                            Err(StoreError::Closed) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "dispatcher: cannot claim deliveries");
                            }
                        }
                    }
                    Ok(Some(at)) => {
                        let wait = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
                        sleep_for = Duration::from_millis(wait.max(1)).min(sleep_for);
                    }
                    Ok(None) => {}
                    Err(StoreError::Closed) => break,
                    Err(e) => tracing::warn!(error = %e, "dispatcher: cannot read due deliveries"),
                }
            }
            tokio::select! {
                // A dropped `Events` (sender gone) stops the dispatcher too.
                stopped = self.stop.changed() => if stopped.is_err() { break },
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep_for) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        // Let attempts in flight finish and record (bounded by their own timeout), so a clean
        // stop does not deliver twice.
        let grace = self.cfg.request_timeout + Duration::from_secs(1);
        let finish = async { while in_flight.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, finish).await.is_err() {
            in_flight.abort_all();
        }
    }
}

async fn post(client: &HttpClient, cfg: &DispatcherConfig, due: &DueDelivery) -> Attempted {
    let failed = |error: String, retryable| Attempted::Failed { error, retryable };
    if let Err(e) = check_webhook_url(&due.url) {
        return failed(e.to_string(), false);
    }
    let body = EventRecord::from_row(due.event.clone()).to_json();
    let t = now_ms() / 1000;
    let request = Request::post(due.url.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("tutti-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(EVENT_HEADER, due.event.kind.as_str())
        .header(DELIVERY_HEADER, due.delivery.id.to_string())
        .header(SIGNATURE_HEADER, sign(&due.secret, t, body.as_bytes()))
        .body(Full::new(Bytes::from(body)));
    let request = match request {
        Ok(r) => r,
        Err(e) => return failed(format!("cannot build the request: {e}"), false),
    };
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status();
        // Read (a bounded amount of) the body so the connection can be reused; its content and
        // any error reading it do not matter.
        let _ = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    };
    match tokio::time::timeout(cfg.request_timeout, exchange).await {
        Ok(Ok(status)) => Attempted::Status(status),
        Ok(Err(e)) => {
            if let Some(refused) = forbidden_in(&e) {
                return failed(refused.to_string(), false);
            }
            let mut msg = format!("connection error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            failed(msg, true)
        }
        Err(_) => failed(
            format!("timed out after {} ms", cfg.request_timeout.as_millis()),
            true,
        ),
    }
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

async fn attempt(
    store: Store,
    client: HttpClient,
    cfg: Arc<DispatcherConfig>,
    due: DueDelivery,
    _slot: OwnedSemaphorePermit,
) {
    let done = due.delivery.attempt;
    let this_attempt = done.saturating_add(1);
    let (http_status, error, retryable) = match post(&client, &cfg, &due).await {
        Attempted::Status(s) if s.is_success() => {
            let outcome = AttemptOutcome::Delivered {
                http_status: s.as_u16(),
            };
            record(&store, &cfg, &due, outcome).await;
            return;
        }
        Attempted::Status(s) => {
            let retryable = s.is_server_error()
                || s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS;
            (Some(s.as_u16()), format!("HTTP {s}"), retryable)
        }
        Attempted::Failed { error, retryable } => (None, error, retryable),
    };
    let outcome = if retryable && this_attempt < cfg.max_attempts {
        let delay = backoff_delay(
            cfg.backoff_base,
            cfg.backoff_cap,
            this_attempt,
            0.5 + fastrand::f64() / 2.0,
        );
        AttemptOutcome::Retry {
            http_status,
            error,
            next_attempt_at_ms: now_ms().saturating_add(duration_ms(delay)),
        }
    } else {
        let error = if retryable {
            format!("{error} (attempt {this_attempt} of {})", cfg.max_attempts)
        } else {
            error
        };
        AttemptOutcome::GaveUp { http_status, error }
    };
    record(&store, &cfg, &due, outcome).await;
}

async fn record(store: &Store, cfg: &DispatcherConfig, due: &DueDelivery, outcome: AttemptOutcome) {
    match store
        .record_delivery_attempt(
            due.delivery.id,
            due.delivery.attempt,
            outcome,
            cfg.failure_threshold,
        )
        .await
    {
        Ok(r) => {
            if r.disabled_event_id.is_some() {
                tracing::warn!(
                    webhook = due.delivery.webhook_id,
                    reason = r.delivery.error.as_deref().unwrap_or(""),
                    "webhook disabled after repeated failures"
                );
            }
        }
        Err(e) => tracing::warn!(
            delivery = due.delivery.id,
            error = %e,
            "dispatcher: cannot record a delivery attempt (it will be retried after its lease)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff_delay(base, cap, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff_delay(base, cap, 2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff_delay(base, cap, 4, 1.0), Duration::from_secs(8));
        assert_eq!(backoff_delay(base, cap, 7, 1.0), cap);
        assert_eq!(backoff_delay(base, cap, 99, 1.0), cap);
        assert_eq!(backoff_delay(base, cap, 2, 0.5), Duration::from_secs(1));
        assert_eq!(backoff_delay(base, cap, 2, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn http_and_https_urls_are_deliverable_whatever_the_case() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "https://example.com/",
            "HTTP://EXAMPLE.COM/x",
            "Https://example.com:8443/x?y=1",
        ] {
            assert!(check_webhook_url(url).is_ok(), "{url}");
        }
        for (url, why) in [
            ("ftp://x/", "must be an http:// or https:// URL"),
            ("not a url", "must be an http:// or https:// URL"),
            ("/relative", "must be an http:// or https:// URL"),
            ("http://", "is not a valid URL"),
        ] {
            match check_webhook_url(url) {
                Err(EventsError::WebhookUrl { reason, .. }) => assert_eq!(reason, why, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
