//! The post-show report: a deterministic synthetic show fed through the real consensus
//! engine and the hub's renderer into a real SQLite store; its report's numbers checked
//! from the JSON, its SVGs parsed, its HTML free of outside references; the API's
//! permissions and bad input; a corrupted snapshot row; a show still running; the page in
//! headless Chromium (no console errors, printed to PDF); the dashboard's live trajectories
//! and its Report button.

mod api_support;
mod common;

use std::path::Path;
use std::time::Duration;

use api_support::*;
use common::browser::{browser, chromedriver};
use fantoccini::Locator;
use serde_json::{json, Value};
use tutti_server::synthetic::{self, Recorded, SyntheticShow};
use tutti_server::Running;
use tutti_store::{Store, StoreConfig};

async fn record(dir: &Path, o: SyntheticShow) -> Recorded {
    let store = Store::open(StoreConfig::new(dir.join("tutti.db"))).expect("store");
    let r = synthetic::record(&store, &o).await.expect("synthetic show");
    store.close().await.expect("close");
    r
}

fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").expect("closed svg") + i + "</svg>".len();
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
        .collect()
}

fn assert_self_contained(html: &str) {
    for needle in ["http://", "https://", "<script", "src=", "url(", "@import"] {
        assert!(
            !html.contains(needle),
            "the report refers outside: {needle}"
        );
    }
    // The one link is the empty icon, so that browsers do not ask the server for one.
    for (i, _) in html.match_indices("href=") {
        assert!(
            html[i..].starts_with("href=\"data:,\""),
            "{}",
            &html[i..i + 40]
        );
    }
}

