//! Test harness: a real `jackd -d dummy` and `scsynth` per test, on a free port, stopped
//! cleanly when the harness is dropped.
//!
//! JACK keeps a registry of at most 8 servers in shared memory and only reclaims the entry
//! of a dead server when a server *of the same name* starts, so the harness uses a small
//! pool of names (`tutti-sc-0` .. `tutti-sc-7`), moves to the next name when one is taken,
//! and stops jackd with SIGTERM so that it unregisters. scsynth is stopped with `/quit`;
//! after a SIGKILL (the crash the recovery test simulates) its shared-memory file
//! `/dev/shm/SuperColliderServer_<port>` is removed by the harness.
//!
//! Missing binaries make the tests fail (never skip) with a message that says how to get
//! them. `TUTTI_SCSYNTH` and `TUTTI_JACKD` override the binaries on `PATH`.

#![allow(dead_code)]

use std::future::Future;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "install Debian's supercollider-server and jackd2 \
     (`apt-get install supercollider-server jackd2`; the project's test script does this) \
     and run the tests again; these tests need a real scsynth and are never skipped";

/// How long a server gets to boot before the test fails (a liveness bound, not a goal).
const BOOT_DEADLINE: Duration = Duration::from_secs(30);

/// Finds a program via `env` or `PATH`; fails the test with the install hint if absent.
pub fn binary(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{env}={} is not a file: {INSTALL_HINT}",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found on PATH: {INSTALL_HINT}"))
}

pub fn scsynth_bin() -> PathBuf {
    binary("TUTTI_SCSYNTH", "scsynth")
}

/// A UDP port (also free for TCP right now) nobody listens on.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Size of the pool of JACK server names (JACK's registry holds 8 servers).
const JACK_NAMES: u32 = 8;

