//! Phones as instruments (issue 15): a performer's `cue` reaches every phone stamped on the
//! show clock `lead_ms` ahead; bad cues get their codes and send nothing; late cues reported
//! by phones are counted. In Chromium: the audience page schedules a cue on its
//! AudioContext from its synced clock, drops a late one and reports it, and its voices
//! rendered offline start where the cues say.

mod common;

use std::time::Instant;

use common::browser;
use common::*;
use serde_json::{json, Value};

async fn stats_until(perf: &mut Client, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..15 {
        let s = perf.recv_type("stats").await;
        if pred(&s) {
            return s;
        }
    }
    panic!("no stats frame matched");
}

/// The show clock, read through a sync exchange: (t1, t2).
async fn show_clock(c: &mut Client, id: u64) -> (f64, f64) {
    c.send(json!({"type": "sync", "id": id, "t0": 0.0})).await;
    let r = c.recv_type("sync").await;
    (r["t1"].as_f64().unwrap(), r["t2"].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cue_reaches_every_phone_on_the_show_clock() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut a, w) = Client::audience(srv.addr).await;
    assert_eq!(w["phone"]["lead_ms"], 150, "{w}");
    let (mut b, _) = Client::audience(srv.addr).await;
    let mut perf = Client::performer(srv.addr).await;

    // The show clock read through the performer's connection (phones' frames stay unread).
    let (_, before) = show_clock(&mut perf, 1).await;
    perf.send(json!({"type": "cue", "voice": "chime", "seq": 1}))
        .await;
    let ack = perf.recv_type("ack").await;
    assert_eq!(ack["seq"], 1);
    let (after, _) = show_clock(&mut perf, 2).await;
    let cue_a = a.recv_type("cue").await;
    let cue_b = b.recv_type("cue").await;
    assert_eq!(cue_a, cue_b, "every phone gets the same cue");
    assert_eq!(
        (&cue_a["id"], &cue_a["voice"]),
        (&json!(1), &json!("chime"))
    );
    // Stamped when the server took it, 150 ms ahead: between the two clock readings.
    let at = cue_a["at"].as_f64().unwrap() - 150.0;
    assert!(before <= at && at <= after, "{before} ≤ {at} ≤ {after}");

    // A lead of its own.
    perf.send(json!({"type": "cue", "voice": "pulse", "lead_ms": 2000}))
        .await;
    let (t1, _) = show_clock(&mut perf, 3).await;
    let c = b.recv_type("cue").await;
    assert_eq!((&c["id"], &c["voice"]), (&json!(2), &json!("pulse")));
    assert!(c["at"].as_f64().unwrap() - 2000.0 <= t1, "{c}");
    let s = stats_until(&mut perf, |s| s["cues"]["delivered"] == 4).await;
    assert_eq!(s["cues"]["sent"], 2, "{s}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_osc_button_cues_the_phones() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let osc = srv.osc_listen.expect("osc input enabled");
    let (mut phone, _) = Client::audience(srv.addr).await;
    let mut perf = Client::performer(srv.addr).await;
    let send = |addr: &str, v: f32| {
        let bytes = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
            addr: addr.into(),
            args: vec![rosc::OscType::Float(v)],
        }))
        .unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(&bytes, osc).unwrap();
    };
    send("/tutti/cue/gong", 1.0); // no such voice: refused, counted
    send("/tutti/cue/chime", 0.0); // a button's release: nothing
    send("/tutti/cue/chime", 1.0);
    let c = phone.recv_type("cue").await;
    assert_eq!((&c["id"], &c["voice"]), (&json!(1), &json!("chime")), "{c}");
    let s = stats_until(&mut perf, |s| s["errors"]["unknown_voice"] == 1).await;
    assert_eq!(s["cues"]["sent"], 1, "{s}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cues_get_their_codes_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut phone, _) = Client::audience(srv.addr).await;
    let mut perf = Client::performer(srv.addr).await;
    phone
        .send(json!({"type": "cue", "voice": "chime", "seq": 4}))
        .await;
    let e = phone.error().await;
    assert_eq!((&e["code"], &e["seq"]), (&json!("forbidden"), &json!(4)));
    for (frame, code) in [
        (
            json!({"type": "cue", "voice": "gong", "seq": 5}),
            "unknown_voice",
        ),
        (
            json!({"type": "cue", "voice": "chime", "lead_ms": 20000}),
            "out_of_range",
        ),
        (json!({"type": "cue", "voice": ""}), "bad_frame"),
        (
            json!({"type": "cue", "voice": "chime", "lead_ms": -1}),
            "bad_frame",
        ),
        (json!({"type": "cue"}), "bad_frame"),
    ] {
        perf.send(frame.clone()).await;
        let e = perf.error().await;
        assert_eq!(e["code"], code, "{frame}: {e}");
    }
    let s = perf.recv_type("stats").await;
    assert_eq!(s["cues"]["sent"], 0, "nothing was cued: {s}");

    // A flood from a performer token: ten at once, the rest refused.
    for i in 0..30 {
        perf.send(json!({"type": "cue", "voice": "pulse", "seq": 100 + i}))
            .await;
    }
    perf.send(json!({"type": "ping", "id": 1})).await;
    let (mut acked, mut limited) = (0, 0);
    loop {
        let f = perf.recv().await;
        match f["type"].as_str() {
            Some("ack") => acked += 1,
            Some("error") => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                limited += 1;
            }
            Some("pong") => break,
            _ => {}
        }
    }
    assert!((10..30).contains(&acked), "{acked} cues taken");
    assert!(limited >= 1);
    // The phone got exactly the cues taken, in order.
    let mut ids = Vec::new();
    while ids.len() < acked {
        ids.push(phone.recv_type("cue").await["id"].as_u64().unwrap());
    }
    assert_eq!(ids, (1..=acked as u64).collect::<Vec<_>>());

    // Late cues as phones report them: a count since the connection joined.
    for n in [3, 5, 2] {
        phone
            .send(json!({"type": "sync_report", "error_ms": 1.0, "cues_late": n}))
            .await;
    }
    stats_until(&mut perf, |s| s["cues"]["late"] == 5).await;

    // Phones ready: counted once per connection while its sound is on, until it leaves.
    for on in [true, true] {
        phone
            .send(json!({"type": "sync_report", "error_ms": 1.0, "sound_on": on}))
            .await;
    }
    stats_until(&mut perf, |s| s["cues"]["phones_ready"] == 1).await;
    phone
        .send(json!({"type": "sync_report", "error_ms": 1.0, "sound_on": false}))
        .await;
    stats_until(&mut perf, |s| s["cues"]["phones_ready"] == 0).await;
    phone
        .send(json!({"type": "sync_report", "error_ms": 1.0, "sound_on": true}))
        .await;
    stats_until(&mut perf, |s| s["cues"]["phones_ready"] == 1).await;
    drop(phone);
    stats_until(&mut perf, |s| s["cues"]["phones_ready"] == 0).await;
    srv.shutdown().await.unwrap();
}

