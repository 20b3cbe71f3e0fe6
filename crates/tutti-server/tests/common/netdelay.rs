//! An emulated network for tests that cannot use the kernel's netem (this kernel has none):
//! a TCP relay that holds every chunk it forwards, each way, for a delay drawn uniformly
//! from `mean ± jitter` milliseconds, keeping the stream's order (a chunk never overtakes
//! the one before it, as on a real TCP path). Loss is not modelled: TCP would turn it into
//! retransmission delay; the scripted clients of `scripts/sync-bench` measure loss.

use std::net::SocketAddr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The relay: connect to `addr` to reach `upstream` through the emulated network.
pub struct DelayRelay {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a relay to `upstream` delaying each direction by `mean_ms ± jitter_ms`.
pub async fn delay_relay(
    upstream: SocketAddr,
    mean_ms: f64,
    jitter_ms: f64,
    seed: u64,
) -> DelayRelay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = (down.set_nodelay(true), up.set_nodelay(true));
            n += 1;
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            let delay = move |k: u64| Delay::new(mean_ms, jitter_ms, seed ^ (n << 1 | k));
            pump(dr, uw, delay(0));
            pump(ur, dw, delay(1));
        }
    });
    DelayRelay { addr, task }
}

struct Delay {
    mean_ms: f64,
    jitter_ms: f64,
    rng: rand::rngs::StdRng,
    last: Instant,
}

impl Delay {
    fn new(mean_ms: f64, jitter_ms: f64, seed: u64) -> Delay {
        Delay {
            mean_ms,
            jitter_ms,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            last: Instant::now(),
        }
    }

    /// When a chunk read now may leave: its own delay, but not before the one before it.
    fn release(&mut self) -> Instant {
        let ms = self.mean_ms + self.jitter_ms * self.rng.random_range(-1.0..=1.0);
        let at = Instant::now() + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
        self.last = self.last.max(at);
        self.last
    }
}

/// Forward `from` to `to`, each chunk after its delay.
fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut delay: Delay,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((delay.release(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
}
