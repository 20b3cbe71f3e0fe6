//! A real browser and the embedded engine: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) opens the performer page; after a performer locks `intensity` at 1.0 the
//! Sound panel's level meters and spectrum show the engine's output (from the `monitor` frames),
//! the Listen button plays the `/live/v1/audio` stream through the AudioWorklet (the server
//! counts a listener) and stops it, a wrong token gets the server's `unauthorized` back through
//! listen.js, and with no engine the panel says so and hides the meters and the button. No
//! step triggers a Content-Security-Policy violation.
//! The harness (chromedriver + fantoccini) is the one of `browser.rs`.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::browser::*;
use common::*;
use fantoccini::{Client as Browser, Locator};
use serde_json::{json, Value};

async fn attr_of(b: &Browser, css: &str, name: &str) -> Option<String> {
    let el = b.find(Locator::Css(css)).await.ok()?;
    el.attr(name).await.ok()?
}

async fn pressed(button: &fantoccini::elements::Element) -> Option<String> {
    button.attr("aria-pressed").await.unwrap()
}

/// Wait until attribute `name` of `css` satisfies `ok`; returns its value.
async fn wait_attr(b: &Browser, css: &str, name: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = None;
    for _ in 0..150 {
        last = attr_of(b, css, name).await;
        if last.as_deref().is_some_and(&ok) {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}[{name}] never satisfied the condition (last: {last:?})");
}

/// Pixels of a canvas that have exactly the colour of the CSS variable `var` (so: drawn by
/// the panel with it, not anti-aliased edges or the background).
async fn painted(b: &Browser, canvas: &str, var: &str) -> u64 {
    let script = "const c = document.querySelector(arguments[0]);\
        const v = getComputedStyle(document.documentElement).getPropertyValue(arguments[1]).trim();\
        const p = document.createElement('canvas').getContext('2d');\
        p.fillStyle = v; p.fillRect(0, 0, 1, 1);\
        const want = p.getImageData(0, 0, 1, 1).data;\
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;\
        let n = 0;\
        for (let i = 0; i < d.length; i += 4) {\
          if (d[i] === want[0] && d[i + 1] === want[1] && d[i + 2] === want[2] && d[i + 3] === 255) n++;\
        }\
        return n;";
    b.execute(script, vec![json!(canvas), json!(var)])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(0)
}

async fn wait_painted(b: &Browser, canvas: &str, var: &str) -> u64 {
    for _ in 0..100 {
        let n = painted(b, canvas, var).await;
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{canvas} never showed any {var} pixels");
}

/// The listen state, failing at once on an error.
async fn wait_listen_state(b: &Browser, want: &str) {
    let mut last = None;
    for _ in 0..150 {
        last = attr_of(b, "#listen-state", "data-state").await;
        if last.as_deref() == Some("error") {
            let text = text_of(b, "#listen-state").await;
            panic!("listening failed: {text:?}");
        }
        if last.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("#listen-state never became {want:?} (last: {last:?})");
}

async fn wait_listeners(srv: &tutti_server::Running, want: usize) {
    for _ in 0..100 {
        if srv.hub.stats.listeners.load(Relaxed) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = srv.hub.stats.listeners.load(Relaxed);
    panic!("the server counts {got} listeners, not {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_performer_page_shows_levels_and_listens() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let base = format!("http://{}", srv.addr);
    let driver = chromedriver().await;

    let perf = browser(&driver, &dir.path().join("profile-performer"), 1280, 1000).await;
    perf.goto(&format!("{base}/perform#token={TOKEN}"))
        .await
        .unwrap();
    wait_text(&perf, "#conn", "live").await;
    // The stats frame's `sound` names the backend and its state.
    wait_text(&perf, "#sound-backend", "Embedded engine").await;
    let detail = text_of(&perf, "#sound-detail").await.unwrap_or_default();
    assert!(detail.contains("playing"), "{detail}");
    let error = perf.find(Locator::Css("#sound-error")).await.unwrap();
    assert!(
        !error.is_displayed().await.unwrap(),
        "{:?}",
        error.text().await
    );

    // Another performer locks the intensity at its maximum: the drone plays loud.
    let mut other = Client::performer(srv.addr).await;
    other
        .send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 1.0, "seq": 1}))
        .await;
    assert_eq!(other.recv_type("ack").await["seq"], 1);

    for meter in ["#meter-l", "#meter-r"] {
        let rms = wait_attr(&perf, meter, "data-rms-dbfs", |v| {
            v.parse::<f64>().is_ok_and(|db| db > -100.0)
        })
        .await;
        let db: f64 = rms.parse().unwrap();
        assert!(db <= 0.0, "{meter}: {db} dBFS");
        // Rounded to 0.1 dB.
        assert_eq!(rms, format!("{db:.1}"), "{meter}");
    }
    // The canvases are painted: RMS bars in the meters' green zone, spectrum bars.
    wait_painted(&perf, "#meter-l", "--ok").await;
    wait_painted(&perf, "#meter-r", "--ok").await;
    wait_painted(&perf, "#spectrum", "--crowd").await;
    let summary = text_of(&perf, "#sound-summary").await.unwrap_or_default();
    assert!(
        summary.starts_with("L \u{2212}") && summary.contains("dBFS, R "),
        "{summary}"
    );
    let live = attr_of(&perf, "#sound-summary", "aria-live").await;
    assert_eq!(live.as_deref(), Some("off"));

    // Listen: the click starts the AudioContext and the stream with the page's token.
    let listen = perf.find(Locator::Css("#listen")).await.unwrap();
    assert_eq!(pressed(&listen).await.as_deref(), Some("false"));
    listen.click().await.unwrap();
    assert_eq!(pressed(&listen).await.as_deref(), Some("true"));
    // "playing" comes from the worklet once its jitter buffer has filled from the stream.
    wait_listen_state(&perf, "playing").await;
    assert_eq!(pressed(&listen).await.as_deref(), Some("true"));
    wait_listeners(&srv, 1).await;
    let buffered = attr_of(&perf, "#listen-state", "data-buffered-ms").await;
    assert!(
        buffered
            .as_deref()
            .and_then(|b| b.parse::<f64>().ok())
            .is_some(),
        "{buffered:?}"
    );

    // Stop: the button pops out and the server sees the listener go.
    listen.click().await.unwrap();
    assert_eq!(pressed(&listen).await.as_deref(), Some("false"));
    assert_eq!(
        attr_of(&perf, "#listen-state", "data-state")
            .await
            .as_deref(),
        Some("off")
    );
    wait_listeners(&srv, 0).await;

    // listen.js with a wrong token: the server's refusal comes back as the final state.
    let refused = perf
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             import('/web/audio/listen.js').then((m) => {\
               const seen = [];\
               m.startListening('/live/v1/audio', { token: 'not-the-token', onState: (s, info) => {\
                 seen.push(s);\
                 if (s === 'error' || s === 'closed') done({ seen, info, listening: m.isListening() });\
               } }).catch((e) => done({ seen, thrown: String(e) }));\
             });",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        refused["seen"].as_array().unwrap().last(),
        Some(&json!("error")),
        "{refused}"
    );
    assert_eq!(refused["info"]["code"], "unauthorized", "{refused}");
    assert_eq!(refused["listening"], Value::Bool(false), "{refused}");
    assert_eq!(srv.hub.stats.listeners.load(Relaxed), 0);
    // The worklet, the stream and the meters all ran under the strict policy.
    assert_no_csp_violations(&perf).await;

    perf.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_engine_the_panel_says_so_and_hides_listen() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.sound = tutti_server::config::SoundBackend::None;
    let srv = start_with(cfg).await;
    let driver = chromedriver().await;

    let perf = browser(&driver, &dir.path().join("profile-performer"), 1280, 1000).await;
    perf.goto(&format!("http://{}/perform#token={TOKEN}", srv.addr))
        .await
        .unwrap();
    wait_text(&perf, "#conn", "live").await;
    wait_text(&perf, "#sound-backend", "No sound (OSC only)").await;
    let sound = perf.find(Locator::Css("#sound")).await.unwrap();
    assert_eq!(
        sound.attr("data-backend").await.unwrap().as_deref(),
        Some("none")
    );
    for css in ["#sound-engine", "#listen", "#meter-l", "#spectrum"] {
        let el = perf.find(Locator::Css(css)).await.unwrap();
        assert!(!el.is_displayed().await.unwrap(), "{css} is shown");
    }
    assert_eq!(srv.engine().map(|_| ()), None);

    perf.close().await.unwrap();
    srv.shutdown().await.unwrap();
}
