//! Chat on JetStream against a real `nats-server -js`: a room's events are stored once
//! however often they are published, read back by the room's sequence from another
//! connection (another edge), in order, never across a gap, and a live follower on another
//! connection gets each once by its sequence.

mod common;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tutti_bus::{connect, room_subjects, Appended, ChatStreamError, ChatStreams};

fn frame(room: i64, seq: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"chat_event","room":{room},"room_seq":{seq},"text":"message {seq}"}}"#
    ))
}

async fn streams(url: &str) -> ChatStreams {
    let client = connect(url, Duration::from_secs(5)).await.unwrap();
    ChatStreams::open(client, Duration::ZERO).await.unwrap()
}

fn seqs(events: &[(u64, Bytes)]) -> Vec<u64> {
    events.iter().map(|(s, _)| *s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_events_are_read_back_by_sequence_on_another_edge_exactly() {
    let n = common::nats();
    let a = streams(&n.url).await;
    // Another node opens the same stream.
    let b = streams(&n.url).await;

    for seq in 1..=300 {
        assert!(matches!(
            a.append(7, seq, frame(7, seq)).await.unwrap(),
            Appended::New(_)
        ));
        // Another room's events interleave in the stream.
        if seq % 3 == 0 {
            a.append(8, seq / 3, frame(8, seq / 3)).await.unwrap();
        }
    }

    let all = b.after(7, 0, 1000).await.unwrap();
    assert_eq!(seqs(&all), (1..=300).collect::<Vec<_>>());
    for (seq, bytes) in &all {
        assert_eq!(bytes, &frame(7, *seq));
    }
    // From the middle, paged.
    let page = b.after(7, 250, 20).await.unwrap();
    assert_eq!(seqs(&page), (251..=270).collect::<Vec<_>>());
    let rest = b.after(7, 270, 1000).await.unwrap();
    assert_eq!(seqs(&rest), (271..=300).collect::<Vec<_>>());
    // Caught up: nothing after the last; the other room has its own sequence.
    assert!(b.after(7, 300, 10).await.unwrap().is_empty());
    assert_eq!(
        seqs(&b.after(8, 0, 1000).await.unwrap()),
        (1..=100).collect::<Vec<_>>()
    );
    // A room nobody wrote to has nothing.
    assert!(b.after(9, 0, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_stored_once_however_often_it_is_published() {
    let n = common::nats();
    let a = streams(&n.url).await;
    let b = streams(&n.url).await;
    assert!(matches!(
        a.append(3, 1, frame(3, 1)).await.unwrap(),
        Appended::New(_)
    ));
    // A retry, from this node and from another, at once and again.
    let (x, y) = tokio::join!(a.append(3, 1, frame(3, 1)), b.append(3, 1, frame(3, 1)));
    assert_eq!(x.unwrap(), Appended::AlreadyThere);
    assert_eq!(y.unwrap(), Appended::AlreadyThere);
    // The same sequence with other bytes is a conflict, and changes nothing.
    match b.append(3, 1, Bytes::from_static(b"other")).await {
        Err(ChatStreamError::Conflict { room: 3, seq: 1 }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.stored(3, 1).await.unwrap(), Some(frame(3, 1)));
    a.append(3, 2, frame(3, 2)).await.unwrap();
    let all = b.after(3, 0, 10).await.unwrap();
    assert_eq!(seqs(&all), vec![1, 2]);
    assert_eq!(all[0].1, frame(3, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_keeps_the_rooms_order_and_never_skips_a_gap() {
    let n = common::nats();
    let a = streams(&n.url).await;
    for seq in 1..=3 {
        a.append(5, seq, frame(5, seq)).await.unwrap();
    }
    // Two publishers raced: 5 and 6 are stored before 4.
    a.append(5, 5, frame(5, 5)).await.unwrap();
    a.append(5, 6, frame(5, 6)).await.unwrap();
    // 4 is missing: a catch-up stops before the gap.
    assert_eq!(seqs(&a.after(5, 0, 100).await.unwrap()), vec![1, 2, 3]);
    assert!(a.after(5, 3, 100).await.unwrap().is_empty());
    // Once 4 is there, everything comes in the room's order.
    a.append(5, 4, frame(5, 4)).await.unwrap();
    let all = a.after(5, 0, 100).await.unwrap();
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5, 6]);
    for (seq, bytes) in &all {
        assert_eq!(bytes, &frame(5, *seq));
    }
    assert_eq!(seqs(&a.after(5, 4, 100).await.unwrap()), vec![5, 6]);
}

/// A live follower on another node: a plain subscription is at most once (it may miss a
/// message) and sees every publish, a retry included (the deduplication keeps the stream's
/// copy single, not the subject's traffic). So a follower keeps the last `seq` it took,
/// drops anything not newer and reads a gap from the stream, as `tutti-rooms` sessions do
/// with the store; it then has each event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_follower_on_another_node_gets_each_event_once_by_its_sequence() {
    let n = common::nats();
    let a = streams(&n.url).await;
    let b = streams(&n.url).await;
    let follower = connect(&n.url, Duration::from_secs(5)).await.unwrap();
    let mut live = follower.subscribe(room_subjects(11)).await.unwrap();
    follower.flush().await.unwrap();
    for seq in 1..=5 {
        a.append(11, seq, frame(11, seq)).await.unwrap();
    }
    assert_eq!(
        a.append(11, 3, frame(11, 3)).await.unwrap(),
        Appended::AlreadyThere
    );
    a.append(11, 6, frame(11, 6)).await.unwrap();
    let mut taken: Vec<(u64, Bytes)> = Vec::new();
    while taken.last().map(|(s, _)| *s) != Some(6) {
        let last = taken.last().map_or(0, |(s, _)| *s);
        let Ok(m) = tokio::time::timeout(Duration::from_secs(5), live.next()).await else {
            // Nothing live for a while: the rest may have been missed; read it.
            let rest = b.after(11, last, 100).await.unwrap();
            assert!(
                !rest.is_empty(),
                "no live event and nothing after {last} in the stream"
            );
            taken.extend(rest);
            continue;
        };
        let m = m.expect("the subscription is open");
        let seq: u64 = m.subject.rsplit('.').next().unwrap().parse().unwrap();
        if seq <= last {
            continue;
        }
        if seq > last + 1 {
            // Missed live: read the gap from the stream, on this node's connection.
            taken.extend(b.after(11, last, (seq - last - 1) as usize).await.unwrap());
        }
        taken.push((seq, m.payload));
    }
    assert_eq!(seqs(&taken), (1..=6).collect::<Vec<_>>());
    for (seq, bytes) in &taken {
        assert_eq!(bytes, &frame(11, *seq));
    }
    // The stream kept one copy.
    assert_eq!(
        seqs(&a.after(11, 0, 100).await.unwrap()),
        (1..=6).collect::<Vec<_>>()
    );
}
