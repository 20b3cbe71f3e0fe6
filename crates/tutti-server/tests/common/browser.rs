//! Real-browser harness: Debian's `chromium` driven through `chromedriver` (both installed
//! by `scripts/test`), with a fresh profile per session.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};

pub struct Driver {
    child: Child,
    /// The WebDriver port.
    pub port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn chromedriver() -> Driver {
    let port = free_port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (run ./scripts/test, which installs chromium-driver)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver { child, port };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromedriver did not start");
}

pub async fn browser(driver: &Driver, profile: &Path, width: u32, height: u32) -> Browser {
    browser_with(driver, profile, width, height, &[]).await
}

/// [`browser`] with more command-line switches (a fake microphone, say).
pub async fn browser_with(
    driver: &Driver,
    profile: &Path,
    width: u32,
    height: u32,
    extra: &[String],
) -> Browser {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--autoplay-policy=no-user-gesture-required",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--window-size={width},{height}"));
    args.extend(extra.iter().cloned());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

pub async fn text_of(b: &Browser, css: &str) -> Option<String> {
    let el = b.find(Locator::Css(css)).await.ok()?;
    el.text().await.ok()
}

pub async fn wait_text(b: &Browser, css: &str, want: &str) {
    let mut last = None;
    for _ in 0..150 {
        last = text_of(b, css).await;
        if last.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never read {want:?} (last: {last:?})");
}

/// Fails when the page has reported a Content-Security-Policy violation since it loaded
/// (Chromium's Reporting API buffers them, so earlier ones are seen too). To prove that
/// the policy is in force and that violations are seen at all, the page then loads an
/// image from another origin, which the policy must block and report.
pub async fn assert_no_csp_violations(b: &Browser) {
    let got = b
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const seen = [];\
             const take = (rs) => { for (const r of rs) seen.push(`${r.body.effectiveDirective} ${r.body.blockedURL}`); };\
             const o = new ReportingObserver(take, { types: ['csp-violation'], buffered: true });\
             o.observe();\
             new Image().src = 'http://csp-probe.invalid/probe.png';\
             let polls = 0;\
             const poll = () => {\
               take(o.takeRecords());\
               if (seen.some((s) => s.includes('csp-probe')) || ++polls > 200) { o.disconnect(); done(seen); }\
               else setTimeout(poll, 50);\
             };\
             poll();",
            vec![],
        )
        .await
        .expect("the Reporting API answers");
    let seen: Vec<String> = serde_json::from_value(got).unwrap_or_default();
    let (probe, others): (Vec<&String>, Vec<&String>) =
        seen.iter().partition(|s| s.contains("csp-probe"));
    assert!(
        probe.iter().any(|s| s.starts_with("img-src")),
        "the policy did not block (or the page did not report) an image from another origin: {seen:?}"
    );
    assert!(
        others.is_empty(),
        "Content-Security-Policy violations: {others:?}"
    );
}

/// Polls `expr` (a JS expression) until it is truthy; its value. Fails after 20 s (a guard
/// against a hang, not a timing requirement).
pub async fn until(b: &Browser, what: &str, expr: &str) -> Value {
    let script = format!("try {{ return ({expr}) || null; }} catch (e) {{ return null; }}");
    let mut last = Value::Null;
    for _ in 0..200 {
        last = b
            .execute(&script, vec![])
            .await
            .expect("the page runs scripts");
        if !last.is_null() && last != json!(false) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: never true ({expr}); last {last}");
}