#[tokio::test]
async fn the_report_of_a_synthetic_show_has_the_planted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let o = SyntheticShow::default();
    let rec = record(dir.path(), o.clone()).await;
    let store = Store::open(StoreConfig::new(dir.path().join("tutti.db"))).unwrap();
    let loaded = tutti_report::load::show(&store, rec.show.clone())
        .await
        .unwrap();
    let r = tutti_report::load::report(&store, loaded, None)
        .await
        .unwrap();

    // The summary, from what was planted.
    let s = &r.summary;
    assert!(!r.running);
    assert_eq!(s.snapshots, u64::from(o.seconds) + 1);
    assert_eq!(s.corrupt_snapshots, 0);
    assert_eq!(s.duration_s, f64::from(o.seconds));
    assert_eq!(s.peak_audience, o.participants);
    assert_eq!(s.inputs, Some(rec.inputs));
    assert_eq!(s.interventions, rec.interventions);
    assert_eq!(s.interventions_by_action.get("set"), Some(&1));
    assert_eq!(s.interventions_by_action.get("release"), Some(&1));
    let c = s.most_contested.as_ref().expect("a contested moment");
    let split_param = &rec.spec.params[1].name;
    assert_eq!(&c.param, split_param, "{c:?}");
    assert!(
        c.t >= rec.split.0 && c.t <= rec.split.1 + 1.0,
        "{c:?} outside the split {:?}",
        rec.split
    );
    assert!(c.agreement < 0.2, "{c:?}");

    // The lock: one period on the first parameter, the value held there.
    let first = &rec.spec.params[0].name;
    let locks: Vec<_> = r.overrides.iter().filter(|p| &p.param == first).collect();
    assert_eq!(locks.len(), 1, "{:?}", r.overrides);
    let (from, to, value) = rec.lock;
    assert!(
        (locks[0].from - (from + 1.0)).abs() <= 1.0,
        "{:?}",
        locks[0]
    );
    assert!((locks[0].to - to).abs() <= 1.0, "{:?}", locks[0]);
    assert_eq!(locks[0].mode, "lock");
    assert_eq!(locks[0].a, Some(value));
    let p0 = &r.params[0];
    for (t, v) in p0.t.iter().zip(&p0.value) {
        if *t > from + 1.5 && *t < to - 0.5 {
            assert!((v - value).abs() < 1e-9, "locked value at {t}: {v}");
        }
    }
    assert!(p0.stats.overridden_s >= to - from - 2.0, "{:?}", p0.stats);

    // Sections: calm, pulse, storm, each near its planned time.
    let got: Vec<&str> = r.sections.iter().map(|c| c.to.as_str()).collect();
    assert_eq!(got, ["calm", "pulse", "storm"], "{:?}", r.sections);
    for (change, (at, name)) in r.sections.iter().zip(&rec.sections).skip(1) {
        assert_eq!(&change.to, name);
        assert!(
            change.t >= *at && change.t <= at + 6.0,
            "{change:?} planned {at}"
        );
    }

    // Zones: the front is the busiest, the back the quietest.
    assert_eq!(r.zones.len(), 3);
    assert!(r.zones[0].activity > r.zones[1].activity);
    assert!(r.zones[1].activity > r.zones[2].activity);
    assert_eq!(r.zones[0].peak_connected, o.participants / 3);

    // Every parameter has a series per snapshot and a heat map whose columns sum to 1.
    for p in &r.params {
        assert_eq!(p.t.len(), s.snapshots as usize);
        assert_eq!(p.heat.cells.len(), p.heat.t.len());
        let late = p.heat.cells.last().unwrap();
        let sum: f32 = late.iter().sum();
        assert!((sum - 1.0).abs() < 1e-3, "{}: {sum}", p.name);
        assert!(p.heat.median.last().unwrap().is_some());
    }
    // Loudness per minute from the recorded levels; health totals.
    assert_eq!(r.audio.len(), 2);
    assert!(r
        .audio
        .iter()
        .all(|m| m.level_dbfs < 0.0 && m.level_dbfs > -60.0));
    assert!(r.health.recorded);
    assert!(r.health.delivered > 0);
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);

    // The JSON round-trips.
    let json = serde_json::to_string(&r).unwrap();
    let back: tutti_report::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (back.summary.snapshots, back.params.len()),
        (s.snapshots, r.params.len())
    );

    // The page: self-contained, every chart a well-formed SVG with its series.
    let html = tutti_report::html::render(&r).unwrap();
    assert_self_contained(&html);
    let charts = svgs(&html);
    // Value and heat map per parameter, participation, agreement, zones, audio, rate.
    assert_eq!(charts.len(), r.params.len() * 2 + 5);
    for (i, svg) in charts.iter().enumerate() {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("svg {i}: {e}"));
        assert!(doc.root_element().has_tag_name("svg"));
    }
    let value_chart = roxmltree::Document::parse(charts[0]).unwrap();
    let t = texts(&value_chart);
    assert!(t.iter().any(|x| x == "collective value"), "{t:?}");
    assert!(t.iter().any(|x| x == "crowd (raw aggregate)"), "{t:?}");
    assert!(
        t.iter().any(|x| x == "lock 0.9"),
        "the lock is labelled: {t:?}"
    );
    assert!(t.iter().any(|x| x == "storm"), "sections are marked: {t:?}");
    let lines: Vec<_> = value_chart
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .collect();
    let longest = lines
        .iter()
        .map(|l| {
            l.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .max()
        .unwrap();
    assert!(longest >= s.snapshots as usize / 2, "{longest} points");
    let heat = roxmltree::Document::parse(charts[1]).unwrap();
    assert!(
        heat.descendants()
            .filter(|n| n.has_tag_name("rect"))
            .count()
            > 100
    );
    assert!(texts(&heat).iter().any(|x| x == "median"));

    // The time series: the documented columns, a row per snapshot.
    let mut csv = Vec::new();
    let loaded = tutti_report::load::show(&store, rec.show.clone())
        .await
        .unwrap();
    tutti_report::load::series(
        &store,
        &loaded,
        None,
        tutti_report::SeriesFormat::Csv,
        &mut csv,
    )
    .await
    .unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!(header, tutti_report::series::columns(&rec.spec));
    assert_eq!(&header[..4], ["t_s", "at_ms", "tick", "valid"]);
    assert!(header.contains(&"section.choice"));
    assert_eq!(rows.clone().count(), s.snapshots as usize);
    assert!(rows.all(|r| r.split(',').nth(3) == Some("1")));
    store.close().await.unwrap();
}

async fn server_with_shows(dir: &Path) -> (Running, Recorded, Recorded) {
    let ended = record(dir, SyntheticShow::default()).await;
    let running = record(
        dir,
        SyntheticShow {
            code: "LIVE22".into(),
            seconds: 20,
            end: false,
            audio: false,
            seed: 9,
            ..SyntheticShow::default()
        },
    )
    .await;
    // A snapshot that is valid JSON but not a state, and one that is not JSON at all (written
    // past the schema's check, as a damaged file would hold it).
    let db = rusqlite::Connection::open(dir.join("tutti.db")).unwrap();
    db.execute_batch("PRAGMA ignore_check_constraints = ON;")
        .unwrap();
    db.execute(
        "INSERT INTO snapshots (show_id, tick, at_ms, state_json) VALUES (?1, 402, ?2, '{\"garbage\":1}')",
        rusqlite::params![ended.show.id, SyntheticShow::default().start_ms + 20_000 + 500],
    )
    .unwrap();
    db.execute(
        "INSERT INTO snapshots (show_id, tick, at_ms, state_json) VALUES (?1, 802, ?2, 'not json')",
        rusqlite::params![
            ended.show.id,
            SyntheticShow::default().start_ms + 40_000 + 500
        ],
    )
    .unwrap();
    drop(db);
    (start(dir).await, ended, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_the_api_with_permissions_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, ended, running) = server_with_shows(dir.path()).await;
    let (admin, _) = setup_admin(srv.addr).await;
    let id = ended.show.id;

    // JSON: the corrupted rows are counted and marked, never a 500.
    let j = admin
        .get(&format!("/shows/{id}/report?format=json"))
        .await
        .ok(200);
    assert_eq!(j["format"], "tutti.show-report/1");
    assert_eq!(j["summary"]["snapshots"], 91);
    assert_eq!(j["summary"]["corrupt_snapshots"], 2);
    let gaps = j["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(gaps.iter().all(|g| g["reason"] == "corrupt"));
    assert!((gaps[0]["from"].as_f64().unwrap() - 20.0).abs() < 1e-9);
    assert_eq!(j["running"], false);

    // HTML, self-contained.
    let r = admin.get(&format!("/shows/{id}/report")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").expect("a policy");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = String::from_utf8(r.body.clone()).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("a stored snapshot could not be read"));

    // A range; the series.
    let j = admin
        .get(&format!("/shows/{id}/report?format=json&from=10&to=30"))
        .await
        .ok(200);
    assert_eq!(j["summary"]["snapshots"], 21);
    assert_eq!(j["range"], json!({"from": 10.0, "to": 30.0}));
    let csv = admin.get(&format!("/shows/{id}/series")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let text = String::from_utf8(csv.body).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + 93,
        "header, 91 states, 2 unreadable"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.split(',').nth(3) == Some("0"))
            .count(),
        2
    );
    let series = admin
        .get(&format!("/shows/{id}/series?format=json&to=5"))
        .await
        .ok(200);
    assert_eq!(series["rows"].as_array().unwrap().len(), 6);
    assert_eq!(series["columns"][0], "t_s");

    // A show still running gets its report so far, marked as such.
    let j = admin
        .get(&format!("/shows/{}/report?format=json", running.show.id))
        .await
        .ok(200);
    assert_eq!(j["running"], true);
    assert!(j["summary"]["snapshots"].as_u64().unwrap() >= 21);
    let html = admin
        .get(&format!("/shows/{}/report", running.show.id))
        .await;
    assert!(String::from_utf8_lossy(&html.body).contains("id=\"running\""));

    // Bad input: a clear error with a stable code.
    for (q, field) in [
        ("from=-1", "from"),
        ("from=NaN", "from"),
        ("to=inf", "to"),
        ("from=30&to=10", "to"),
        ("to=99999999", "to"),
        ("format=xml", "format"),
    ] {
        let e = admin
            .get(&format!("/shows/{id}/report?{q}"))
            .await
            .err(422, "validation_failed");
        assert!(e["message"].as_str().unwrap().contains(field), "{q}: {e}");
    }
    admin
        .get(&format!("/shows/{id}/series?format=xlsx"))
        .await
        .err(422, "validation_failed");
    admin
        .get(&format!("/shows/{id}/report?nonsense=1"))
        .await
        .err(422, "validation_failed");
    admin
        .get("/shows/999999/report")
        .await
        .err(404, "not_found");
    let r = admin.get("/shows/abc/report").await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);

    // Permissions: nobody, another ensemble, the performer token.
    Api::new(srv.addr)
        .get(&format!("/shows/{id}/report"))
        .await
        .err(401, "unauthorized");
    let (perf, _) = user(&admin, "pat", "performer").await;
    let eid = perf.ensemble("pats").await;
    // By hand, to keep its title with an apostrophe (the report's page shows it; the helper
    // would title the piece by its slug).
    let piece = perf
        .post(
            &format!("/ensembles/{eid}/pieces"),
            json!({"slug": "pats-piece", "title": "Pat's piece"}),
        )
        .await
        .ok(201);
    let pid = id_of(&piece);
    let version = perf.draft_spec(pid, spec("pats-piece")).await;
    perf.publish(pid, version).await;
    let own = perf.show(pid, "rehearsal").await;
    // Their own show (nothing recorded yet) reports empty, not an error.
    let j = perf
        .get(&format!("/shows/{}/report?format=json", own["id"]))
        .await
        .ok(200);
    assert_eq!(j["summary"]["snapshots"], 0);
    assert_eq!(j["running"], true);
    perf.get(&format!("/shows/{}/report", own["id"]))
        .await
        .ok_html();
    // Not the synthetic show (no ensemble of theirs): 404, as if it did not exist.
    perf.get(&format!("/shows/{id}/report"))
        .await
        .err(404, "not_found");
    perf.get(&format!("/shows/{id}/series"))
        .await
        .err(404, "not_found");
    let (other, _) = user(&admin, "olga", "performer").await;
    other
        .get(&format!("/shows/{}/report", own["id"]))
        .await
        .err(404, "not_found");
    other
        .post_empty(&format!("/reports/{}/link", own["code"].as_str().unwrap()))
        .await
        .err(404, "not_found");
    let op = Api::new(srv.addr).with(PERFORMER_TOKEN);
    op.get(&format!("/shows/{id}/report?format=json"))
        .await
        .ok(200);

    // The page: signed out it says so (as a page), a link's key opens it, a wrong key not.
    let page = raw(srv.addr, "GET", &format!("/shows/{id}/report"), &[], &[]).await;
    assert_eq!(page.status, 401);
    assert!(String::from_utf8_lossy(&page.body).contains("Sign in"));
    let link = op
        .post_empty(&format!("/reports/{}/link", ended.show.code))
        .await
        .ok(201);
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("/shows/{id}/report?key=")),
        "{url}"
    );
    let page = raw(srv.addr, "GET", url, &[], &[]).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<svg"));
    let other_show = raw(
        srv.addr,
        "GET",
        &url.replace(
            &format!("/shows/{id}/"),
            &format!("/shows/{}/", running.show.id),
        ),
        &[],
        &[],
    )
    .await;
    assert_eq!(other_show.status, 401, "a key opens its own show only");
    let wrong = raw(
        srv.addr,
        "GET",
        &format!("/shows/{id}/report?key=trk_nope"),
        &[],
        &[],
    )
    .await;
    assert_eq!(wrong.status, 401);
    Api::new(srv.addr)
        .post_empty("/reports/NOSUCH/link")
        .await
        .err(401, "unauthorized");
    op.post_empty("/reports/NOSUCH/link")
        .await
        .err(404, "not_found");
    op.post_empty("/reports/%3Cscript%3E/link")
        .await
        .err(404, "not_found");

    // Both operations are in the OpenAPI document.
    let doc = Api::new(srv.addr).get("/openapi.json").await.ok(200);
    for path in [
        "/api/v1/shows/{id}/report",
        "/api/v1/shows/{id}/series",
        "/api/v1/reports/{code}/link",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    srv.shutdown().await.unwrap();
}

