//! The machine's raw floor: what one message of a given size costs in CPU when it crosses
//! loopback TCP between two blocking threads, with no WebSocket, no JSON and no async
//! runtime. `tutti load --calibrate` divides the server's CPU per message by this.
//!
//! Each pair of threads plays ping-pong over one connected socket pair (`TCP_NODELAY`),
//! so every message is one `write` and one `read`, and one wake-up of the reader, as a
//! state frame is for a server that sends each one as it is produced. The CPU is each
//! thread's own (`RUSAGE_THREAD`), so other work in the process does not count.
//!
//! Must never: use the async runtime's threads (it runs on its own OS threads), or leave
//! a thread or socket behind.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sys::{cpu_time, Who};
use crate::LoadError;

/// Largest message the floor can be measured with.
pub const MAX_FLOOR_MESSAGE: usize = 1 << 20;

/// The measured floor.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Floor {
    /// Bytes per message.
    pub message_bytes: usize,
    /// Socket pairs run at once (one per core).
    pub pairs: usize,
    /// One-way messages exchanged.
    pub messages: u64,
    /// CPU time of all the threads (send and receive together), seconds.
    pub cpu_s: f64,
    /// CPU microseconds per message, send and receive together.
    pub us_per_message: f64,
}

/// Most socket pairs [`measure_floor_with`] runs.
pub const MAX_FLOOR_PAIRS: usize = 512;

/// Measure the floor for messages of `message_bytes` for about `duration` of wall time,
/// with one socket pair per core (at most 4): the cheapest way this machine moves a
/// message through loopback TCP.
pub fn measure_floor(message_bytes: usize, duration: Duration) -> Result<Floor, LoadError> {
    let pairs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    measure_floor_with(message_bytes, pairs, duration)
}

/// [`measure_floor`] with a chosen number of socket pairs (more pairs: more threads and
/// sockets competing for the caches, as a server with many connections has).
pub fn measure_floor_with(
    message_bytes: usize,
    pairs: usize,
    duration: Duration,
) -> Result<Floor, LoadError> {
    if message_bytes == 0 || message_bytes > MAX_FLOOR_MESSAGE {
        return Err(LoadError::option(
            "--calibrate",
            format!("the message size must be 1–{MAX_FLOOR_MESSAGE} bytes (got {message_bytes})"),
        ));
    }
    if pairs == 0 || pairs > MAX_FLOOR_PAIRS {
        return Err(LoadError::option(
            "--calibrate",
            format!("the number of socket pairs must be 1–{MAX_FLOOR_PAIRS} (got {pairs})"),
        ));
    }
    let deadline = Instant::now() + duration;
    let mut threads = Vec::with_capacity(pairs * 2);
    for (a, b) in connected_pairs(pairs)? {
        threads.push(std::thread::spawn(move || ping(a, message_bytes, deadline)));
        threads.push(std::thread::spawn(move || pong(b, message_bytes)));
    }
    gather(threads, message_bytes, pairs)
}

/// The kernel's share alone: each of `threads` threads owns `pairs / threads` connected
/// socket pairs and plays both ends of each in turn (write, read, write back, read), so no
/// thread ever waits or is woken — the cost of moving a message through loopback TCP with
/// the scheduler left out, over as many connections as asked (more connections: colder
/// caches). For comparison with [`measure_floor_with`]; `tutti load` does not use it.
pub fn measure_no_wait_floor(
    message_bytes: usize,
    pairs: usize,
    threads: usize,
    duration: Duration,
) -> Result<Floor, LoadError> {
    if message_bytes == 0 || message_bytes > MAX_FLOOR_MESSAGE {
        return Err(LoadError::option(
            "message size",
            format!("must be 1–{MAX_FLOOR_MESSAGE} bytes (got {message_bytes})"),
        ));
    }
    if threads == 0 || pairs < threads || pairs > MAX_NO_WAIT_PAIRS {
        return Err(LoadError::option(
            "socket pairs",
            format!(
                "need at least one per thread and at most {MAX_NO_WAIT_PAIRS} (got {pairs} for {threads} threads)"
            ),
        ));
    }
    let deadline = Instant::now() + duration;
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let share = pairs / threads + usize::from(t < pairs % threads);
        let socks = connected_pairs(share)?;
        handles.push(std::thread::spawn(move || {
            both_ends(socks, message_bytes, deadline)
        }));
    }
    gather(handles, message_bytes, pairs)
}