fn spawn_jackd(bin: &Path, name: &str, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("jackd log");
    Command::new(bin)
        .args(["-r", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"])
        .env("JACK_NO_AUDIO_RESERVATION", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}: {INSTALL_HINT}", bin.display()))
}

/// Sends SIGTERM and waits up to `grace` for the process to exit, then SIGKILLs it.
fn terminate(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One JACK dummy server and one scsynth attached to it.
pub struct ScServer {
    jackd: Child,
    jackd_bin: PathBuf,
    jack_tries: u32,
    scsynth: Option<Child>,
    scsynth_bin: PathBuf,
    jack_name: String,
    pub port: u16,
    pub tcp_port: Option<u16>,
    logs: tempfile::TempDir,
    boots: u32,
}

impl ScServer {
    /// Starts jackd and scsynth listening on UDP.
    pub fn start() -> ScServer {
        ScServer::start_with(false)
    }

    /// Starts jackd and scsynth; with `tcp`, scsynth also listens on a TCP port.
    pub fn start_with(tcp: bool) -> ScServer {
        let jackd_bin = binary("TUTTI_JACKD", "jackd");
        let scsynth_bin = scsynth_bin();
        let logs = tempfile::tempdir().expect("temp dir for logs");
        let first = (std::process::id() + NEXT.fetch_add(1, Ordering::Relaxed)) % JACK_NAMES;
        let jack_name = format!("tutti-sc-{first}");
        let jackd = spawn_jackd(&jackd_bin, &jack_name, &logs.path().join("jackd-0.log"));
        let port = free_port();
        let mut server = ScServer {
            jackd,
            jackd_bin,
            jack_tries: 1,
            scsynth: None,
            scsynth_bin,
            jack_name,
            port,
            tcp_port: tcp.then(free_port),
            logs,
            boots: 0,
        };
        server.start_scsynth();
        server
    }

    /// jackd exited (its name is taken, or the registry is full): try the next name.
    fn restart_jackd(&mut self) {
        let status = self.jackd.try_wait().ok().flatten();
        assert!(
            self.jack_tries < 2 * JACK_NAMES,
            "jackd keeps exiting ({status:?}); JACK allows 8 servers at a time\n{}",
            self.log_tail()
        );
        let next: u32 = self
            .jack_name
            .trim_start_matches("tutti-sc-")
            .parse()
            .unwrap_or(0);
        self.jack_name = format!("tutti-sc-{}", (next + 1) % JACK_NAMES);
        let log = self
            .logs
            .path()
            .join(format!("jackd-{}.log", self.jack_tries));
        self.jack_tries += 1;
        self.jackd = spawn_jackd(&self.jackd_bin, &self.jack_name, &log);
    }

    /// `127.0.0.1:<udp port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn_scsynth(&mut self) {
        self.boots += 1;
        let log =
            std::fs::File::create(self.logs.path().join(format!("scsynth-{}.log", self.boots)))
                .expect("scsynth log");
        let mut cmd = Command::new(&self.scsynth_bin);
        cmd.args(["-u", &self.port.to_string()]);
        if let Some(t) = self.tcp_port {
            cmd.args(["-t", &t.to_string()]);
        }
        cmd.args(["-R", "0", "-D", "0", "-i", "0", "-o", "2"])
            .env("JACK_DEFAULT_SERVER", &self.jack_name)
            .env("JACK_NO_START_SERVER", "1")
            .env("JACK_NO_AUDIO_RESERVATION", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}: {INSTALL_HINT}",
                self.scsynth_bin.display()
            )
        });
        self.scsynth = Some(child);
    }

    /// Starts scsynth (again) on the same port and waits until it answers `/status`.
    pub fn start_scsynth(&mut self) {
        let deadline = Instant::now() + BOOT_DEADLINE;
        self.spawn_scsynth();
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let status = b"/status\0,\0\0\0";
        let mut buf = [0u8; 1024];
        loop {
            assert!(
                Instant::now() < deadline,
                "scsynth did not answer /status within {BOOT_DEADLINE:?}\n{}",
                self.log_tail()
            );
            // scsynth exits when JACK is not up yet: start it again.
            let exited = self
                .scsynth
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited {
                if matches!(self.jackd.try_wait(), Ok(Some(_))) {
                    self.restart_jackd();
                }
                std::thread::sleep(Duration::from_millis(200));
                self.spawn_scsynth();
                continue;
            }
            let _ = probe.send_to(status, ("127.0.0.1", self.port));
            if let Ok((n, _)) = probe.recv_from(&mut buf) {
                if buf[..n].starts_with(b"/status.reply") {
                    if matches!(self.jackd.try_wait(), Ok(Some(_))) {
                        // Our jackd failed (its name was taken by another test's server) and
                        // this scsynth joined that other server: start over on a free name.
                        self.kill_scsynth();
                        self.restart_jackd();
                        std::thread::sleep(Duration::from_millis(200));
                        self.spawn_scsynth();
                        continue;
                    }
                    return;
                }
            }
        }
    }

    /// Kills scsynth (SIGKILL, as a crash would).
    pub fn kill_scsynth(&mut self) {
        if let Some(mut c) = self.scsynth.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.remove_scsynth_shm();
    }

    /// scsynth's shared memory, left behind when it dies without `/quit`.
    fn remove_scsynth_shm(&self) {
        let _ = std::fs::remove_file(format!("/dev/shm/SuperColliderServer_{}", self.port));
    }

    /// Stops scsynth with `/quit`, then SIGTERM/SIGKILL if it lingers.
    fn quit_scsynth(&mut self) {
        let Some(mut c) = self.scsynth.take() else {
            return;
        };
        if let Ok(sock) = UdpSocket::bind("127.0.0.1:0") {
            let _ = sock.send_to(b"/quit\0\0\0,\0\0\0", ("127.0.0.1", self.port));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(c.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        terminate(&mut c, Duration::from_secs(1));
        self.remove_scsynth_shm();
    }

    /// The last lines of every log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(self.logs.path()) {
            let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let from = lines.len().saturating_sub(15);
                out.push_str(&format!("--- {}\n{}\n", name(&p), lines[from..].join("\n")));
            }
        }
        out
    }
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Drop for ScServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.quit_scsynth();
        terminate(&mut self.jackd, Duration::from_secs(3));
    }
}

/// Polls `check` until it returns `Ok`, failing the test with the last error after
/// `within` (a bound so a broken build cannot hang CI; not a performance goal).
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: still not true after {within:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
