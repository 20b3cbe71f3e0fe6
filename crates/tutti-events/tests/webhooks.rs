//! Webhook delivery end to end: a real SQLite store, the real relay and dispatcher, and a real
//! local HTTP receiver that verifies signatures.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{ensemble, eventually, fast_config, fresh_store, piece, reopen, Receiver, Reply};
use tutti_events::{
    DispatcherConfig, Events, EventsConfig, EventsError, RelayConfig, StreamConfig, TargetPolicy,
};
use tutti_store::{DeliveryRow, DeliveryStatus, EventScope, NewWebhook, Page, Store, WebhookRow};

async fn webhook(store: &Store, receiver: &Receiver, ensemble_id: i64, path: &str) -> WebhookRow {
    let hook = store
        .create_webhook(NewWebhook {
            ensemble_id,
            url: receiver.url(path),
            kinds: vec!["piece.created".into()],
        })
        .await
        .expect("create webhook");
    receiver.trust(&hook.secret);
    hook
}

async fn deliveries(store: &Store, webhook_id: i64) -> Vec<DeliveryRow> {
    store
        .webhook_deliveries(webhook_id, Page::first(100))
        .await
        .expect("delivery log")
        .0
}

/// Waits until the webhook has `n` deliveries, all finished.
async fn finished(store: &Store, webhook_id: i64, n: usize) -> Vec<DeliveryRow> {
    eventually(
        &format!("{n} finished deliveries of webhook {webhook_id}"),
        || async {
            let log = deliveries(store, webhook_id).await;
            (log.len() == n && log.iter().all(|d| d.status.is_final())).then_some(log)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_signed_and_the_receiver_verifies_it() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    let ens = ensemble(&store, "band").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let hook = webhook(&store, &receiver, ens, "hook").await;
    assert!(hook.secret.starts_with("whsec_") && hook.secret.len() == 6 + 64);
    let p = piece(&store, ens, "nocturne").await;

    let log = finished(&store, hook.id, 1).await;
    let d = &log[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(
        (d.attempt, d.http_status, d.error.as_deref()),
        (1, Some(200), None)
    );

    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert!(r.signature_ok, "the receiver refused the signature");
    assert_eq!(r.path, "/hook");
    assert_eq!(r.event, "piece.created");
    assert_eq!(r.delivery, d.id.to_string());
    assert_eq!(r.body["id"], d.event_id);
    assert_eq!(r.body["kind"], "piece.created");
    assert_eq!(r.body["ensemble_id"], ens);
    assert_eq!(r.body["subject"], format!("piece:{}", p.id));
    assert_eq!(r.body["data"]["piece_id"], p.id);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_until_it_succeeds() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(500), Reply::Status(503)]);
    let ens = ensemble(&store, "band").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let hook = webhook(&store, &receiver, ens, "hook").await;
    piece(&store, ens, "etude").await;

    let log = finished(&store, hook.id, 1).await;
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!((log[0].attempt, log[0].http_status), (3, Some(200)));
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|r| r.signature_ok && r.delivery == log[0].id.to_string()));
    let after = store.webhook(hook.id).await.expect("read").expect("exists");
    assert!(after.active);
    assert_eq!(after.consecutive_failures, 0);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_retried_until_it_succeeds() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    // The first answer comes far later than the dispatcher waits.
    receiver.script([Reply::Sleep(Duration::from_secs(30))]);
    let ens = ensemble(&store, "band").await;
    let mut cfg = fast_config();
    cfg.dispatcher.request_timeout = Duration::from_millis(300);
    let events = Events::start(store.clone(), cfg).expect("start");
    let hook = webhook(&store, &receiver, ens, "hook").await;
    piece(&store, ens, "largo").await;

    // The first attempt is recorded as a timeout before the retry succeeds.
    let retrying = eventually("the first attempt to time out", || async {
        deliveries(&store, hook.id)
            .await
            .into_iter()
            .find(|d| d.attempt >= 1)
    })
    .await;
    if retrying.attempt == 1 {
        assert_eq!(retrying.status, DeliveryStatus::Retrying);
        assert!(
            retrying
                .error
                .as_deref()
                .is_some_and(|e| e.contains("timed out")),
            "{retrying:?}"
        );
    }
    let log = finished(&store, hook.id, 1).await;
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!((log[0].attempt, log[0].http_status), (2, Some(200)));
    assert_eq!(receiver.received().len(), 2);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_give_up_and_disable_the_webhook_with_an_event() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    receiver.always(500);
    let ens = ensemble(&store, "band").await;
    let mut cfg = fast_config();
    cfg.dispatcher.max_attempts = 2;
    cfg.dispatcher.failure_threshold = 2;
    let events = Events::start(store.clone(), cfg).expect("start");
    let hook = webhook(&store, &receiver, ens, "hook").await;
    piece(&store, ens, "one").await;
    piece(&store, ens, "two").await;

    let log = finished(&store, hook.id, 2).await;
    for d in &log {
        assert_eq!(d.status, DeliveryStatus::GaveUp, "{d:?}");
        assert_eq!((d.attempt, d.http_status), (2, Some(500)));
        assert!(
            d.error.as_deref().is_some_and(|e| e.contains("500")),
            "{d:?}"
        );
    }
    let disabled = eventually("the webhook to be disabled", || async {
        let h = store.webhook(hook.id).await.expect("read").expect("exists");
        (!h.active).then_some(h)
    })
    .await;
    assert_eq!(disabled.consecutive_failures, 2);
    assert!(disabled
        .disabled_reason
        .as_deref()
        .is_some_and(|r| r.contains("2 consecutive deliveries gave up")));

    let (outbox, _) = store
        .events_after(Page::first(1000), EventScope::Ensembles(vec![ens]))
        .await
        .expect("outbox");
    let notices: Vec<_> = outbox
        .iter()
        .filter(|e| e.kind == "webhook.disabled")
        .collect();
    assert_eq!(notices.len(), 1, "{outbox:?}");
    let data: serde_json::Value = serde_json::from_str(&notices[0].data_json).expect("json");
    assert_eq!(data["webhook_id"], hook.id);
    assert_eq!(data["consecutive_failures"], 2);
    assert!(!notices[0].data_json.contains(&hook.secret));

    // A disabled webhook gets nothing more; enabling it resets it.
    let requests = receiver.received().len();
    assert_eq!(requests, 4);
    piece(&store, ens, "three").await;
    let cursor_after = store.last_event_id().await.expect("last id");
    eventually("the relay to pass the new event", || async {
        (store.relay_cursor("relay").await.expect("cursor") >= cursor_after).then_some(())
    })
    .await;
    assert_eq!(deliveries(&store, hook.id).await.len(), 2);
    let enabled = store.enable_webhook(hook.id).await.expect("enable");
    assert!(
        enabled.active && enabled.consecutive_failures == 0 && enabled.disabled_reason.is_none()
    );
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_gives_up_at_once() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    receiver.always(404);
    let ens = ensemble(&store, "band").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let hook = webhook(&store, &receiver, ens, "gone").await;
    piece(&store, ens, "solo").await;
    let log = finished(&store, hook.id, 1).await;
    assert_eq!(log[0].status, DeliveryStatus::GaveUp);
    assert_eq!((log[0].attempt, log[0].http_status), (1, Some(404)));
    let h = store.webhook(hook.id).await.expect("read").expect("exists");
    assert!(h.active, "one failure is below the threshold of 3");
    assert_eq!(h.consecutive_failures, 1);
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_events_survive_a_restart_and_arrive_exactly_once_per_webhook() {
    let (dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    let ens = ensemble(&store, "band").await;
    let a = webhook(&store, &receiver, ens, "a").await;
    let b = webhook(&store, &receiver, ens, "b").await;
    // Two events relayed (deliveries pending, never attempted), two never relayed; then the
    // process "stops" without the dispatcher having run.
    piece(&store, ens, "p1").await;
    piece(&store, ens, "p2").await;
    let batch = store.relay_step("relay", 1000).await.expect("relay step");
    assert_eq!(batch.deliveries_created, 4);
    piece(&store, ens, "p3").await;
    piece(&store, ens, "p4").await;
    store.close().await.expect("close");

    let store = reopen(&dir);
    assert_eq!(
        deliveries(&store, a.id).await.len(),
        2,
        "pending deliveries were kept"
    );
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let log_a = finished(&store, a.id, 4).await;
    let log_b = finished(&store, b.id, 4).await;
    assert!(log_a
        .iter()
        .chain(&log_b)
        .all(|d| d.status == DeliveryStatus::Delivered && d.attempt == 1));
    events.shutdown().await;

    let got = receiver.received();
    assert_eq!(got.len(), 8, "{got:?}");
    let mut per_hook: HashMap<(String, i64), usize> = HashMap::new();
    for r in &got {
        assert!(r.signature_ok);
        let id = r.body["id"].as_i64().expect("event id");
        *per_hook.entry((r.path.clone(), id)).or_default() += 1;
    }
    assert_eq!(
        per_hook.len(),
        8,
        "every (webhook, event) pair once: {per_hook:?}"
    );
    assert!(per_hook.values().all(|&n| n == 1));
    let slugs: std::collections::BTreeSet<_> = got
        .iter()
        .filter_map(|r| r.body["data"]["slug"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(slugs.len(), 4, "{slugs:?}");
}

/// A webhook to `url` receiving `piece.created` (the store accepts any http(s) URL; where it
/// may go is the dispatcher's policy).
async fn webhook_to(store: &Store, ensemble_id: i64, url: String) -> WebhookRow {
    store
        .create_webhook(NewWebhook {
            ensemble_id,
            url,
            kinds: vec!["piece.created".into()],
        })
        .await
        .expect("create webhook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_forbidden_address_is_refused_at_delivery_without_a_request() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    let ens = ensemble(&store, "band").await;
    // The default policy: public addresses only. `localhost` resolves to loopback.
    let mut cfg = fast_config();
    cfg.dispatcher.targets = TargetPolicy::default();
    let events = Events::start(store.clone(), cfg).expect("start");
    let port = receiver.addr.port();
    let hook = webhook_to(&store, ens, format!("http://localhost:{port}/hook")).await;
    receiver.trust(&hook.secret);
    piece(&store, ens, "forbidden").await;

    let log = finished(&store, hook.id, 1).await;
    assert_eq!(log[0].status, DeliveryStatus::GaveUp, "{log:?}");
    assert_eq!(
        (log[0].attempt, log[0].http_status),
        (1, None),
        "not retried"
    );
    let error = log[0].error.as_deref().unwrap_or("");
    assert!(
        error.starts_with("webhook_target_forbidden:") && error.contains("loopback"),
        "{error}"
    );
    assert!(receiver.received().is_empty(), "no request reached it");
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_listener_is_refused_even_when_private_targets_are_allowed() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    let ens = ensemble(&store, "band").await;
    let mut cfg = fast_config();
    cfg.dispatcher.targets.own_listeners = vec![receiver.addr];
    let events = Events::start(store.clone(), cfg).expect("start");
    let hook = webhook(&store, &receiver, ens, "setup").await;
    piece(&store, ens, "loop").await;

    let log = finished(&store, hook.id, 1).await;
    assert_eq!(log[0].status, DeliveryStatus::GaveUp, "{log:?}");
    let error = log[0].error.as_deref().unwrap_or("");
    assert!(error.contains("this server's own listener"), "{error}");
    assert!(receiver.received().is_empty());
    events.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_webhook_is_delivered_over_tls() {
    use tokio::io::AsyncReadExt;
    let (_dir, store) = fresh_store();
    // A real local TCP receiver that records the first bytes of each connection and closes
    // it: the dispatcher must open with a TLS ClientHello naming the host (SNI).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (hello_tx, mut hello_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = vec![0u8; 2048];
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            buf.truncate(n);
            let _ = hello_tx.send(buf).await;
        }
    });
    let ens = ensemble(&store, "band").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let hook = webhook_to(&store, ens, format!("HTTPS://localhost:{port}/hook")).await;
    piece(&store, ens, "secure").await;

    let hello = tokio::time::timeout(Duration::from_secs(30), hello_rx.recv())
        .await
        .expect("a connection in time")
        .expect("bytes");
    assert_eq!(
        hello.first(),
        Some(&0x16),
        "a TLS handshake record: {hello:?}"
    );
    assert_eq!(hello.get(5), Some(&0x01), "a ClientHello: {hello:?}");
    assert!(
        hello.windows(9).any(|w| w == b"localhost"),
        "SNI names the host: {hello:?}"
    );
    // The receiver hung up mid-handshake: a connection error, retried.
    let first = eventually("the first attempt to be recorded", || async {
        deliveries(&store, hook.id)
            .await
            .into_iter()
            .find(|d| d.attempt >= 1)
    })
    .await;
    assert!(first.http_status.is_none(), "{first:?}");
    assert!(
        first
            .error
            .as_deref()
            .is_some_and(|e| e.contains("connection error")),
        "{first:?}"
    );
    events.shutdown().await;
}

#[test]
fn bad_configuration_values_are_refused_by_name() {
    fn field(cfg: &EventsConfig) -> &'static str {
        match cfg.validate() {
            Err(EventsError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    let base = EventsConfig::default();
    let with_dispatcher = |d: DispatcherConfig| EventsConfig {
        dispatcher: d,
        ..base.clone()
    };
    let d = DispatcherConfig::default();
    assert_eq!(
        field(&with_dispatcher(DispatcherConfig {
            request_timeout: Duration::ZERO,
            ..d.clone()
        })),
        "dispatcher.request_timeout"
    );
    assert_eq!(
        field(&with_dispatcher(DispatcherConfig {
            max_attempts: 0,
            ..d.clone()
        })),
        "dispatcher.max_attempts"
    );
    assert_eq!(
        field(&with_dispatcher(DispatcherConfig {
            failure_threshold: 0,
            ..d.clone()
        })),
        "dispatcher.failure_threshold"
    );
    assert_eq!(
        field(&with_dispatcher(DispatcherConfig {
            backoff_base: Duration::ZERO,
            ..d.clone()
        })),
        "dispatcher.backoff_base"
    );
    assert_eq!(
        field(&with_dispatcher(DispatcherConfig {
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(5),
            ..d.clone()
        })),
        "dispatcher.backoff_cap"
    );
    assert_eq!(
        field(&with_dispatcher(DispatcherConfig {
            max_in_flight: 0,
            ..d
        })),
        "dispatcher.max_in_flight"
    );
    let mut cfg = base.clone();
    cfg.bus.capacity = 0;
    assert_eq!(field(&cfg), "bus.capacity");
    let cfg = EventsConfig {
        relay: RelayConfig {
            batch_size: 0,
            ..RelayConfig::default()
        },
        ..base.clone()
    };
    assert_eq!(field(&cfg), "relay.batch_size");
    let cfg = EventsConfig {
        relay: RelayConfig {
            cursor_name: String::new(),
            ..RelayConfig::default()
        },
        ..base.clone()
    };
    assert_eq!(field(&cfg), "relay.cursor_name");
    let cfg = EventsConfig {
        stream: StreamConfig {
            keep_alive: Duration::ZERO,
            ..StreamConfig::default()
        },
        ..base
    };
    assert_eq!(field(&cfg), "stream.keep_alive");
    let msg = EventsError::Config {
        field: "dispatcher.max_attempts",
        value: "0".into(),
        reason: "must be 1..=100".into(),
    }
    .to_string();
    assert!(msg.contains("dispatcher.max_attempts"), "{msg}");
}

#[tokio::test]
async fn starting_with_a_bad_configuration_fails_before_spawning_anything() {
    let (_dir, store) = fresh_store();
    let mut cfg = EventsConfig::default();
    cfg.dispatcher.max_attempts = 0;
    match Events::start(store, cfg) {
        Err(EventsError::Config { field, .. }) => assert_eq!(field, "dispatcher.max_attempts"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_attempt_in_flight_finish_and_records_it() {
    let (_dir, store) = fresh_store();
    let receiver = Receiver::start().await;
    receiver.script([Reply::Sleep(Duration::from_millis(300))]);
    let ens = ensemble(&store, "band").await;
    let events = Events::start(store.clone(), fast_config()).expect("start");
    let hook = webhook(&store, &receiver, ens, "slow").await;
    piece(&store, ens, "adagio").await;
    eventually("the receiver to get the request", || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    events.shutdown().await;
    let log = deliveries(&store, hook.id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Delivered, "{log:?}");
    assert_eq!(receiver.received().len(), 1);
}