/// Join the threads of a measurement and add up their (one-way messages, CPU).
fn gather(
    threads: Vec<std::thread::JoinHandle<std::io::Result<(u64, Duration)>>>,
    message_bytes: usize,
    pairs: usize,
) -> Result<Floor, LoadError> {
    let mut messages = 0u64;
    let mut cpu = Duration::ZERO;
    for t in threads {
        let (n, c) = t
            .join()
            .map_err(|_| LoadError::io("calibration thread", std::io::ErrorKind::Other.into()))?
            .map_err(|e| LoadError::io("calibration: exchanging messages", e))?;
        messages += n;
        cpu += c;
    }
    if messages == 0 || cpu.is_zero() {
        return Err(LoadError::io(
            "calibration: no message was exchanged",
            std::io::ErrorKind::TimedOut.into(),
        ));
    }
    Ok(Floor {
        message_bytes,
        pairs,
        messages,
        cpu_s: cpu.as_secs_f64(),
        us_per_message: cpu.as_secs_f64() * 1e6 / messages as f64,
    })
}

/// Most socket pairs [`measure_no_wait_floor`] opens (two descriptors each).
pub const MAX_NO_WAIT_PAIRS: usize = 8192;

/// `n` connected loopback socket pairs with `TCP_NODELAY`.
fn connected_pairs(n: usize) -> Result<Vec<(TcpStream, TcpStream)>, LoadError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| LoadError::io("calibration: binding a loopback listener", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| LoadError::io("calibration: reading the listener address", e))?;
    (0..n)
        .map(|_| {
            let a = TcpStream::connect(addr)
                .map_err(|e| LoadError::io("calibration: connecting over loopback", e))?;
            let (b, _) = listener
                .accept()
                .map_err(|e| LoadError::io("calibration: accepting over loopback", e))?;
            for s in [&a, &b] {
                s.set_nodelay(true)
                    .map_err(|e| LoadError::io("calibration: setting TCP_NODELAY", e))?;
            }
            Ok((a, b))
        })
        .collect()
}

/// Write on one end, read on the other, and back, over every pair in turn until the
/// deadline; returns (one-way messages, thread CPU).
fn both_ends(
    mut socks: Vec<(TcpStream, TcpStream)>,
    size: usize,
    deadline: Instant,
) -> std::io::Result<(u64, Duration)> {
    let msg = vec![b'x'; size];
    let mut buf = vec![0u8; size];
    let start = cpu_time(Who::Thread);
    let mut messages = 0u64;
    while Instant::now() < deadline {
        for (a, b) in &mut socks {
            a.write_all(&msg)?;
            b.read_exact(&mut buf)?;
            b.write_all(&buf)?;
            a.read_exact(&mut buf)?;
            messages += 2;
        }
    }
    Ok((messages, cpu_time(Who::Thread).saturating_sub(start)))
}

/// Send, wait for the echo, until the deadline; returns (one-way messages, thread CPU).
fn ping(mut s: TcpStream, size: usize, deadline: Instant) -> std::io::Result<(u64, Duration)> {
    let msg = vec![b'x'; size];
    let mut buf = vec![0u8; size];
    let start = cpu_time(Who::Thread);
    let mut rounds = 0u64;
    loop {
        for _ in 0..64 {
            s.write_all(&msg)?;
            s.read_exact(&mut buf)?;
            rounds += 1;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let cpu = cpu_time(Who::Thread).saturating_sub(start);
    s.shutdown(Shutdown::Write)?;
    Ok((rounds * 2, cpu))
}

/// Echo until the peer closes; returns (0, thread CPU).
fn pong(mut s: TcpStream, size: usize) -> std::io::Result<(u64, Duration)> {
    let mut buf = vec![0u8; size];
    let start = cpu_time(Who::Thread);
    loop {
        match s.read_exact(&mut buf) {
            Ok(()) => s.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    Ok((0, cpu_time(Who::Thread).saturating_sub(start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_wait_floor_moves_messages_over_every_pair() {
        let f = measure_no_wait_floor(64, 5, 2, Duration::from_millis(100)).unwrap();
        assert_eq!((f.pairs, f.message_bytes), (5, 64));
        // Every round trip over a pair is two messages.
        assert!(f.messages >= 10 && f.messages % 2 == 0, "{f:?}");
        assert!(
            f.us_per_message.is_finite() && f.us_per_message > 0.0,
            "{f:?}"
        );
    }

    #[test]
    fn the_no_wait_floor_refuses_impossible_shapes() {
        let d = Duration::from_millis(10);
        for (size, pairs, threads) in [
            (0, 2, 1),
            (64, 1, 2),
            (64, 2, 0),
            (64, MAX_NO_WAIT_PAIRS + 1, 1),
        ] {
            let e = measure_no_wait_floor(size, pairs, threads, d).unwrap_err();
            assert!(!e.to_string().is_empty());
        }
    }
}
