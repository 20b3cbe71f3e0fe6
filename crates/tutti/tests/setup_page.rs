//! The guided setup page (`/web/setup.html`) in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`) creates the admin on a fresh server through the first-run
//! form, then (signed out) signs in with a cookie session, picks a pack, answers
//! questions, sees the maturity rise and a warning, and sends the draft to a piece; the
//! draft spec version is then read back through the API. Nothing on the way triggers a
//! Content-Security-Policy violation.

// The same Chromium harness as the server's browser tests.
#[allow(dead_code)]
#[path = "../../tutti-server/tests/common/browser.rs"]
mod harness;
mod support;

use std::time::Duration;

use fantoccini::{Client as Browser, Locator};
use harness::{chromedriver, text_of};
use serde_json::json;
use support::{http, serve};

async fn wait_for(b: &Browser, css: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut last = None;
    for _ in 0..150 {
        last = text_of(b, css).await;
        if let Some(t) = &last {
            if pred(t) {
                return t.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: never as expected (last: {last:?})");
}

async fn answer(b: &Browser, text: &str) {
    let input = b
        .wait()
        .for_element(Locator::Css("#q-input input"))
        .await
        .unwrap();
    input.send_keys(text).await.unwrap();
    b.find(Locator::Css("#answer button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn fill(form: &fantoccini::elements::Element, name: &str, value: &str) {
    form.find(Locator::Css(&format!("input[name={name}]")))
        .await
        .unwrap()
        .send_keys(value)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_drafts_a_spec_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"));
    let addr = server.addr.clone();
    let (st, v) = http(&addr, "GET", "/api/v1/setup", None, None);
    assert_eq!((st, &v["needed"]), (200, &json!(true)), "{v}");
    // With no account yet, `tutti serve` names the setup page.
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.trim_start().starts_with("setup ") && l.contains("/web/setup.html")),
        "{:?}",
        server.banner
    );

    let driver = chromedriver().await;
    let b = harness::browser(&driver, &dir.path().join("profile"), 1280, 1000).await;
    let page = format!("http://{addr}/web/setup.html");
    b.goto(&page).await.unwrap();

    // First run: the page offers to create the admin instead of signing in.
    let form = b
        .wait()
        .for_element(Locator::Css("#first-run"))
        .await
        .unwrap();
    for _ in 0..100 {
        if form.is_displayed().await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(form.is_displayed().await.unwrap(), "the admin form shows");
    assert!(!b
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    fill(&form, "username", "ada").await;
    fill(&form, "display_name", "Ada").await;
    fill(&form, "password", "correct horse battery").await;
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Signed in with a cookie session as the new admin.
    wait_for(&b, "#who", |t| t == "Ada (admin)").await;
    b.wait()
        .for_element(Locator::XPath(
            "//button[strong[text()='Electronic music']]",
        ))
        .await
        .unwrap();
    let (_, v) = http(&addr, "GET", "/api/v1/setup", None, None);
    assert_eq!(v["needed"], false, "setup is closed");

    let (st, v) = http(
        &addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"username": "ada", "password": "correct horse battery"})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["role"], "admin");
    let token = v["access_token"].as_str().unwrap().to_string();
    let (_, e) = http(
        &addr,
        "POST",
        "/api/v1/ensembles",
        Some(&token),
        Some(&json!({"slug": "band", "name": "Band"})),
    );
    let (st, p) = http(
        &addr,
        "POST",
        &format!("/api/v1/ensembles/{}/pieces", e["id"]),
        Some(&token),
        Some(&json!({"slug": "web-piece", "title": "Web Piece"})),
    );
    assert_eq!(st, 201, "{p}");

    // Signed out, the page now shows the sign-in form (setup is closed).
    b.delete_all_cookies().await.unwrap();
    b.execute("sessionStorage.clear()", vec![]).await.unwrap();
    b.goto(&page).await.unwrap();

    // Sign in (cookie session).
    let form = b.wait().for_element(Locator::Css("#login")).await.unwrap();
    for _ in 0..100 {
        if form.is_displayed().await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(form.is_displayed().await.unwrap(), "the sign-in form shows");
    assert!(!b
        .find(Locator::Css("#first-run"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    fill(&form, "username", "ada").await;
    fill(&form, "password", "correct horse battery").await;
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Choose the electronic pack.
    let card = b
        .wait()
        .for_element(Locator::XPath(
            "//button[strong[text()='Electronic music']]",
        ))
        .await
        .unwrap();
    card.click().await.unwrap();
    wait_for(&b, "#q-text", |t| t == "What is the piece called?").await;
    assert_eq!(text_of(&b, "#maturity").await.as_deref(), Some("0%"));

    answer(&b, "Web Piece Draft").await;
    wait_for(&b, "#q-text", |t| t.starts_with("How many phones")).await;
    answer(&b, "6000").await;
    wait_for(&b, "#q-text", |t| !t.starts_with("How many phones")).await;
    let maturity = wait_for(&b, "#maturity", |t| t != "0%").await;
    assert!(maturity.ends_with('%'), "{maturity}");
    // 6000 phones: the pack warns about the input load.
    let findings = wait_for(&b, "#findings", |t| t.contains("Warning")).await;
    assert!(findings.contains("Warning"), "{findings}");
    let answers = text_of(&b, "#answers").await.unwrap();
    assert!(answers.contains("audience_size: 6000"), "{answers}");
    // The coverage bars are drawn (their width is set through the CSSOM, which the strict
    // Content-Security-Policy allows, unlike a style attribute).
    let widths = b
        .execute(
            "return [...document.querySelectorAll('.setup-bar > span')]\
               .map((s) => s.getBoundingClientRect().width);",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths
            .as_array()
            .is_some_and(|w| w.iter().any(|x| x.as_f64().unwrap_or(0.0) > 0.0)),
        "no coverage bar is filled: {widths}"
    );

    // Send the draft to the piece.
    b.find(Locator::Css("#draft button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = wait_for(&b, "#draft-result", |t| t.starts_with("Draft version")).await;
    assert!(result.starts_with("Draft version 1 created"), "{result}");
    let (st, v) = http(
        &addr,
        "GET",
        &format!("/api/v1/pieces/{}/specs/1", p["id"]),
        Some(&token),
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "draft");
    assert_eq!(v["spec"]["title"], "Web Piece Draft");
    harness::assert_no_csp_violations(&b).await;
    b.close().await.unwrap();
}
