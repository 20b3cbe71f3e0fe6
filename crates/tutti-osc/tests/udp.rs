//! Real UDP sockets on 127.0.0.1: the sender fans out to live receivers and survives bad targets;
//! the listener forwards good commands, counts and survives malformed ones, and drops and counts
//! when its channel is full.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use rosc::{OscMessage, OscPacket, OscType};
use tokio::sync::mpsc;
use tutti_osc::{
    encode_bundle, ListenerStats, OscCommand, OscListener, OscListenerHandle, OscOverride,
    OscSender, SessionAction,
};

/// Guards against a hung test only; no test asserts on elapsed time.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn receiver() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    s.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let a = s.local_addr().expect("addr");
    (s, a)
}

fn recv_bundle(s: &UdpSocket) -> Vec<(String, f32)> {
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).expect("datagram arrives");
    let (_, packet) = rosc::decoder::decode_udp(&buf[..n]).expect("decodes");
    let OscPacket::Bundle(b) = packet else {
        panic!("not a bundle: {packet:?}")
    };
    b.content
        .into_iter()
        .map(|p| match p {
            OscPacket::Message(OscMessage { addr, args }) => match args.as_slice() {
                [OscType::Float(v)] => (addr, *v),
                other => panic!("unexpected args {other:?}"),
            },
            other => panic!("unexpected element {other:?}"),
        })
        .collect()
}

/// An address nothing listens on: bound once, then closed.
fn closed_port() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr")
}

#[test]
fn sender_delivers_to_every_target_and_survives_a_closed_one() {
    let (r1, a1) = receiver();
    let (r2, a2) = receiver();
    let dead = closed_port();
    let sender = OscSender::new([a1, dead, a2]).expect("sender");
    let mut buf = Vec::new();
    for tick in 0..5 {
        let v = tick as f32 * 0.1;
        encode_bundle(
            SystemTime::now(),
            [("/tutti/a", v), ("/tutti/b", -v)],
            &mut buf,
        )
        .expect("encode");
        sender.send(&buf);
        let want = vec![("/tutti/a".to_owned(), v), ("/tutti/b".to_owned(), -v)];
        assert_eq!(recv_bundle(&r1), want, "tick {tick}, target 1");
        assert_eq!(recv_bundle(&r2), want, "tick {tick}, target 2");
    }
    let stats = sender.stats();
    let targets: Vec<SocketAddr> = stats.targets.iter().map(|t| t.target).collect();
    assert_eq!(targets, vec![a1, dead, a2]);
    for t in [&stats.targets[0], &stats.targets[2]] {
        assert_eq!(t.packets_sent, 5);
        assert_eq!(t.bytes_sent, 5 * buf.len() as u64);
        assert_eq!(t.send_errors, 0);
    }
    // The closed target may or may not report ECONNREFUSED; either way each send is accounted for.
    let d = &stats.targets[1];
    assert_eq!(d.packets_sent + d.send_errors, 5);
}

// The immediate send error for a non-loopback destination from a loopback socket is Linux's.
#[cfg(target_os = "linux")]
#[test]
fn sender_counts_errors_per_target_and_keeps_sending_to_the_others() {
    let (r1, a1) = receiver();
    let (r2, a2) = receiver();
    // From a socket bound to loopback, a non-loopback destination fails at once (EINVAL on Linux).
    let unreachable: SocketAddr = "192.0.2.1:9000".parse().expect("addr");
    let sender = OscSender::with_bind("127.0.0.1:0".parse().expect("addr"), [a1, unreachable, a2])
        .expect("sender");
    let mut buf = Vec::new();
    for tick in 0..3 {
        encode_bundle(SystemTime::now(), [("/tutti/x", tick as f32)], &mut buf).expect("encode");
        sender.send(&buf);
        assert_eq!(recv_bundle(&r1), vec![("/tutti/x".to_owned(), tick as f32)]);
        assert_eq!(recv_bundle(&r2), vec![("/tutti/x".to_owned(), tick as f32)]);
    }
    let stats = sender.stats();
    assert_eq!(stats.targets[1].target, unreachable);
    assert_eq!(stats.targets[1].send_errors, 3);
    assert_eq!(stats.targets[1].packets_sent, 0);
    assert_eq!(stats.targets[0].packets_sent, 3);
    assert_eq!(stats.targets[2].packets_sent, 3);
    assert_eq!(stats.total_errors(), 3);
}

#[test]
fn sender_counts_a_datagram_too_big_for_udp() {
    let (_r, a) = receiver();
    let sender = OscSender::new([a]).expect("sender");
    sender.send(&vec![0u8; 70_000]);
    let t = sender.stats().targets[0];
    assert_eq!((t.packets_sent, t.send_errors), (0, 1));
}

// ---------------------------------------------------------------- listener

fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind client")
}

fn osc(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: addr.to_owned(),
        args,
    }))
    .expect("encode")
}

async fn next(rx: &mut mpsc::Receiver<OscCommand>) -> OscCommand {
    tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .expect("command within the hang guard")
        .expect("channel open")
}