/// Taps the audience page's "sound on" and waits until the page says it is on.
async fn sound_on(b: &fantoccini::Client) {
    b.find(fantoccini::Locator::Css("#sound-on"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser::wait_text(b, "#sound-state", "sound on").await;
}

/// Waits until the audience page says its clock is synced.
async fn synced(b: &fantoccini::Client) {
    page_value(
        b,
        "return document.getElementById('sync').dataset.state === 'synced' || null;",
    )
    .await;
}

/// Polls `script` in the page until it returns something other than null.
async fn page_value(b: &fantoccini::Client, script: &str) -> Value {
    for _ in 0..150 {
        let v = b.execute(script, vec![]).await.unwrap();
        if !v.is_null() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page never gave {script}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_plays_cues_on_time_and_drops_late_ones() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let b = browser::browser(&driver, profile.path(), 400, 800).await;
    b.goto(&format!("http://{}/", srv.addr)).await.unwrap();
    synced(&b).await;
    sound_on(&b).await;

    let mut perf = Client::performer(srv.addr).await;
    // The phone's sound is on: the performers see one phone ready.
    stats_until(&mut perf, |s| s["cues"]["phones_ready"] == 1).await;
    let started = Instant::now();
    perf.send(json!({"type": "cue", "voice": "chime", "lead_ms": 400, "seq": 1}))
        .await;
    perf.recv_type("ack").await;
    let e = page_value(&b, "return globalThis.tuttiCues[0] || null;").await;
    assert_eq!(e["state"], "scheduled", "{e}");
    // Scheduled for 400 ms after the server took it: after the page got it, and no later
    // than 400 ms after that (the page's sync error aside, which loopback keeps tiny).
    let ahead = e["localMs"].as_f64().unwrap() - e["received"].as_f64().unwrap();
    let took = started.elapsed().as_secs_f64() * 1000.0;
    assert!(0.0 < ahead && ahead <= 400.0 + 5.0, "{ahead} ms ahead: {e}");
    assert!(
        ahead >= 400.0 - took - 5.0,
        "{ahead} ms ahead after {took} ms: {e}"
    );

    // No lead: it arrives after its time, is dropped, and the performers hear of it.
    perf.send(json!({"type": "cue", "voice": "pulse", "lead_ms": 0}))
        .await;
    let e = page_value(&b, "return globalThis.tuttiCues[1] || null;").await;
    assert_eq!(e["state"], "late", "{e}");
    stats_until(&mut perf, |s| s["cues"]["late"] == 1).await;

    // The performer page cues with a button per voice (the piece's lead), and shows the
    // phones' sync and late cues.
    let profile2 = tempfile::tempdir().unwrap();
    let p = browser::browser(&driver, profile2.path(), 1200, 900).await;
    p.goto(&format!("http://{}/perform#token={TOKEN}", srv.addr))
        .await
        .unwrap();
    let button = page_value(
        &p,
        "return document.querySelector('#cues button[data-voice=pulse]') ? true : null;",
    )
    .await;
    assert_eq!(button, true);
    p.find(fantoccini::Locator::Css("#cues button[data-voice=pulse]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let e = page_value(&b, "return globalThis.tuttiCues[2] || null;").await;
    assert_eq!(
        (&e["voice"], &e["state"]),
        (&json!("pulse"), &json!("scheduled")),
        "{e}"
    );
    // A section (a zone of the seat map) as a wave from the stage: the page, in no zone,
    // leaves it to the others.
    p.execute(
        "const s = document.getElementById('cue-to'); s.value = 'front'; \
         document.getElementById('cue-wave').checked = true;",
        vec![],
    )
    .await
    .unwrap();
    p.find(fantoccini::Locator::Css("#cues button[data-voice=chime]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let e = page_value(&b, "return globalThis.tuttiCues[3] || null;").await;
    assert_eq!(
        (&e["voice"], &e["state"]),
        (&json!("chime"), &json!("other zones")),
        "{e}"
    );
    let logged = page_value(
        &p,
        "const t = document.getElementById('log').textContent; \
         return t.includes('cue chime to front (wave)') ? t : null;",
    )
    .await;
    assert!(logged.is_string());
    let text = page_value(
        &p,
        "const t = document.getElementById('phone-stats').textContent; \
         return t.includes('late: 1') && t.includes('reporting: 1') ? t : null;",
    )
    .await;
    assert!(text.as_str().unwrap().contains("within 1 ms"), "{text}");
    assert!(text.as_str().unwrap().contains("phones ready: 1"), "{text}");
    p.close().await.unwrap();

    // The voices rendered offline, through the same code: each cue's sound starts at its
    // time, to the sample.
    let onsets = b
        .execute_async(
            r#"const done = arguments[0];
               import('/web/phone-audio.js').then(async (m) => {
                 const voices = [
                   {name: 'a', wave: 'sine', freq: 440, gain: 0.5, attack_ms: 2, hold_ms: 0, release_ms: 50},
                   {name: 'n', wave: 'noise', freq: 440, gain: 0.5, attack_ms: 1, hold_ms: 10, release_ms: 20},
                 ];
                 const cues = [{voice: 'a', at_s: 0.1}, {voice: 'n', at_s: 0.35}, {voice: 'a', at_s: 0.6}];
                 const buf = await m.renderOffline(voices, cues, 0.8);
                 const x = buf.getChannelData(0);
                 const out = [];
                 for (const c of cues) {
                   const from = Math.round((c.at_s - 0.05) * buf.sampleRate);
                   let i = from;
                   while (i < x.length && Math.abs(x[i]) < 1e-4) i += 1;
                   out.push(i);
                 }
                 done(out);
               }, (e) => done(String(e)));"#,
            vec![],
        )
        .await
        .unwrap();
    let got: Vec<i64> =
        serde_json::from_value(onsets.clone()).unwrap_or_else(|_| panic!("{onsets}"));
    for (i, want_s) in [0.1, 0.35, 0.6].iter().enumerate() {
        let want = (want_s * 48_000.0) as i64;
        assert!(
            (got[i] - want).abs() <= 48,
            "cue {i}: sound from sample {}, the cue says {want}",
            got[i]
        );
    }
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positional_cues_are_checked_against_the_hall_and_passed_to_the_phones() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut phone, w) = Client::audience(srv.addr).await;
    assert_eq!(w["phone"]["hall"], json!([24.0, 30.0]), "{w}");
    let mut perf = Client::performer(srv.addr).await;
    let cue = json!({"type": "cue", "voice": "chime", "seq": 1, "zones": ["front", "back"],
        "sweep": {"x": 12.0, "y": 0.0, "speed": 20.0}, "source": {"x": 6.0, "y": 25.0, "radius": 10.0}});
    perf.send(cue).await;
    perf.recv_type("ack").await;
    let c = phone.recv_type("cue").await;
    assert_eq!(c["zones"], json!(["front", "back"]), "{c}");
    assert_eq!(
        c["sweep"],
        json!({"x": 12.0, "y": 0.0, "speed": 20.0}),
        "{c}"
    );
    assert_eq!(
        c["source"],
        json!({"x": 6.0, "y": 25.0, "radius": 10.0}),
        "{c}"
    );
    for (frame, code) in [
        (
            json!({"type": "cue", "voice": "chime", "zones": ["balcony"]}),
            "unknown_zone",
        ),
        (
            json!({"type": "cue", "voice": "chime", "zones": []}),
            "bad_frame",
        ),
        (
            json!({"type": "cue", "voice": "chime", "sweep": {"x": 30.0, "y": 0.0, "speed": 20.0}}),
            "invalid_cue",
        ),
        (
            json!({"type": "cue", "voice": "chime", "sweep": {"x": 1.0, "y": 1.0, "speed": 0.0}}),
            "invalid_cue",
        ),
        (
            json!({"type": "cue", "voice": "chime", "source": {"x": 1.0, "y": -1.0, "radius": 5.0}}),
            "invalid_cue",
        ),
        (
            json!({"type": "cue", "voice": "chime", "source": {"x": 1.0, "y": 1.0, "radius": 1e5}}),
            "invalid_cue",
        ),
        (
            json!({"type": "cue", "voice": "chime", "source": {"x": 1.0, "y": 1.0}}),
            "bad_frame",
        ),
    ] {
        perf.send(frame.clone()).await;
        assert_eq!(perf.error().await["code"], code, "{frame}");
    }
    let s = perf.recv_type("stats").await;
    assert_eq!(s["cues"]["sent"], 1, "only the good cue went out: {s}");
    srv.shutdown().await.unwrap();

    // A piece without a hall takes no positional cue, and its welcome has no hall.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let piece = dir.path().join("piece.toml");
    let text = tutti_spec::DEMO_TOML.replace("hall = { width = 24.0, depth = 30.0 }\n", "");
    assert_ne!(text, tutti_spec::DEMO_TOML);
    std::fs::write(&piece, text).unwrap();
    cfg.piece = Some(piece);
    let srv = start_with(cfg).await;
    let mut perf = Client::performer(srv.addr).await;
    perf.send(
        json!({"type": "cue", "voice": "chime", "sweep": {"x": 1.0, "y": 1.0, "speed": 20.0}}),
    )
    .await;
    let e = perf.error().await;
    assert_eq!(e["code"], "invalid_cue", "{e}");
    assert!(e["message"].as_str().unwrap().contains("hall"), "{e}");
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_places_cues_by_its_zone_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let b = browser::browser(&driver, profile.path(), 400, 900).await;
    // The phone stands in the front zone, 3 m across and 4 m from the stage.
    b.goto(&format!("http://{}/?zone=front&x=3&y=4", srv.addr))
        .await
        .unwrap();
    synced(&b).await;
    let text = browser::text_of(&b, "#place-text").await.unwrap();
    assert_eq!(text, "place: 3.0 m across, 4.0 m from the stage");
    sound_on(&b).await;

    let mut perf = Client::performer(srv.addr).await;
    for cue in [
        // A wave from the middle of the stage edge at 20 m/s: 5 m away, 250 ms later.
        json!({"type": "cue", "voice": "chime", "lead_ms": 300, "sweep": {"x": 6.0, "y": 0.0, "speed": 20.0}}),
        // For the back only: not this phone.
        json!({"type": "cue", "voice": "chime", "zones": ["back"]}),
        // A source 5 m away with a 10 m radius: half the gain.
        json!({"type": "cue", "voice": "pulse", "lead_ms": 300, "source": {"x": 3.0, "y": 9.0, "radius": 10.0}}),
        // Out of reach.
        json!({"type": "cue", "voice": "pulse", "source": {"x": 20.0, "y": 28.0, "radius": 5.0}}),
    ] {
        perf.send(cue).await;
    }
    let log = page_value(
        &b,
        "return globalThis.tuttiCues.length >= 4 ? globalThis.tuttiCues : null;",
    )
    .await;
    let e = &log[0];
    assert_eq!(e["state"], "scheduled", "{e}");
    assert!((e["delayMs"].as_f64().unwrap() - 250.0).abs() < 1e-9, "{e}");
    // Played 250 ms after the cue's own time: 300 + 250 ms after the server took it.
    let ahead = e["localMs"].as_f64().unwrap() - e["received"].as_f64().unwrap();
    assert!(250.0 < ahead && ahead <= 550.0 + 5.0, "{ahead}: {e}");
    assert_eq!(log[1]["state"], "other zones", "{}", log[1]);
    assert_eq!(log[2]["state"], "scheduled", "{}", log[2]);
    assert!(
        (log[2]["gain"].as_f64().unwrap() - 0.5).abs() < 1e-9,
        "{}",
        log[2]
    );
    assert_eq!(log[3]["state"], "out of reach", "{}", log[3]);

    // Tapping the plan moves the phone: the bottom-right corner is the back right.
    let plan = b.find(fantoccini::Locator::Css("#plan")).await.unwrap();
    let (_, _, w, h) = plan.rectangle().await.unwrap();
    b.execute(
        "const r = document.getElementById('plan').getBoundingClientRect(); \
         document.getElementById('plan').dispatchEvent(new MouseEvent('click', \
           {clientX: r.left + r.width * 0.75, clientY: r.top + r.height * 0.5, bubbles: true}));",
        vec![],
    )
    .await
    .unwrap();
    assert!(w > 0.0 && h > 0.0);
    // (A click lands on a whole pixel: within a pixel's worth of metres.)
    let text = browser::text_of(&b, "#place-text").await.unwrap();
    let nums: Vec<f64> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    let px = 24.0 / w;
    assert!(
        nums.len() == 2 && (nums[0] - 18.0).abs() <= 2.0 * px && (nums[1] - 15.0).abs() <= 2.0 * px,
        "{text}"
    );
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

/// A drone (the demo's `hum`, following `intensity`): live, the page moves it towards the
/// collective value the states carry (a performer's lock at the top, then the bottom);
/// offline, through the same code, its level follows a step to 95 % within `smooth_ms` and
/// its pitch glides to `freq_to`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drones_follow_the_collective_value_smoothed_on_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (_phone, w) = Client::audience(srv.addr).await;
    let hum = &w["phone"]["drones"][0];
    assert_eq!(
        (&hum["name"], &hum["follow"]),
        (&json!("hum"), &json!("intensity")),
        "{w}"
    );

    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let b = browser::browser(&driver, profile.path(), 400, 800).await;
    b.goto(&format!("http://{}/", srv.addr)).await.unwrap();
    sound_on(&b).await;
    let mut perf = Client::performer(srv.addr).await;
    for (seq, value, gain, freq) in [(1, 1.0, 0.12, 165.0), (2, 0.0, 0.0, 110.0)] {
        perf.send(json!({"type": "override", "param": "intensity", "mode": "lock", "value": value, "seq": seq}))
            .await;
        perf.recv_type("ack").await;
        let script = format!(
            "const d = globalThis.tuttiDrones.hum; \
             return d && Math.abs(d.gain - {gain}) < 1e-9 && Math.abs(d.freq - {freq}) < 1e-9 ? d : null;"
        );
        page_value(&b, &script).await;
    }

    // Offline: silent at the bottom, a step to the top at 0.5 s; smooth_ms 400.
    let got = b
        .execute_async(
            r#"const done = arguments[0];
               import('/web/phone-audio.js').then(async (m) => {
                 const drone = {name: 'hum', follow: 'x', wave: 'sine', freq: 110, freq_to: 220, gain: 0.5, smooth_ms: 400};
                 const param = {min: -1, max: 1};
                 const buf = await m.renderDrone(drone, param, [{t: 0, value: -1}, {t: 0.5, value: 1}], 2.0);
                 const x = buf.getChannelData(0);
                 const sr = buf.sampleRate;
                 const rms = (a, b) => { let s = 0; for (let i = Math.round(a * sr); i < Math.round(b * sr); i += 1) s += x[i] * x[i]; return Math.sqrt(s / (Math.round(b * sr) - Math.round(a * sr))); };
                 // Zero crossings upward over the last half second: the pitch reached.
                 let up = 0;
                 for (let i = Math.round(1.5 * sr); i < x.length; i += 1) if (x[i - 1] < 0 && x[i] >= 0) up += 1;
                 done({before: rms(0.1, 0.5), at95: rms(0.88, 0.92), end: rms(1.6, 2.0), hz: up * 2,
                       mid: m.droneTarget(drone, param, 0)});
               }, (e) => done(String(e)));"#,
            vec![],
        )
        .await
        .unwrap();
    let f = |k: &str| got[k].as_f64().unwrap_or_else(|| panic!("{got}"));
    let full = 0.5 / 2f64.sqrt(); // a sine at gain 0.5
    assert!(f("before") < 1e-4, "{got}");
    assert!((f("end") - full).abs() < 0.01 * full, "{got}");
    // 0.4 s after the step (the middle of the window at 0.88–0.92 s) it is at about 95 %.
    let at = f("at95") / full;
    assert!(
        (0.92..0.975).contains(&at),
        "at smooth_ms: {at} of the target, {got}"
    );
    assert!((f("hz") - 220.0).abs() <= 2.0, "{got}");
    let mid = (got["mid"]["gain"].as_f64(), got["mid"]["freq"].as_f64());
    assert_eq!(mid, (Some(0.25), Some(165.0)), "{got}");
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

/// The show clock's epoch on this machine's wall clock (Unix ms), from the fastest of 15
/// sync exchanges over plain loopback: (epoch, bound). A page's true show time at its
/// `performance.now()` = L is `timeOrigin + L − epoch`.
async fn show_epoch(c: &mut Client) -> (f64, f64) {
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            * 1000.0
    };
    let mut best = (f64::NAN, f64::INFINITY);
    for id in 0..15 {
        let a = unix_ms();
        c.send(json!({"type": "sync", "id": 1000 + id, "t0": 0.0}))
            .await;
        let r = c.recv_type("sync").await;
        let b = unix_ms();
        let (t1, t2) = (r["t1"].as_f64().unwrap(), r["t2"].as_f64().unwrap());
        let half = ((b - a) - (t2 - t1)) / 2.0;
        if half < best.1 {
            best = ((a + b) / 2.0 - (t1 + t2) / 2.0, half);
        }
    }
    best
}

/// Several pages at once, each behind its own emulated network (20 ± 10 ms each way, in
/// order) and each with its own clock (a page's `performance.now()` counts from its own
/// load, seconds apart): each estimates the show clock within the bound it claims, and
/// one cue is scheduled by every page at the same moment of the show clock, within those
/// bounds of each other. The truth is the show clock read over plain loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_behind_a_jittery_network_sync_and_schedule_together() {
    const PAGES: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let driver = browser::chromedriver().await;
    let mut relays = Vec::new();
    let mut pages = Vec::new();
    let mut profiles = Vec::new();
    for i in 0..PAGES {
        let relay = netdelay::delay_relay(srv.addr, 20.0, 10.0, 0x5eed + i as u64).await;
        let profile = tempfile::tempdir().unwrap();
        let b = browser::browser(&driver, profile.path(), 400, 800).await;
        b.goto(&format!("http://{}/", relay.addr)).await.unwrap();
        relays.push(relay);
        pages.push(b);
        profiles.push(profile);
        // Pages loaded apart have clocks apart.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    }
    for b in &pages {
        synced(b).await;
        sound_on(b).await;
    }
    // Three seconds after the last page joined (the issue's convergence time).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let mut perf = Client::performer(srv.addr).await;
    stats_until(&mut perf, |s| s["cues"]["phones_ready"] == PAGES as u64).await;
    let (epoch, truth_bound) = show_epoch(&mut perf).await;
    let read = r#"const done = arguments[0];
        import('/web/sync.js').then((m) => {
          const e = window.tuttiSync();
          const local = performance.now();
          done({ show: m.showTime(e, local), local, origin: performance.timeOrigin,
                 error: e.errorMs, bound: e.boundMs });
        }, (e) => done({ failed: String(e) }));"#;
    let mut origins = Vec::new();
    let mut bounds = Vec::new();
    for (i, b) in pages.iter().enumerate() {
        let v = b.execute_async(read, vec![]).await.unwrap();
        assert!(v["failed"].is_null(), "{v}");
        let origin = v["origin"].as_f64().unwrap();
        let truth = origin + v["local"].as_f64().unwrap() - epoch;
        let err = v["show"].as_f64().unwrap() - truth;
        let bound = v["bound"].as_f64().unwrap();
        println!(
            "page {i}: clock {:+.1} ms from the show's, estimate off by {err:+.3} ms (claims error {:.3}, bound {bound:.3}; truth within ±{truth_bound:.3})",
            origin - epoch,
            v["error"].as_f64().unwrap()
        );
        // Chromium coarsens timeOrigin to 0.1 ms; the truth has its own bound.
        assert!(
            err.abs() <= bound + truth_bound + 0.1,
            "page {i}: off by {err} ms, beyond its bound {bound}: {v}"
        );
        origins.push(origin);
        bounds.push(bound);
    }
    // The page clocks really are apart.
    assert!(
        origins.windows(2).all(|w| w[1] - w[0] > 500.0),
        "{origins:?}"
    );

    // One cue: every page schedules it at the same show time, within its bound.
    perf.send(json!({"type": "cue", "voice": "chime", "lead_ms": 400, "seq": 1}))
        .await;
    perf.recv_type("ack").await;
    let mut onsets = Vec::new();
    for (i, b) in pages.iter().enumerate() {
        let e = page_value(b, "return globalThis.tuttiCues[0] || null;").await;
        assert_eq!(e["state"], "scheduled", "page {i}: {e}");
        let at = e["at"].as_f64().unwrap();
        let onset = origins[i] + e["localMs"].as_f64().unwrap() - epoch;
        println!(
            "page {i}: scheduled {:+.3} ms from the cue's time",
            onset - at
        );
        assert!(
            (onset - at).abs() <= bounds[i] + truth_bound + 0.1,
            "page {i}: onset {onset} for a cue at {at}: {e}"
        );
        onsets.push(onset);
    }
    let spread = onsets.iter().cloned().fold(f64::MIN, f64::max)
        - onsets.iter().cloned().fold(f64::MAX, f64::min);
    println!("onset spread across {PAGES} pages: {spread:.3} ms");
    for b in pages {
        b.close().await.unwrap();
    }
    drop(relays);
    srv.shutdown().await.unwrap();
}

/// Acoustic calibration's round trip: a phone's `chirp` is answered with a time 400 ms
/// ahead and told to the performers; a performer's `calibrated` reaches that phone alone,
/// once. Bad calibrations get their codes and reach nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_chirp_is_timed_by_a_performer_and_its_calibration_reaches_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let (mut phone, w) = Client::audience(srv.addr).await;
    let (mut other, _) = Client::audience(srv.addr).await;
    let (mut third, _) = Client::audience(srv.addr).await;
    let mut perf = Client::performer(srv.addr).await;
    let mut perf2 = Client::performer(srv.addr).await;
    let (t1, _) = show_clock(&mut phone, 1).await;
    phone.send(json!({"type": "chirp"})).await;
    let c = phone.recv_type("chirp").await;
    let (_, t2) = show_clock(&mut phone, 2).await;
    assert_eq!(c["participant"], w["participant"], "{c}");
    let at = c["at"].as_f64().unwrap();
    assert!(
        at >= t1 + 400.0 && at <= t2 + 400.0,
        "{at} not 400 ms after the request ({t1}–{t2})"
    );
    // Every performer hears of it, with the same frame.
    assert_eq!(perf.recv_type("chirp").await, c);
    assert_eq!(perf2.recv_type("chirp").await, c);

    // A second request within 2 s is refused; the chirp is not repeated.
    phone.send(json!({"type": "chirp"})).await;
    assert_eq!(phone.error().await["code"], "rate_limited");

    // The answer goes to the phone alone, and is acknowledged.
    let id = c["id"].as_u64().unwrap();
    perf.send(json!({"type": "calibrated", "id": id, "offset_ms": 23.5, "seq": 7}))
        .await;
    let ack = perf.recv_type("ack").await;
    assert_eq!(ack["seq"], 7, "{ack}");
    let cal = phone.recv_type("calibration").await;
    assert_eq!(
        cal,
        json!({"type": "calibration", "id": id, "offset_ms": 23.5})
    );

    // Once only, and only for chirps that were played.
    for (frame, code) in [
        (
            json!({"type": "calibrated", "id": id, "offset_ms": 1.0, "seq": 8}),
            "unknown_chirp",
        ),
        (
            json!({"type": "calibrated", "id": 999, "offset_ms": 1.0}),
            "unknown_chirp",
        ),
        (
            json!({"type": "calibrated", "id": id, "offset_ms": 1000.5}),
            "out_of_range",
        ),
        (
            json!({"type": "calibrated", "id": id, "offset_ms": "late"}),
            "bad_frame",
        ),
        (json!({"type": "calibrated", "offset_ms": 3.0}), "bad_frame"),
        (json!({"type": "chirp"}), "forbidden"),
    ] {
        perf2.send(frame.clone()).await;
        let e = perf2.error().await;
        assert_eq!(e["code"], code, "{frame}: {e}");
    }
    perf2
        .send_text(r#"{"type": "calibrated", "id": 1, "offset_ms": NaN}"#)
        .await;
    assert_eq!(perf2.error().await["code"], "not_finite");
    // A phone cannot calibrate anyone.
    other
        .send(json!({"type": "calibrated", "id": id, "offset_ms": 2.0, "seq": 3}))
        .await;
    let e = other.error().await;
    assert_eq!((&e["code"], &e["seq"]), (&json!("forbidden"), &json!(3)));

    // Another phone's chirp: its answer goes to it, not to the first phone.
    other.send(json!({"type": "chirp"})).await;
    let c2 = other.recv_type("chirp").await;
    assert_ne!(c2["participant"], c["participant"]);
    assert_eq!(perf.recv_type("chirp").await, c2);
    perf.send(json!({"type": "calibrated", "id": c2["id"], "offset_ms": -4.0}))
        .await;
    let cal = other.recv_type("calibration").await;
    assert_eq!(cal["offset_ms"], -4.0);
    // Nothing else reached the phones: each got its own calibration only.
    for c in [&mut phone, &mut third] {
        c.send(json!({"type": "ping", "id": 5})).await;
        loop {
            let f = c.recv().await;
            assert_ne!(f["type"], "calibration", "{f}");
            if f["type"] == "pong" {
                break;
            }
        }
    }
    srv.shutdown().await.unwrap();
}

/// The page's side of calibration: Calibrate plays a chirp at the time the server gave,
/// a performer's answer is added to the latency the page corrects for (kept on the device),
/// and the next chirp is scheduled that much earlier. The matched filter finds a chirp in
/// noise to the sample and does not find one in noise alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_calibrates_its_output_from_a_performers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let b = browser::browser(&driver, profile.path(), 400, 800).await;
    b.goto(&format!("http://{}/", srv.addr)).await.unwrap();
    synced(&b).await;
    sound_on(&b).await;
    let mut perf = Client::performer(srv.addr).await;

    let calibrate = || async {
        b.find(fantoccini::Locator::Css("#sound-calibrate"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };
    calibrate().await;
    let c = perf.recv_type("chirp").await;
    let first = page_value(&b, "return globalThis.tuttiChirps[0] || null;").await;
    assert_eq!(
        (&first["id"], &first["at"]),
        (&c["id"], &c["at"]),
        "{first}"
    );
    assert_eq!(first["state"], "scheduled", "{first}");
    assert_eq!(
        b.execute("return globalThis.tuttiCalibration;", vec![])
            .await
            .unwrap(),
        json!(0)
    );

    perf.send(json!({"type": "calibrated", "id": c["id"], "offset_ms": 25.0, "seq": 1}))
        .await;
    perf.recv_type("ack").await;
    let cal = page_value(
        &b,
        "return globalThis.tuttiCalibration === 25 ? globalThis.tuttiCalibration : null;",
    )
    .await;
    assert_eq!(cal, json!(25));
    let text = browser::text_of(&b, "#sound-state").await.unwrap();
    assert!(text.starts_with("calibrated: heard +25.0 ms"), "{text}");
    let stored = b
        .execute(
            "return localStorage.getItem('tutti.calibration_ms');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(stored, json!("25"));

    // The next chirp (one every 2 s: tap until the server takes it) is scheduled with
    // 25 ms more latency, so it starts 25 ms earlier for the same show time.
    let second = loop {
        calibrate().await;
        let v = b
            .execute("return globalThis.tuttiChirps[1] || null;", vec![])
            .await
            .unwrap();
        if !v.is_null() {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(second["state"], "scheduled", "{second}");
    let more = second["latencyMs"].as_f64().unwrap() - first["latencyMs"].as_f64().unwrap();
    assert!((more - 25.0).abs() < 1e-6, "{more}: {first} then {second}");

    // The calibration stays with the device.
    b.refresh().await.unwrap();
    let cal = page_value(
        &b,
        "return typeof globalThis.tuttiCalibration === 'number' ? globalThis.tuttiCalibration : null;",
    )
    .await;
    assert_eq!(cal, json!(25));

    // The matched filter: a chirp at sample 20,000 in louder noise, and noise alone.
    let got = b
        .execute_async(
            r#"const done = arguments[0];
               import('/web/phone-audio.js').then(async (m) => {
                 const t = await m.chirpTemplate(48000);
                 const noise = (n, seed) => {
                   const x = new Float32Array(n);
                   for (let i = 0; i < n; i += 1) {
                     seed = (seed * 1664525 + 1013904223) >>> 0;
                     x[i] = (seed / 2 ** 31 - 1) * 0.3;
                   }
                   return x;
                 };
                 const x = noise(48000, 7);
                 for (let j = 0; j < t.length; j += 1) x[20000 + j] += 0.2 * t[j];
                 done({ hit: m.detectChirp(x, t), none: m.detectChirp(noise(48000, 9), t), n: t.length });
               }, (e) => done({ failed: String(e) }));"#,
            vec![],
        )
        .await
        .unwrap();
    assert!(got["failed"].is_null(), "{got}");
    assert_eq!(got["hit"]["index"], 20000, "{got}");
    assert!(got["hit"]["score"].as_f64().unwrap() > 0.3, "{got}");
    assert!(got["none"]["score"].as_f64().unwrap() < 0.3, "{got}");
    assert_eq!(got["n"], 2881, "60 ms at 48 kHz, and one more sample");
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

/// A chirp every second, as a 16-bit WAV for Chromium's fake microphone: the same sweep as
/// the page's (1 → 4 kHz over 60 ms, 2 ms fades), in faint noise.
fn chirps_wav(path: &std::path::Path, seconds: u32) {
    let sr = 48_000u32;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: sr,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let (f0, f1, len) = (1000.0f64, 4000.0f64, 0.06f64);
    let mut seed = 12345u32;
    for i in 0..sr * seconds {
        let t = (i % sr) as f64 / sr as f64 - 0.25;
        let mut x = 0.0;
        if (0.0..len).contains(&t) {
            let env = (t / 0.002).min((len - t) / 0.002).min(1.0);
            let phase = 2.0 * std::f64::consts::PI * (f0 * t + (f1 - f0) * t * t / (2.0 * len));
            x = 0.5 * env * phase.sin();
        }
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        x += (seed as f64 / 2f64.powi(31) - 1.0) * 0.01;
        w.write_sample((x * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// The performer page's ear through a real capture path: Chromium's fake microphone plays a
/// chirp every second; listening, the page finds them with a clear match, never closer than
/// a second, and one second apart to the sample on the context's clock (within 2 ms once
/// mapped to the page's clock) where the fake device did not pad a gap with silence (it may,
/// at its start and on a loaded machine). (Whether a phone's speaker is late needs a real room: no test machine has
/// one; this checks everything from the microphone's samples on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_performer_page_hears_chirps_through_the_microphone() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path()).await;
    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let wav = profile.path().join("chirps.wav");
    chirps_wav(&wav, 4);
    let p = browser::browser_with(
        &driver,
        profile.path(),
        1200,
        900,
        &[
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
            format!("--use-file-for-fake-audio-capture={}", wav.display()),
        ],
    )
    .await;
    p.goto(&format!("http://{}/perform#token={TOKEN}", srv.addr))
        .await
        .unwrap();
    page_value(
        &p,
        "return document.getElementById('calib-listen') ? true : null;",
    )
    .await;
    p.find(fantoccini::Locator::Css("#calib-listen"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser::wait_text(
        &p,
        "#calib-state",
        "listening: a phone held by this computer taps Calibrate",
    )
    .await;
    // Five and a half seconds of microphone kept.
    page_value(
        &p,
        "const e = globalThis.tuttiEar; \
         return e.blocks.length * 2048 >= 5.5 * e.ctx.sampleRate || null;",
    )
    .await;
    let hits = p
        .execute(
            r#"const ear = globalThis.tuttiEar;
               const sr = ear.ctx.sampleRate;
               const last = ear.blocks[ear.blocks.length - 1];
               const end = last.time + last.samples.length / sr;
               const hits = [];
               // The fake device may pad its first moments (a start-up underrun): from 1 s on.
               let a = ear.blocks[0].time + 1.0;
               while (a + 1.0 < end - 0.1 && hits.length < 4) {
                 const h = ear.find(a, a + 1.0);
                 if (!h) break;
                 hits.push({ time: h.time, local: h.localMs, score: h.score });
                 a = h.time + 0.5;
               }
               return { hits, sr };"#,
            vec![],
        )
        .await
        .unwrap();
    let list = hits["hits"].as_array().unwrap();
    assert!(list.len() >= 2, "{hits}");
    let sr = hits["sr"].as_f64().unwrap();
    // The fake device paces its file by a timer: on a loaded machine it may pad a gap with
    // silence, which delays what follows (never advances it). So no pair may be closer
    // than a second, and at least one pair must be a second apart to the sample.
    let mut exact = 0;
    for w in list.windows(2) {
        let dt = w[1]["time"].as_f64().unwrap() - w[0]["time"].as_f64().unwrap();
        assert!(
            dt >= 1.0 - 1.5 / sr,
            "{dt} s apart on the context's clock: {hits}"
        );
        if (dt - 1.0).abs() <= 1.5 / sr {
            exact += 1;
            let dl = w[1]["local"].as_f64().unwrap() - w[0]["local"].as_f64().unwrap();
            assert!(
                (dl - 1000.0).abs() <= 2.0,
                "{dl} ms apart on the page's clock: {hits}"
            );
        }
    }
    assert!(exact >= 1, "no two chirps a second apart: {hits}");
    for h in list {
        assert!(h["score"].as_f64().unwrap() > 0.5, "{hits}");
    }
    p.close().await.unwrap();
    srv.shutdown().await.unwrap();
}

/// A drone with a moving source (the demo's `hum`, placed by `width` across the hall and
/// `space` from the stage, radius 12 m): a phone at (6, 7.5) m plays it at full gain when
/// the collective values put the point on it, at half gain 6 m away, and not at all 12 m
/// away — the performer's locks standing in for the audience moving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drone_sounds_from_a_point_the_collective_values_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let piece = dir.path().join("piece.toml");
    let text = tutti_spec::DEMO_TOML.replace(
        "smooth_ms = 400.0",
        "smooth_ms = 400.0\nsource = { x = \"width\", y = \"space\", radius = 12.0 }",
    );
    assert_ne!(text, tutti_spec::DEMO_TOML);
    std::fs::write(&piece, text).unwrap();
    cfg.piece = Some(piece);
    let srv = start_with(cfg).await;
    let (_phone, w) = Client::audience(srv.addr).await;
    assert_eq!(
        w["phone"]["drones"][0]["source"],
        json!({"x": "width", "y": "space", "radius": 12.0}),
        "{w}"
    );

    let driver = browser::chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let b = browser::browser(&driver, profile.path(), 400, 800).await;
    b.goto(&format!("http://{}/?x=6&y=7.5", srv.addr))
        .await
        .unwrap();
    sound_on(&b).await;
    let mut perf = Client::performer(srv.addr).await;
    let mut seq = 0;
    let mut lock = |param: &'static str, value: f64| {
        seq += 1;
        json!({"type": "override", "param": param, "mode": "lock", "value": value, "seq": seq})
    };
    for f in [lock("intensity", 1.0), lock("space", 0.25)] {
        perf.send(f).await;
        perf.recv_type("ack").await;
    }
    // width 0.25 → x = 6 m: on the phone; 0.5 → 12 m: 6 m away; 0.75 → 18 m: 12 m away.
    for (width, gain) in [(0.25, 0.12), (0.5, 0.06), (0.75, 0.0)] {
        perf.send(lock("width", width)).await;
        perf.recv_type("ack").await;
        let script = format!(
            "const d = globalThis.tuttiDrones.hum; \
             return d && Math.abs(d.gain - {gain}) < 1e-9 ? d : null;"
        );
        page_value(&b, &script).await;
    }
    b.close().await.unwrap();
    srv.shutdown().await.unwrap();
}
