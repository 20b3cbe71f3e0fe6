//! A real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `scripts/test` installs) opens the audience page, moves a slider with the keyboard, and
//! the performer page shows the collective value change; the display page shows the QR code.
//! None of the three pages triggers a Content-Security-Policy violation.

mod common;

use std::time::Duration;

use common::browser::*;
use common::*;
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slider_on_a_phone_moves_the_performer_page() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let base = format!("http://{}", srv.addr);
    let driver = chromedriver().await;

    let perf = browser(&driver, &dir.path().join("profile-performer"), 390, 844).await;
    perf.goto(&format!("{base}/perform#token={TOKEN}"))
        .await
        .unwrap();
    wait_text(&perf, "#conn", "live").await;
    wait_text(&perf, "[data-value=intensity]", "0.30").await;

    let phone = browser(&driver, &dir.path().join("profile-phone"), 390, 844).await;
    phone
        .goto(&format!("{base}/?show={}", srv.show_code))
        .await
        .unwrap();
    wait_text(&phone, "#conn", "live").await;
    let slider = phone
        .find(Locator::Css("input[type=range][data-param=intensity]"))
        .await
        .expect("the intensity slider");
    slider.click().await.unwrap();
    // The End key moves a range input to its maximum, as a person with a keyboard would.
    slider.send_keys("\u{E010}").await.unwrap();
    assert_eq!(slider.prop("value").await.unwrap().as_deref(), Some("1"));

    wait_text(&perf, "[data-value=intensity]", "1.00").await;
    wait_text(&phone, "[data-collective=intensity]", "1.00").await;
    // The collective marker is drawn at the value: the fill spans the whole rail.
    let mut ratio = 0.0;
    for _ in 0..50 {
        let r = phone
            .execute(
                "const w = document.querySelector('input[data-param=intensity]').parentElement;\
                 const fill = w.querySelector('.fill'), rail = w.querySelector('.rail');\
                 return fill.getBoundingClientRect().width / rail.getBoundingClientRect().width;",
                vec![],
            )
            .await
            .unwrap();
        ratio = r.as_f64().unwrap_or(0.0);
        if ratio > 0.99 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ratio > 0.99, "fill/rail = {ratio}");

    // Client render cost (the page's state handlers), reported for the latency budget.
    let r = phone
        .execute("return globalThis.tuttiRenderStats;", vec![])
        .await
        .unwrap();
    let count = r["count"].as_f64().unwrap_or(0.0);
    assert!(count > 0.0, "render stats recorded: {r}");
    println!(
        "client render (audience page, headless Chromium): {count} states, mean {:.3} ms, max {:.3} ms",
        r["total_ms"].as_f64().unwrap() / count,
        r["max_ms"].as_f64().unwrap()
    );

    let display = browser(&driver, &dir.path().join("profile-display"), 1280, 900).await;
    display.goto(&format!("{base}/display")).await.unwrap();
    wait_text(&display, "#conn", "live").await;
    wait_text(&display, "[data-value=intensity]", "1.00").await;
    let qr = display.find(Locator::Css("#qr")).await.expect("a QR code");
    let src = qr.attr("src").await.unwrap().unwrap_or_default();
    assert!(src.starts_with("/qr.svg?text="), "{src}");

    // Everything above ran under the pages' strict Content-Security-Policy.
    for b in [perf, phone, display] {
        assert_no_csp_violations(&b).await;
        b.close().await.unwrap();
    }
    srv.shutdown().await.unwrap();
}