async fn wait_for(h: &OscListenerHandle, what: &str, cond: impl Fn(&ListenerStats) -> bool) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while !cond(&h.stats()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: stats stuck at {:?}",
            h.stats()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn listener_forwards_commands_and_survives_malformed_packets() {
    let (tx, mut rx) = mpsc::channel(16);
    let h = OscListener::bind("127.0.0.1:0".parse().expect("addr"), tx)
        .await
        .expect("bind");
    let to = h.local_addr();
    assert!(to.ip().is_loopback());
    assert_ne!(to.port(), 0);
    let c = client();

    c.send_to(&osc("/tutti/lock/cutoff", vec![OscType::Float(0.5)]), to)
        .expect("send");
    assert_eq!(
        next(&mut rx).await,
        OscCommand::Override {
            param: "cutoff".into(),
            mode: OscOverride::Lock(0.5)
        }
    );

    let malformed: Vec<Vec<u8>> = vec![
        b"not osc at all!!".to_vec(),
        osc("/tutti/lock/cutoff", vec![OscType::Float(f32::NAN)]),
        osc("/tutti/nope", vec![]),
        osc("/tutti/bias/cutoff", vec![OscType::String("x".into())]),
        osc("/tutti/lock/bad name", vec![OscType::Float(1.0)]),
        osc("/tutti/lock/cutoff", vec![OscType::Float(1.0)])[..12].to_vec(),
        vec![0u8; 9000],
    ];
    for m in &malformed {
        c.send_to(m, to).expect("send malformed");
    }
    wait_for(&h, "malformed counted", |s| {
        s.packets_malformed == malformed.len() as u64
    })
    .await;

    // Still alive: a bundle with two commands arrives in order.
    let bundle = rosc::encoder::encode(&OscPacket::Bundle(rosc::OscBundle {
        timetag: rosc::OscTime::from((0, 1)),
        content: vec![
            OscPacket::Message(OscMessage {
                addr: "/tutti/session/start".into(),
                args: vec![],
            }),
            OscPacket::Message(OscMessage {
                addr: "/tutti/bypass".into(),
                args: vec![OscType::Bool(true)],
            }),
        ],
    }))
    .expect("encode");
    c.send_to(&bundle, to).expect("send bundle");
    assert_eq!(
        next(&mut rx).await,
        OscCommand::Session(SessionAction::Start)
    );
    assert_eq!(next(&mut rx).await, OscCommand::Bypass(true));

    let s = h.stats();
    assert_eq!(s.packets_received, 1 + malformed.len() as u64 + 1);
    assert_eq!(s.packets_malformed, malformed.len() as u64);
    assert_eq!(s.commands_forwarded, 3);
    assert_eq!(s.commands_dropped, 0);
    assert!(h.is_running());

    // Shutdown waits for the socket to close: the port can be bound again right away.
    h.shutdown().await;
    UdpSocket::bind(to).expect("port released after shutdown");
}

#[tokio::test]
async fn listener_drops_and_counts_when_the_channel_is_full() {
    let (tx, mut rx) = mpsc::channel(2);
    let h = OscListener::bind("127.0.0.1:0".parse().expect("addr"), tx)
        .await
        .expect("bind");
    let to = h.local_addr();
    let c = client();
    for i in 0..5 {
        c.send_to(&osc("/tutti/bias/p", vec![OscType::Int(i)]), to)
            .expect("send");
    }
    wait_for(&h, "five packets", |s| s.packets_received == 5).await;
    let s = h.stats();
    assert_eq!(
        (
            s.commands_forwarded,
            s.commands_dropped,
            s.packets_malformed
        ),
        (2, 3, 0)
    );
    // The first two made it, in order; the listener did not wait for the consumer.
    for want in [0.0, 1.0] {
        assert_eq!(
            next(&mut rx).await,
            OscCommand::Override {
                param: "p".into(),
                mode: OscOverride::Bias(want)
            }
        );
    }
    // With room again, new commands flow.
    c.send_to(&osc("/tutti/reset", vec![]), to).expect("send");
    assert_eq!(next(&mut rx).await, OscCommand::Reset);
    assert_eq!(h.stats().commands_forwarded, 3);
    assert_eq!(h.stats().commands_dropped, 3);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_listener() {
    let (tx, mut rx) = mpsc::channel(4);
    let h = OscListener::bind("127.0.0.1:0".parse().expect("addr"), tx)
        .await
        .expect("bind");
    let to = h.local_addr();
    drop(h);
    // The task owned the only sender: once it has stopped, the channel reports closed.
    let closed = tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .expect("task stops");
    assert_eq!(closed, None);
    UdpSocket::bind(to).expect("port released after drop");
}

#[tokio::test]
async fn listener_stops_when_the_receiver_is_gone() {
    let (tx, rx) = mpsc::channel(4);
    let h = OscListener::bind("127.0.0.1:0".parse().expect("addr"), tx)
        .await
        .expect("bind");
    drop(rx);
    client()
        .send_to(&osc("/tutti/reset", vec![]), h.local_addr())
        .expect("send");
    wait_for(&h, "dropped", |s| s.commands_dropped == 1).await;
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while h.is_running() {
        assert!(tokio::time::Instant::now() < deadline, "task still running");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let (tx, _rx) = mpsc::channel(1);
    let err = OscListener::bind(addr, tx).await.expect_err("port taken");
    assert_eq!(err.code(), "io");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
