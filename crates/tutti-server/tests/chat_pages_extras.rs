//! The live-show extras on the pages in headless Chromium (issue 12, item 3), against a real
//! server and store: phones ask questions and upvote on the audience page (the list reorders
//! by votes on every phone), crew on `/chat` approve a message for the wall and it appears on
//! `/display`, crew announce and the banner appears on every phone (whichever tab is open).
//! Every wait polls the page for a condition (with a guard against a hang), never a fixed sleep.

#[path = "api_support/mod.rs"]
mod api_support;
#[path = "common/browser.rs"]
#[allow(dead_code)]
mod browser;

use api_support::*;
use browser::until;
use fantoccini::Client as Browser;
use serde_json::{json, Value};

/// Clicks the element `css` finds (found and clicked in one script: lists are redrawn live).
async fn click(b: &Browser, css: &str) {
    let clicked = b
        .execute(
            "const el = document.querySelector(arguments[0]); if (el) el.click(); return !!el;",
            vec![json!(css)],
        )
        .await
        .unwrap();
    assert_eq!(clicked, json!(true), "{css}");
}

/// The questions a page lists, in order: (message id, votes).
async fn questions(b: &Browser) -> Value {
    b.execute(
        "return [...document.querySelectorAll('ol.questions > li')]\
           .map((li) => [Number(li.dataset.question), Number(li.querySelector('.votes').textContent)]);",
        vec![],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_upvote_questions_crew_approve_for_the_display_and_announce_to_every_phone() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.user("olga", "performer").await;
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    owner.show_to(id_of(&show), "live").await;
    let code = show["code"].as_str().unwrap().to_owned();
    let driver = browser::chromedriver().await;

    // Two phones, each named in the chat tab.
    let mut phones = Vec::new();
    for (i, name) in ["Ada", "Bo"].iter().enumerate() {
        let profile = app.dir.path().join(format!("phone-{i}"));
        let b = browser::browser(&driver, &profile, 390, 800).await;
        b.goto(&format!("http://{}/?show={code}", app.addr))
            .await
            .unwrap();
        until(
            &b,
            "joined",
            "document.getElementById('conn').dataset.state === 'live'",
        )
        .await;
        click(&b, "#tab-chat").await;
        until(
            &b,
            "asked for a name",
            "!document.getElementById('chat-name').hidden",
        )
        .await;
        b.find(fantoccini::Locator::Css("#chat-name-input"))
            .await
            .unwrap()
            .send_keys(&format!("{name}\u{E007}"))
            .await
            .unwrap();
        until(
            &b,
            "the extras shown",
            "window.tuttiAudienceChat.chat.me > 0 && !document.querySelector('.show-extras').hidden",
        )
        .await;
        phones.push(b);
    }
    let room = until(
        &phones[0],
        "the room",
        "window.tuttiAudienceChat.extras.roomId",
    )
    .await;

    // Ada asks two questions with the keyboard.
    for q in ["Which synth is that?", "Will there be an encore?"] {
        phones[0]
            .find(fantoccini::Locator::Css("#ask-input"))
            .await
            .unwrap()
            .send_keys(&format!("{q}\u{E007}"))
            .await
            .unwrap();
    }
    for b in &phones {
        until(
            b,
            "two questions",
            "document.querySelectorAll('ol.questions > li').length === 2",
        )
        .await;
    }
    let before = questions(&phones[1]).await;
    let (q1, q2) = (
        before[0][0].as_i64().unwrap(),
        before[1][0].as_i64().unwrap(),
    );
    assert_eq!(before, json!([[q1, 0], [q2, 0]]));

    // Bo upvotes the second: it moves to the top on both phones, pressed on Bo's.
    click(&phones[1], &format!("[data-vote=\"{q2}\"]")).await;
    for b in &phones {
        until(
            b,
            "reordered by votes",
            &format!("document.querySelector('ol.questions > li')?.dataset.question === '{q2}'"),
        )
        .await;
        assert_eq!(questions(b).await, json!([[q2, 1], [q1, 0]]));
    }
    until(
        &phones[1],
        "pressed",
        &format!("document.querySelector('[data-vote=\"{q2}\"]').getAttribute('aria-pressed') === 'true'"),
    )
    .await;

    // The big screen, and crew on /chat.
    let display = browser::browser(&driver, &app.dir.path().join("display"), 1280, 800).await;
    display
        .goto(&format!("http://{}/display?show={code}", app.addr))
        .await
        .unwrap();
    until(
        &display,
        "the display follows the wall",
        "document.getElementById('conn').dataset.state === 'live'",
    )
    .await;
    let crew = browser::browser(&driver, &app.dir.path().join("crew"), 1100, 800).await;
    crew.goto(&format!("http://{}/chat", app.addr))
        .await
        .unwrap();
    until(
        &crew,
        "the sign-in form",
        "!document.getElementById('login').hidden",
    )
    .await;
    crew.execute(
        "const f = document.getElementById('login');\
         f.username.value = 'olga'; f.password.value = 'olga-password'; f.requestSubmit();",
        vec![],
    )
    .await
    .unwrap();
    until(
        &crew,
        "the show's room listed",
        &format!("document.querySelector('#rooms button[data-room=\"{room}\"]')"),
    )
    .await;
    click(&crew, &format!("#rooms button[data-room=\"{room}\"]")).await;
    until(
        &crew,
        "crew controls for the question",
        &format!("document.querySelector('[data-approve=\"{q2}\"]')"),
    )
    .await;
    click(&crew, &format!("[data-approve=\"{q2}\"]")).await;
    let on_wall = until(
        &display,
        "the approved message on the wall",
        &format!(
            "document.querySelector('#wall [data-wall-message=\"{q2}\"] .wall-body')?.textContent"
        ),
    )
    .await;
    assert_eq!(on_wall, json!("Will there be an encore?"));
    let wall_items = display
        .execute(
            "return document.querySelectorAll('#wall li').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wall_items, json!(1), "only what crew approved");

    // An announcement: the banner on every phone, Ada's on the Play tab.
    click(&phones[0], "#tab-play").await;
    crew.find(fantoccini::Locator::Css("#announce-input"))
        .await
        .unwrap()
        .send_keys("Intermission: <b>10</b> minutes\u{E007}")
        .await
        .unwrap();
    for b in &phones {
        let text = until(
            b,
            "the announcement banner",
            "!document.getElementById('announcement').hidden && document.getElementById('announcement').textContent",
        )
        .await;
        assert_eq!(text, json!("Announcement: Intermission: <b>10</b> minutes"));
        let live = b
            .execute(
                "const a = document.getElementById('announcement');\
                 return [a.getAttribute('role'), a.getAttribute('aria-live'), a.querySelectorAll('b').length];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            live,
            json!(["status", "assertive", 0]),
            "announced, and inert"
        );
    }
    for b in phones.iter().chain([&display, &crew]) {
        browser::assert_no_csp_violations(b).await;
    }
    for b in phones.into_iter().chain([display, crew]) {
        b.close().await.unwrap();
    }
    drop(driver);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_opened_late_shows_the_rooms_older_pins_and_announcement() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.user("olga", "performer").await;
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    let show_id = id_of(&show);
    owner.show_to(show_id, "live").await;
    let code = show["code"].as_str().unwrap().to_owned();
    let rooms = owner.get("/chat/rooms").await.ok(200);
    let room = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["show_id"] == json!(show_id))
        .and_then(|r| r["id"].as_i64())
        .expect("the show's room");
    // Early: an announcement and a pinned question; then more than 200 events of talk.
    owner
        .post(
            &format!("/chat/rooms/{room}/announcements"),
            json!({"client_message_id": "a1", "text": "Intermission: 10 minutes"}),
        )
        .await
        .ok(201);
    let q = id_of(
        &owner
            .post(
                &format!("/chat/rooms/{room}/questions"),
                json!({"client_message_id": "q1", "text": "Which synth is that?"}),
            )
            .await
            .ok(201),
    );
    owner
        .req("PUT", &format!("/chat/messages/{q}/pin"), None, &[])
        .await
        .ok(200);
    for i in 0..205 {
        owner
            .post(
                &format!("/chat/rooms/{room}/messages"),
                json!({"client_message_id": format!("f{i}"), "text": format!("filler {i}")}),
            )
            .await
            .ok(201);
    }
    let driver = browser::chromedriver().await;

    // A phone opening the audience page (no name chosen: it follows the room all the same).
    let phone = browser::browser(&driver, &app.dir.path().join("phone"), 390, 800).await;
    phone
        .goto(&format!("http://{}/?show={code}", app.addr))
        .await
        .unwrap();
    let banner = until(
        &phone,
        "the announcement banner",
        "!document.getElementById('announcement').hidden && document.getElementById('announcement').textContent",
    )
    .await;
    assert_eq!(banner, json!("Announcement: Intermission: 10 minutes"));
    let pinned = until(
        &phone,
        "the pinned question",
        &format!("document.querySelector('[data-pinned=\"{q}\"]')?.textContent"),
    )
    .await;
    assert!(
        pinned.as_str().unwrap().contains("Which synth is that?"),
        "{pinned}"
    );
    // It is not put into the room's list among the latest messages.
    let listed = phone
        .execute(
            &format!("return !!document.querySelector('#chat-room [data-message=\"{q}\"]');"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(listed, json!(false));

    // Crew's /chat page: the pin among its show controls.
    let crew = browser::browser(&driver, &app.dir.path().join("crew"), 1100, 800).await;
    crew.goto(&format!("http://{}/chat", app.addr))
        .await
        .unwrap();
    until(
        &crew,
        "the sign-in form",
        "!document.getElementById('login').hidden",
    )
    .await;
    crew.execute(
        "const f = document.getElementById('login');\
         f.username.value = 'olga'; f.password.value = 'olga-password'; f.requestSubmit();",
        vec![],
    )
    .await
    .unwrap();
    until(
        &crew,
        "the show's room listed",
        &format!("document.querySelector('#rooms button[data-room=\"{room}\"]')"),
    )
    .await;
    click(&crew, &format!("#rooms button[data-room=\"{room}\"]")).await;
    until(
        &crew,
        "the pinned question",
        &format!("document.querySelector('.pins [data-pinned=\"{q}\"]')"),
    )
    .await;
    until(
        &crew,
        "the announcement banner",
        "!document.querySelector('#room #announcement')?.hidden",
    )
    .await;
    for b in [&phone, &crew] {
        browser::assert_no_csp_violations(b).await;
    }
    for b in [phone, crew] {
        b.close().await.unwrap();
    }
    drop(driver);
    app.shutdown().await;
}