trait HtmlRes {
    fn ok_html(&self) -> String;
}

impl HtmlRes for Res {
    fn ok_html(&self) -> String {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// Chromium's console messages of a session (chromedriver's log endpoint).
async fn console(driver_port: u16, session: &str) -> Vec<Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = hyper::Request::post(format!(
        "http://127.0.0.1:{driver_port}/session/{session}/se/log"
    ))
    .header("content-type", "application/json")
    .body(http_body_util::Full::new(bytes::Bytes::from_static(
        br#"{"type":"browser"}"#,
    )))
    .unwrap();
    let res = client.request(req).await.expect("chromedriver answers");
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    v["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_renders_in_chromium_and_prints_to_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, ended, _running) = server_with_shows(dir.path()).await;
    let op = Api::new(srv.addr).with(PERFORMER_TOKEN);
    let link = op
        .post_empty(&format!("/reports/{}/link", ended.show.code))
        .await
        .ok(201);
    let driver = chromedriver().await;
    let b = browser(&driver, &dir.path().join("profile"), 1100, 900).await;
    b.goto(&format!(
        "http://{}{}",
        srv.addr,
        link["url"].as_str().unwrap()
    ))
    .await
    .unwrap();
    b.find(Locator::Css("#summary")).await.expect("the summary");
    let n = b
        .execute(
            "return [document.querySelectorAll('figure svg').length,\
             performance.getEntriesByType('resource').map((e) => e.name),\
             document.querySelector('figure svg').getBoundingClientRect().width];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(n[0], 13, "every chart drawn: {n}");
    assert_eq!(n[1], json!([]), "nothing loaded from anywhere: {n}");
    assert!(n[2].as_f64().unwrap() > 500.0, "charts are laid out: {n}");
    let session = b.session_id().await.unwrap().unwrap();
    let logs = console(driver.port, &session).await;
    let bad: Vec<_> = logs
        .iter()
        .filter(|l| l["level"] == "SEVERE" || l["level"] == "WARNING")
        .collect();
    assert!(bad.is_empty(), "console: {bad:?}");
    let pdf = b
        .print(fantoccini::wd::PrintConfiguration::default())
        .await
        .expect("printed");
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    assert!(pdf.len() > 10_000, "{} bytes", pdf.len());
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_the_last_minutes_and_opens_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let srv = common::start(dir.path()).await;
    let base = format!("http://{}", srv.addr);
    let driver = chromedriver().await;
    let perf = browser(&driver, &dir.path().join("profile-p"), 1200, 900).await;
    perf.goto(&format!("{base}/perform#token={}", common::TOKEN))
        .await
        .unwrap();
    common::browser::wait_text(&perf, "#conn", "live").await;
    let display = browser(&driver, &dir.path().join("profile-d"), 1280, 900).await;
    display.goto(&format!("{base}/display")).await.unwrap();
    common::browser::wait_text(&display, "#conn", "live").await;
    // One sample a second: wait for three on both pages.
    let points = "const f = document.querySelector('.trajectory[data-param=intensity]');\
                  return f ? [Number(f.dataset.points),\
                  f.querySelector('polyline.value').getAttribute('points').split(' ').filter(Boolean).length] : [0, 0];";
    for page in [&perf, &display] {
        let mut got = Value::Null;
        for _ in 0..100 {
            got = page.execute(points, vec![]).await.unwrap();
            if got[0].as_u64().unwrap_or(0) >= 3 && got[1].as_u64().unwrap_or(0) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(got[0].as_u64().unwrap_or(0) >= 3, "samples kept: {got}");
        assert_eq!(got[0], got[1], "one point per sample");
    }
    // A lock shows as a shaded period.
    let mut perf_ws = common::Client::performer(srv.addr).await;
    perf_ws
        .send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": 0.8, "seq": 1}))
        .await;
    let mut shaded = Value::Null;
    for _ in 0..100 {
        shaded = perf
            .execute(
                "return document.querySelectorAll('.trajectory[data-param=intensity] rect.override').length;",
                vec![],
            )
            .await
            .unwrap();
        if shaded.as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shaded, 1, "the lock is shaded");

    // The live hub records the show's health with its snapshots: a phone joins and moves,
    // and the report of the running show counts it.
    let (mut phone, _) = common::Client::audience(srv.addr).await;
    phone
        .send(json!({"type": "input", "param": "intensity", "value": 0.25}))
        .await;
    let op = Api::new(srv.addr).with(common::TOKEN);
    let link = op
        .post_empty(&format!("/reports/{}/link", srv.show_code))
        .await
        .ok(201);
    let show_id: i64 = link["url"].as_str().unwrap()["/shows/".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut report = Value::Null;
    for _ in 0..100 {
        report = op
            .get(&format!("/shows/{show_id}/report?format=json"))
            .await
            .ok(200);
        let moved = report["participation"]["moving"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_f64().unwrap_or(0.0) >= 1.0);
        if moved && report["summary"]["inputs"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["running"], true);
    assert_eq!(report["health"]["recorded"], true, "{}", report["health"]);
    assert!(
        report["summary"]["inputs"].as_u64().unwrap() >= 1,
        "{}",
        report["summary"]
    );
    assert!(report["summary"]["peak_audience"].as_u64().unwrap() >= 1);
    assert_eq!(report["summary"]["interventions_by_action"]["set"], 1);
    assert!(
        !report["audio"].as_array().unwrap().is_empty(),
        "the engine's level is recorded"
    );
    drop(phone);

    // The Report button opens the report in a new tab.
    let before = perf.windows().await.unwrap();
    perf.find(Locator::Css("#report"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut tab = None;
    for _ in 0..100 {
        let now = perf.windows().await.unwrap();
        if let Some(w) = now.into_iter().find(|w| !before.contains(w)) {
            tab = Some(w);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    perf.switch_to_window(tab.expect("a new tab"))
        .await
        .unwrap();
    let mut url = String::new();
    for _ in 0..100 {
        url = perf.current_url().await.unwrap().to_string();
        if url.contains("/report") && perf.find(Locator::Css("#summary")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(url.contains(&format!("{base}/shows/")), "{url}");
    perf.find(Locator::Css("#summary"))
        .await
        .expect("the report");
    perf.close().await.unwrap();
    display.close().await.unwrap();
    srv.shutdown().await.unwrap();
}
