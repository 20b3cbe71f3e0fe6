//! Contract test between the store (which writes events) and the typed enum (which reads them):
//! every kind the store's operations append parses into its typed [`Event`], with the ids right.

mod common;

use common::{ensemble, fresh_store, now_ms, piece};
use tutti_events::{Event, EventKind, EventRecord};
use tutti_store::{
    AttemptOutcome, EnsembleRole, EventScope, KeepCredential, NewOverride, NewShow, NewSpecDraft,
    NewUser, NewWebhook, Page, PieceStatus, ShowKind, ShowStatus, UserRole,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_the_store_writes_parses_into_its_typed_form() {
    let (_dir, store) = fresh_store();
    let t = now_ms();
    let ens = ensemble(&store, "band").await;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let user = store
        .create_user(NewUser {
            username: "crew1".into(),
            display_name: "Crew".into(),
            password_hash: hash.into(),
            role: UserRole::Crew,
            at_ms: t,
        })
        .await
        .expect("user");
    store
        .add_member(ens, user.id, EnsembleRole::Crew, t)
        .await
        .expect("add");
    store.remove_member(ens, user.id, t).await.expect("remove");
    store
        .set_password_hash(user.id, hash, KeepCredential::None, t)
        .await
        .expect("password");
    store.deactivate_user(user.id, t).await.expect("deactivate");
    let p = piece(&store, ens, "opus").await;
    store
        .update_piece_title(p.id, "Opus 2", t)
        .await
        .expect("title");
    store
        .transition_piece(p.id, PieceStatus::Rehearsal, t)
        .await
        .expect("transition");
    let draft = store
        .create_spec_draft(NewSpecDraft {
            piece_id: p.id,
            spec_json: "{}".into(),
            created_by: None,
            note: None,
            at_ms: t,
        })
        .await
        .expect("draft");
    store
        .publish_spec(p.id, draft.version, t)
        .await
        .expect("publish");
    let show = store
        .create_show_for_piece(NewShow {
            piece_id: p.id,
            spec_version: None,
            code: "ABCD".into(),
            kind: ShowKind::Rehearsal,
            at_ms: t,
        })
        .await
        .expect("show");
    store
        .set_show_status(show.id, ShowStatus::Live, t)
        .await
        .expect("live");
    store
        .record_override(NewOverride {
            show_id: show.id,
            at_ms: t,
            actor: "performer".into(),
            param: "tempo".into(),
            action: "set".into(),
            detail_json: "{}".into(),
        })
        .await
        .expect("override");
    let hook = store
        .create_webhook(NewWebhook {
            ensemble_id: ens,
            url: "http://127.0.0.1:9/h".into(),
            kinds: vec!["piece.created".into()],
        })
        .await
        .expect("webhook");
    // Disable it through the delivery bookkeeping (threshold 1).
    let next = piece(&store, ens, "next").await;
    store.relay_step("relay", 1000).await.expect("relay");
    let due = store
        .claim_due_deliveries(now_ms() + 1000, 1000, 10)
        .await
        .expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event.subject, format!("piece:{}", next.id));
    store
        .record_delivery_attempt(
            due[0].delivery.id,
            0,
            AttemptOutcome::GaveUp {
                http_status: Some(410),
                error: "HTTP 410 Gone".into(),
            },
            1,
        )
        .await
        .expect("record");

    let (rows, _) = store
        .events_after(Page::first(1000), EventScope::All)
        .await
        .expect("events");
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        let rec = EventRecord::from_row(row);
        let ev = rec
            .event()
            .unwrap_or_else(|e| panic!("{} {}: {e}", rec.kind, rec.data));
        assert_eq!(ev.kind().as_str(), rec.kind);
        match &ev {
            Event::EnsembleMemberAdded(m) | Event::EnsembleMemberRemoved(m) => {
                assert_eq!(m.ensemble_id, ens);
            }
            Event::PieceTransitioned(d) => {
                assert_eq!(
                    (d.piece_id, d.from.as_str(), d.to.as_str()),
                    (p.id, "draft", "rehearsal")
                );
            }
            Event::SpecPublished(s) => assert_eq!(s.version, Some(draft.version)),
            Event::ShowTransitioned(s) => {
                assert_eq!((s.show_id, s.to.as_str()), (show.id, "live"));
            }
            Event::OverrideApplied(o) => assert_eq!(o.param.as_deref(), Some("tempo")),
            Event::WebhookCreated(w) => assert_eq!(w.webhook_id, hook.id),
            Event::WebhookDisabled(w) => {
                assert_eq!((w.webhook_id, w.consecutive_failures), (hook.id, 1));
                assert!(w.reason.contains("410"));
            }
            _ => {}
        }
        // The typed form writes back the same data the store holds (for the fields it knows).
        let again = Event::from_parts(&rec.kind, &ev.data()).expect("round trip");
        assert_eq!(again, ev);
        seen.insert(ev.kind());
    }
    let missing: Vec<_> = EventKind::ALL
        .into_iter()
        // Chat's kinds are written by chat operations, checked in `tutti-server`'s
        // `api_chat_bots` test.
        .filter(|k| !seen.contains(k) && !k.as_str().starts_with("chat."))
        .collect();
    assert!(missing.is_empty(), "kinds never written: {missing:?}");
}
