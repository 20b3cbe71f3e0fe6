//! The binary from outside: configuration layering as printed by `tutti config show`,
//! clear errors and exit codes for bad configuration, and `kill -9` during a live show
//! losing nothing that was acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn tutti() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutti"));
    // Hermetic: no TUTTI_* from the environment running the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("TUTTI_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn config_show_prints_the_layers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tutti.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9001\"\nlog = \"debug\"\n[osc]\nlatency_ms = 3\n",
    )
    .unwrap();
    let out = tutti()
        .args(["config", "show", "--config"])
        .arg(&file)
        .args(["--log", "warn"])
        .env("TUTTI_OSC__LATENCY_MS", "9")
        .env("TUTTI_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:9001\""), "{text}"); // file
    assert!(text.contains("latency_ms = 9"), "{text}"); // env over file
    assert!(text.contains("log = \"warn\""), "{text}"); // flag over env
}

#[test]
fn unknown_tutti_variables_are_ignored_with_one_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = tutti()
        .args(["config", "show"])
        .current_dir(dir.path())
        .env("TUTTI_HOME", "/opt/tutti")
        .env("TUTTI_LOG", "debug")
        // Known to the binary and the client: no warning.
        .env("TUTTI_SERVER", "http://127.0.0.1:1")
        .env("TUTTI_PASSWORD", "secret-password")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "tutti: warning: ignoring the environment variable TUTTI_HOME: it is not a \
          configuration key (nested keys are written TUTTI_<SECTION>__<KEY>, e.g. \
          TUTTI_OSC__LATENCY_MS; `tutti config show` lists the keys)"
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("log = \"debug\""), "{text}");
}

#[test]
fn bad_configuration_is_named_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tutti.toml");
    std::fs::write(&file, "[limits]\nmax_conections = 5\n").unwrap();
    let out = tutti()
        .args(["config", "show", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}, line 2: unknown key limits.max_conections",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("::"), "{err}");

    // A bad value in an environment variable: the variable's full name, no Rust types.
    let elsewhere = tempfile::tempdir().unwrap(); // no tutti.toml here
    let out = tutti()
        .args(["config", "show"])
        .current_dir(elsewhere.path())
        .env("TUTTI_LIMITS__MAX_CONNECTIONS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "tutti: configuration: environment variable TUTTI_LIMITS__MAX_CONNECTIONS: \
             limits.max_connections: expected a whole number"
        ),
        "{err}"
    );
    assert!(!err.contains("::") && !err.contains("usize"), "{err}");

    let piece = dir.path().join("piece.toml");
    std::fs::write(
        &piece,
        "slug = \"x\"\ntitle = \"X\"\ntick_hz = 500\n[[params]]\nname = \"a\"\nkind = \"continuous\"\nmin = 0.0\nmax = 1.0\n",
    )
    .unwrap();
    let out = tutti()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--piece")
        .arg(&piece)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tick_hz"), "{err}");

    // A flag with a bad value: clap's usage error.
    let out = tutti()
        .args(["serve", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

/// On a machine without a sound card the server says so once, in its own words, and the
/// sound library's own errors (`ALSA lib …`) never reach the terminal.
#[test]
fn no_sound_card_gives_one_warning_and_no_library_noise() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tutti()
        .args([
            "serve",
            "--listen",
            &free_addr(),
            "--log",
            "warn",
            "--osc-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    assert!(first.starts_with("Tutti is running"), "{first}");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.lines().any(|l| l.contains("ALSA lib")),
        "library noise on stderr:\n{err}"
    );
    let no_card = match std::fs::read_to_string("/proc/asound/cards") {
        Ok(t) => t.contains("--- no soundcards ---") || t.trim().is_empty(),
        Err(_) => true,
    };
    if no_card {
        let warnings = err
            .lines()
            .filter(|l| l.contains("no usable sound card"))
            .count();
        assert_eq!(warnings, 1, "{err}");
        assert!(err.contains("/proc/asound/cards"), "{err}");
    }
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn serve(data: &std::path::Path) -> Server {
    let addr = free_addr();
    let mut child = tutti()
        .args([
            "serve",
            "--listen",
            &addr,
            "--performer-token",
            "kill-nine-token",
            "--log",
            "warn",
            "--osc-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        // Set by other tools; Tutti warns and starts anyway.
        .env("TUTTI_HOME", "/opt/tutti")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    assert!(first.starts_with("Tutti is running"), "{first}");
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == ty {
                return v;
            }
            assert_ne!(v["type"], "error", "{v}");
        }
    }
}

async fn performer(addr: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type": "join", "role": "performer", "token": "kill-nine-token"}).to_string(),
    ))
    .await
    .unwrap();
    let welcome = recv_type(&mut ws, "welcome").await;
    (ws, welcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = serve(&data);
    let (mut ws, _) = performer(&srv.addr).await;
    let mut last = 0.0;
    for i in 1..=60u64 {
        let v = (i as f64) * 0.01;
        ws.send(Message::text(
            json!({"type": "override", "param": "intensity", "mode": "lock", "value": v, "seq": i})
                .to_string(),
        ))
        .await
        .unwrap();
        let ack = recv_type(&mut ws, "ack").await;
        assert_eq!(ack["seq"], i);
        last = v;
    }
    // Acknowledged: now kill -9, with no chance to flush anything.
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();

    let store =
        tutti_store::Store::open(tutti_store::StoreConfig::new(data.join("tutti.db"))).unwrap();
    let show = store
        .active_shows()
        .await
        .unwrap()
        .pop()
        .expect("the show is still live");
    let log = store.overrides(show.id).await.unwrap();
    assert_eq!(log.iter().filter(|o| o.action == "set").count(), 60);
    store.close().await.unwrap();

    // The restarted server resumes the show with the last acknowledged lock.
    let srv = serve(&data);
    let (mut ws, welcome) = performer(&srv.addr).await;
    assert_eq!(welcome["show"]["code"], show.code.as_str());
    let state = recv_type(&mut ws, "state").await;
    let got = state["params"]["intensity"]["value"].as_f64().unwrap();
    assert!(
        (got - last).abs() < 1e-9,
        "intensity {got}, last acknowledged lock {last}"
    );
}
