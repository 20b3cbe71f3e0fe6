//! The chat pages in headless Chromium (issue 12, item 10), against a real server and store:
//! two audience pages of a live show chat with each other through the chat tab (one
//! connection each); XSS payloads posted through REST render inert; the staff page `/chat`
//! signs in, shows unread markers, posts and finds the post by search; a page whose socket is
//! dropped catches up exactly (each message once, in order, edits and deletions applied);
//! `/chat` attaches files (thumbnails drawn from `blob:` URLs, names as text, the API's
//! refusals named) and the audience tab shows a file's name and size only; every `/play`
//! sound renders offline to something audible that ends, a live `/play` plays on the phone
//! (a caught-up one does not), and a reply from the phone carries `reply_to` and its quote;
//! `/chat` sets a room's slow mode, audience delay and filter and shows refusals and the
//! audit log to a moderator of the room, and shows nothing of it elsewhere.
//! Every wait polls the page for a condition (with a guard against a hang), never a fixed sleep.

#[path = "api_support/mod.rs"]
mod api_support;
#[path = "common/browser.rs"]
#[allow(dead_code)]
mod browser;

use std::time::Duration;

use api_support::*;
use browser::until;
use fantoccini::Client as Browser;
use serde_json::{json, Value};

async fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, vec![])
        .await
        .expect("the page runs scripts")
}

/// The texts of the messages a page shows (acknowledged ones), in order: (posted seq, text).
async fn shown(b: &Browser) -> Vec<(u64, String)> {
    let v = js(
        b,
        "return [...document.querySelectorAll('ol.messages > li.msg:not(.pending)')]\
           .map((li) => [Number(li.dataset.seq), li.querySelector('.msg-body').textContent.trim()]);",
    )
    .await;
    serde_json::from_value(v).unwrap()
}

/// A live show of a fresh ensemble of `owner`; (show id, join code, chat room id).
async fn live_show(owner: &Api) -> (i64, String, i64) {
    let eid = owner.ensemble("band").await;
    let pid = owner.published_piece(eid, "aria").await;
    let show = owner.show(pid, "performance").await;
    let id = id_of(&show);
    owner.show_to(id, "live").await;
    let code = show["code"].as_str().unwrap().to_owned();
    let rooms = owner.get("/chat/rooms").await.ok(200);
    let room = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["show_id"] == id)
        .map(id_of)
        .unwrap_or_else(|| panic!("no room of show {id}: {rooms}"));
    (id, code, room)
}

async fn post(api: &Api, room: i64, cid: &str, text: &str) -> Value {
    api.post(
        &format!("/chat/rooms/{room}/messages"),
        json!({"client_message_id": cid, "text": text}),
    )
    .await
    .ok(201)
}

/// Signs in on the `/chat` page as `name` (password `{name}-password`) and waits for the rooms.
async fn sign_in(b: &Browser, addr: std::net::SocketAddr, name: &str) {
    b.goto(&format!("http://{addr}/chat")).await.unwrap();
    until(
        b,
        "the sign-in form",
        "!document.getElementById('login').hidden",
    )
    .await;
    b.execute(
        "const f = document.getElementById('login');\
         f.username.value = arguments[0]; f.password.value = arguments[1]; f.requestSubmit();",
        vec![json!(name), json!(format!("{name}-password"))],
    )
    .await
    .unwrap();
    until(
        b,
        "signed in and connected",
        "document.getElementById('conn').dataset.state === 'live' && document.querySelector('#rooms button')",
    )
    .await;
}

/// Types into the composer with real key presses and sends with Enter.
async fn type_and_send(b: &Browser, text: &str) {
    let area = b
        .find(fantoccini::Locator::Css("textarea.composer-text"))
        .await
        .expect("a composer");
    area.send_keys(&format!("{text}\u{E007}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_audience_pages_chat_through_the_tab_on_their_one_connection() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.user("olga", "performer").await;
    let (show, code, room) = live_show(&owner).await;
    let driver = browser::chromedriver().await;
    let mut pages = Vec::new();
    for (i, name) in ["Ada", "Bo"].iter().enumerate() {
        let profile = app.dir.path().join(format!("profile-{i}"));
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
        b.find(fantoccini::Locator::Css("#tab-chat"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(
            &b,
            "asked for a name",
            "!document.getElementById('chat-name').hidden",
        )
        .await;
        let input = b
            .find(fantoccini::Locator::Css("#chat-name-input"))
            .await
            .unwrap();
        input.send_keys(&format!("{name}\u{E007}")).await.unwrap();
        let hello_room = until(
            &b,
            "in the show's room",
            "window.tuttiAudienceChat.chat.ready && window.tuttiAudienceChat.view.roomId",
        )
        .await;
        assert_eq!(hello_room, json!(room));
        until(
            &b,
            "composer open",
            "!document.querySelector('textarea.composer-text').disabled",
        )
        .await;
        pages.push(b);
    }

    type_and_send(&pages[0], "Hello from **Ada**").await;
    until(
        &pages[1],
        "Ada's message on Bo's page",
        "[...document.querySelectorAll('li.msg:not(.pending)')].some((li) => li.querySelector('.author').textContent === 'Ada' && li.querySelector('.msg-body strong')?.textContent === 'Ada')",
    )
    .await;
    type_and_send(&pages[1], "Hi Ada").await;
    until(
        &pages[0],
        "Bo's answer on Ada's page",
        "document.querySelectorAll('li.msg:not(.pending)').length === 2",
    )
    .await;
    for b in &pages {
        let msgs = shown(b).await;
        assert_eq!(
            msgs,
            vec![(1, "Hello from Ada".to_owned()), (2, "Hi Ada".to_owned())],
            "each message once, in order"
        );
    }
    // A performer posts a file through the API: the phones (no API credentials) show its name
    // and size as text, and offer no attach button.
    let tiny = png_bytes(8, 8);
    let auth = format!("Bearer {}", owner.token.as_deref().unwrap());
    let att = raw(
        owner.addr,
        "POST",
        &format!("/api/v1/chat/rooms/{room}/attachments?name=tiny.png"),
        &[("authorization", &auth)],
        &tiny,
    )
    .await
    .ok(201);
    owner
        .post(
            &format!("/chat/rooms/{room}/messages"),
            json!({"client_message_id": "o1", "text": "The plot", "attachments": [id_of(&att)]}),
        )
        .await
        .ok(201);
    for b in &pages {
        let shown_file = until(
            b,
            "the file's name on the phone",
            "document.querySelector('li.msg:not(.pending) .attachments span.att-name')?.textContent",
        )
        .await;
        assert_eq!(
            shown_file,
            json!(format!("📎 tiny.png ({})", human_size(tiny.len())))
        );
        let extra = js(
            b,
            "return document.querySelectorAll('.attachments img, .attachments button, button.attach, input[type=file]').length;",
        )
        .await;
        assert_eq!(extra, json!(0));
    }
    // The show ends: the tab says so and the composer closes; the messages stay readable.
    owner.show_to(show, "ended").await;
    for b in &pages {
        until(b, "read-only notice", "document.querySelector('.readonly-note') && !document.querySelector('.readonly-note').hidden && document.querySelector('textarea.composer-text').disabled").await;
        let note = js(
            b,
            "return document.querySelector('.readonly-note').textContent;",
        )
        .await;
        assert!(note.as_str().unwrap().contains("ended"), "{note}");
        assert_eq!(shown(b).await.len(), 3);
    }
    browser::assert_no_csp_violations(&pages[0]).await;
    for b in pages {
        b.close().await.unwrap();
    }
    drop(driver);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xss_payloads_posted_through_rest_render_inert() {
    let app = TestApp::spawn().await;
    let (ana, ana_id) = app.user("ana", "crew").await;
    let room = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "crew", "members": [ana_id]}),
            )
            .await
            .ok(201),
    );
    let payloads = [
        "<img src=x onerror=\"window.__xss = 1\">",
        "<script>window.__xss = 2</script>",
        "[click me](javascript:window.__xss=3)",
        "<a href=\"javascript:window.__xss=4\">link</a>",
        "[quoted](http://example.com/\" onmouseover=\"window.__xss=5)",
        "![pic](x\" onerror=\"window.__xss=6)",
        "<svg onload=\"window.__xss=7\"></svg> <iframe src=\"javascript:window.__xss=8\"></iframe>",
        "`<img src=x onerror=window.__xss=9>` and **<b onclick=\"window.__xss=10\">bold</b>**",
    ];
    for (i, p) in payloads.iter().enumerate() {
        post(&ana, room, &format!("x{i}"), p).await;
    }
    let driver = browser::chromedriver().await;
    let b = browser::browser(&driver, &app.dir.path().join("profile"), 1200, 900).await;
    sign_in(&b, app.addr, "ana").await;
    js(
        &b,
        &format!("document.querySelector('#rooms button[data-room=\"{room}\"]').click();"),
    )
    .await;
    until(
        &b,
        "every payload shown",
        &format!(
            "document.querySelectorAll('li.msg:not(.pending)').length === {}",
            payloads.len()
        ),
    )
    .await;
    // Hover and click every link of the messages: nothing may run.
    js(
        &b,
        "for (const a of document.querySelectorAll('.msg-body a')) {\
           a.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));\
           a.addEventListener('click', (e) => e.preventDefault(), {once: true});\
           a.click();\
         }",
    )
    .await;
    let report = js(
        &b,
        "const bodies = [...document.querySelectorAll('.msg-body')];\
         const els = bodies.flatMap((b) => [...b.querySelectorAll('*')]);\
         return {\
           flag: window.__xss ?? null,\
           bad: els.filter((e) => ['IMG','SCRIPT','SVG','IFRAME','OBJECT','EMBED','B','STYLE'].includes(e.tagName.toUpperCase())).map((e) => e.outerHTML),\
           handlers: els.filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.outerHTML),\
           hrefs: [...document.querySelectorAll('.msg-body a')].map((a) => a.getAttribute('href')),\
           text: bodies.map((b) => b.textContent).join('\\n'),\
         };",
    )
    .await;
    assert_eq!(report["flag"], Value::Null, "a payload ran: {report}");
    assert_eq!(report["bad"], json!([]), "{report}");
    assert_eq!(report["handlers"], json!([]), "{report}");
    for href in report["hrefs"].as_array().unwrap() {
        let href = href.as_str().unwrap_or("");
        assert!(
            href.starts_with("http://") || href.starts_with("https://"),
            "a link to another scheme: {report}"
        );
    }
    // The payloads are shown as text, not dropped.
    let text = report["text"].as_str().unwrap();
    for shown_as_text in [
        "<script>window.__xss = 2</script>",
        "<img src=x onerror=window.__xss=9>",
    ] {
        assert!(
            text.contains(shown_as_text),
            "{shown_as_text:?} not shown as text: {text}"
        );
    }
    browser::assert_no_csp_violations(&b).await;
    b.close().await.unwrap();
    drop(driver);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_signs_in_shows_unread_posts_and_finds_the_post() {
    let app = TestApp::spawn().await;
    let (ana, ana_id) = app.user("ana", "crew").await;
    let (bob, bob_id) = app.user("bob", "crew").await;
    let crew = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "crew", "members": [ana_id, bob_id]}),
            )
            .await
            .ok(201),
    );
    post(&app.admin, crew, "a1", "Soundcheck at five").await;
    post(&app.admin, crew, "a2", "Bring the cables").await;

    let driver = browser::chromedriver().await;
    let b = browser::browser(&driver, &app.dir.path().join("profile"), 390, 844).await;
    sign_in(&b, app.addr, "ana").await;
    // Rooms with unread markers: All Talk (opened first, so read) and crew with 2 unread.
    let marker = until(
        &b,
        "crew's unread marker",
        &format!(
            "document.querySelector('#rooms button[data-room=\"{crew}\"] .unread')?.textContent"
        ),
    )
    .await;
    assert_eq!(marker, json!("2"));
    let names = js(
        &b,
        "return [...document.querySelectorAll('#rooms .room-name')].map((e) => e.textContent);",
    )
    .await;
    assert!(
        names.as_array().unwrap().iter().any(|n| n == "All Talk"),
        "{names}"
    );

    // Open crew: the history through REST, the marker cleared (read up to the latest).
    js(
        &b,
        &format!("document.querySelector('#rooms button[data-room=\"{crew}\"]').click();"),
    )
    .await;
    until(
        &b,
        "crew's history",
        "document.querySelectorAll('li.msg:not(.pending)').length === 2",
    )
    .await;
    until(
        &b,
        "marker cleared",
        &format!("document.querySelector('#rooms button[data-room=\"{crew}\"] .unread').textContent === ''"),
    )
    .await;
    assert_eq!(
        shown(&b).await,
        vec![
            (1, "Soundcheck at five".into()),
            (2, "Bring the cables".into())
        ]
    );
    // The page marked it read on the server (chat_read): nothing unread there either.
    let mut unread = Value::Null;
    for _ in 0..100 {
        let rooms = ana.get("/chat/rooms").await.ok(200);
        unread = rooms["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == crew)
            .map(|r| r["unread"].clone())
            .unwrap_or_default();
        if unread == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(unread, 0);

    // Bob posts while Ana reads; then Ana answers him, picking his name after `@` with the
    // keyboard, and sends with Enter: acknowledged, shown once as her own; the server has it.
    post(&bob, crew, "b1", "Ready when you are").await;
    until(
        &b,
        "Bob's live post",
        "document.querySelectorAll('li.msg:not(.pending)').length === 3",
    )
    .await;
    let area = b
        .find(fantoccini::Locator::Css("textarea.composer-text"))
        .await
        .unwrap();
    area.send_keys("@b").await.unwrap();
    let option = until(&b, "a mention suggestion", "document.querySelector('ul.mentions:not([hidden]) li[role=option][aria-selected=true]')?.textContent").await;
    assert_eq!(option, json!("@bob"));
    area.send_keys("\u{E007}").await.unwrap(); // Enter picks the suggestion
    let value = js(
        &b,
        "return document.querySelector('textarea.composer-text').value;",
    )
    .await;
    assert_eq!(value, json!("@bob "));
    type_and_send(&b, "Zebra crossing at the back door").await;
    until(&b, "own post shown", "document.querySelectorAll('li.msg.mine:not(.pending)').length === 1 && !document.querySelector('li.msg.pending')").await;
    let mine = js(
        &b,
        "return document.querySelector('li.msg.mine .msg-body').textContent.trim();",
    )
    .await;
    assert_eq!(mine, json!("@bob Zebra crossing at the back door"));
    let events = app
        .admin
        .get(&format!("/chat/rooms/{crew}/events?after_seq=0"))
        .await
        .ok(200);
    assert_eq!(events["head_seq"], 4, "{events}");
    assert_eq!(
        events["items"][3]["text"],
        "@bob Zebra crossing at the back door"
    );

    // A boost on it, through the page.
    js(
        &b,
        "document.querySelector('li.msg.mine .quick-boosts button').click();",
    )
    .await;
    until(
        &b,
        "the boost shown",
        "document.querySelector('li.msg.mine .boosts button[aria-pressed=\"true\"]')",
    )
    .await;

    // Search finds it, the matched word highlighted (as text).
    b.find(fantoccini::Locator::Css("#search-q"))
        .await
        .unwrap()
        .send_keys("zebra\u{E007}")
        .await
        .unwrap();
    let hit = until(
        &b,
        "a search hit",
        "document.querySelector('#results-list li[data-message] mark')?.textContent",
    )
    .await;
    assert_eq!(hit.as_str().map(str::to_lowercase), Some("zebra".into()));
    let snippet = js(
        &b,
        "return document.querySelector('#results-list li .snippet').textContent;",
    )
    .await;
    assert!(snippet.as_str().unwrap().contains("crossing"), "{snippet}");

    // Edit and delete one's own message from the page.
    js(
        &b,
        "document.querySelector('li.msg.mine button.edit').click();",
    )
    .await;
    let area = b
        .find(fantoccini::Locator::Css("li.msg.mine textarea.edit-text"))
        .await
        .unwrap();
    area.clear().await.unwrap();
    area.send_keys("Zebra crossing at the *front* door\u{E007}")
        .await
        .unwrap();
    until(&b, "edited", "document.querySelector('li.msg.mine .msg-body em')?.textContent === 'front' && document.querySelector('li.msg.mine .edited')").await;
    js(
        &b,
        "document.querySelector('li.msg.mine button.delete').click();",
    )
    .await;
    js(
        &b,
        "document.querySelector('li.msg.mine button.delete').click();",
    )
    .await;
    until(
        &b,
        "deleted",
        "document.querySelector('li.msg.mine.deleted')",
    )
    .await;
    browser::assert_no_csp_violations(&b).await;
    b.close().await.unwrap();
    drop(driver);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_socket_drops_catches_up_exactly() {
    let app = TestApp::spawn().await;
    let (_, ana_id) = app.user("ana", "crew").await;
    let crew = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "crew", "members": [ana_id]}),
            )
            .await
            .ok(201),
    );
    let driver = browser::chromedriver().await;
    let b = browser::browser(&driver, &app.dir.path().join("profile"), 1200, 900).await;
    sign_in(&b, app.addr, "ana").await;
    js(
        &b,
        &format!("document.querySelector('#rooms button[data-room=\"{crew}\"]').click();"),
    )
    .await;
    let first = post(&app.admin, crew, "m1", "one").await;
    post(&app.admin, crew, "m2", "two").await;
    until(
        &b,
        "the live messages",
        "document.querySelectorAll('li.msg:not(.pending)').length === 2",
    )
    .await;

    // Drop the socket (and keep the page from reconnecting until the changes are made).
    js(
        &b,
        "const s = window.tuttiChat.socket; s.hold = true; s.ws.close();",
    )
    .await;
    until(
        &b,
        "disconnected",
        "document.getElementById('conn').dataset.state === 'reconnecting'",
    )
    .await;
    let mut texts = Vec::new();
    for i in 3..=7 {
        texts.push(format!("missed {i}"));
        post(&app.admin, crew, &format!("m{i}"), &format!("missed {i}")).await;
    }
    app.admin
        .req(
            "PATCH",
            &format!("/chat/messages/{}", id_of(&first)),
            Some(json!({"text": "one, edited while away"})),
            &[],
        )
        .await
        .ok(200);
    let gone = post(&app.admin, crew, "m8", "deleted while away").await;
    app.admin
        .req(
            "DELETE",
            &format!("/chat/messages/{}", id_of(&gone)),
            None,
            &[],
        )
        .await
        .ok(200);
    // A post typed while away waits, shown as sending, and goes out once back.
    type_and_send(&b, "typed while away").await;
    until(
        &b,
        "a pending post",
        "document.querySelector('li.msg.pending')?.textContent.includes('typed while away')",
    )
    .await;
    js(&b, "window.tuttiChat.socket.release();").await;
    until(
        &b,
        "reconnected",
        "document.getElementById('conn').dataset.state === 'live'",
    )
    .await;
    until(&b, "caught up", &format!("window.tuttiChat.client.room({crew}).caughtUp && window.tuttiChat.client.room({crew}).lastSeq >= 11 && !document.querySelector('li.msg.pending')")).await;
    // Then a live one, after the catch-up and the post sent again.
    post(&app.admin, crew, "m9", "live again").await;
    until(&b, "the live one", "[...document.querySelectorAll('li.msg')].some((li) => li.textContent.includes('live again'))").await;

    let got = shown(&b).await;
    let mut want = vec![
        (1, "one, edited while away".to_owned()),
        (2, "two".to_owned()),
    ];
    for (i, t) in texts.iter().enumerate() {
        want.push((i as u64 + 3, t.clone()));
    }
    want.push((9, "This message was deleted.".to_owned()));
    want.push((11, "typed while away".to_owned()));
    want.push((12, "live again".to_owned()));
    assert_eq!(
        got, want,
        "each message once, in order, with the changes made while away"
    );
    b.close().await.unwrap();
    drop(driver);
    app.shutdown().await;
}

/// A PNG of `w`×`h` pixels (a gradient, so it is not all one colour).
fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// What the page shows as a size (chat-ui.js `humanSize`), for the sizes these tests use.
fn human_size(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{:.1} KB", n as f64 / 1024.0)
    }
}

/// Chooses files in the composer's file input (what the attach button opens), as a person
/// picking them in the file dialog would.
async fn choose_files(b: &Browser, paths: &[&std::path::Path]) {
    let input = b
        .find(fantoccini::Locator::Css("input.attach-input"))
        .await
        .expect("the composer's file input");
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    input.send_keys(&list.join("\n")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_attaches_files_shows_thumbnails_and_names_refusals() {
    let app = TestApp::spawn().await;
    let (ana, ana_id) = app.user("ana", "crew").await;
    let crew = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "crew", "members": [ana_id]}),
            )
            .await
            .ok(201),
    );
    let files = app.dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let stage = files.join("stage.png");
    std::fs::write(&stage, png_bytes(40, 30)).unwrap();
    let evil_name = "<img src=x onerror=window.__xss=1>.png";
    let evil = files.join(evil_name);
    std::fs::write(&evil, png_bytes(8, 8)).unwrap();
    let notes = files.join("notes.txt");
    std::fs::write(&notes, "Cables: 4 XLR, 2 jack.\n").unwrap();
    let page = files.join("page.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>window.__xss = 2</script></body></html>",
    )
    .unwrap();

    let driver = browser::chromedriver().await;
    let b = browser::browser(&driver, &app.dir.path().join("profile"), 390, 844).await;
    sign_in(&b, app.addr, "ana").await;
    js(
        &b,
        &format!("document.querySelector('#rooms button[data-room=\"{crew}\"]').click();"),
    )
    .await;
    until(
        &b,
        "crew open",
        &format!("window.tuttiChat.view.roomId === {crew} && !document.querySelector('textarea.composer-text').disabled"),
    )
    .await;
    // The attach button is a real button with a name, and opens the hidden file input.
    let button = js(
        &b,
        "const b = document.querySelector('form.composer button.attach');\
         return b && {tag: b.tagName, label: b.getAttribute('aria-label'), type: b.type,\
           input: document.querySelector('input.attach-input[type=file]').hidden};",
    )
    .await;
    assert_eq!(
        button,
        json!({"tag": "BUTTON", "label": "Attach files", "type": "button", "input": true})
    );

    // Three files chosen: uploaded at once, shown as chips with their names as text.
    choose_files(&b, &[&stage, &evil, &notes]).await;
    until(
        &b,
        "three chips uploaded",
        "document.querySelectorAll('ul.attach-chips li.chip[data-state=ready]').length === 3",
    )
    .await;
    let chips = js(
        &b,
        "return [...document.querySelectorAll('ul.attach-chips li.chip')].map((li) => [\
           li.querySelector('.chip-name').textContent, li.querySelector('.chip-size').textContent,\
           li.querySelector('button.remove').getAttribute('aria-label'), li.querySelectorAll('img').length]);",
    )
    .await;
    assert_eq!(
        chips,
        json!([
            [
                "stage.png",
                human_size(png_bytes(40, 30).len()),
                "Remove stage.png",
                0
            ],
            [
                evil_name,
                human_size(png_bytes(8, 8).len()),
                format!("Remove {evil_name}"),
                0
            ],
            ["notes.txt", "23 B", "Remove notes.txt", 0],
        ])
    );
    type_and_send(&b, "Stage plot").await;
    // The message: two thumbnails loaded from blob: URLs (alt: the names), a download button
    // for the text file; the name with markup shown as text (the server replaced < and >).
    let thumbs = until(
        &b,
        "thumbnails loaded",
        "(() => { const imgs = [...document.querySelectorAll('li.msg:not(.pending) .attachments img.att-thumb')];\
           return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0)\
             && imgs.map((i) => [i.alt, i.naturalWidth, i.naturalHeight, i.src.startsWith('blob:')]); })()",
    )
    .await;
    let evil_shown = "_img src=x onerror=window.__xss=1_.png";
    assert_eq!(
        thumbs,
        json!([["stage.png", 40, 30, true], [evil_shown, 8, 8, true]])
    );
    let rest = js(
        &b,
        "const li = document.querySelector('li.msg:not(.pending)');\
         return {xss: window.__xss ?? null, body: li.querySelector('.msg-body').textContent.trim(),\
           imgs: li.querySelectorAll('img').length,\
           file: li.querySelector('.attachments button.att-file')?.textContent,\
           fileLabel: li.querySelector('.attachments button.att-file')?.getAttribute('aria-label'),\
           open: [...li.querySelectorAll('button.att-open')].map((b) => b.getAttribute('aria-label')),\
           chips: document.querySelectorAll('ul.attach-chips li').length};",
    )
    .await;
    assert_eq!(
        rest,
        json!({
            "xss": null, "body": "Stage plot", "imgs": 2,
            "file": "📎 notes.txt", "fileLabel": "Download notes.txt (23 B)",
            "open": [format!("Open image stage.png ({})", human_size(png_bytes(40, 30).len())),
                     format!("Open image {evil_shown} ({})", human_size(png_bytes(8, 8).len()))],
            "chips": 0,
        })
    );
    // The server has one message carrying the three files, in order.
    let msgs = ana
        .get(&format!("/chat/rooms/{crew}/messages"))
        .await
        .ok(200);
    let items = msgs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{msgs}");
    let names: Vec<&str> = items[0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stage.png", evil_shown, "notes.txt"]);

    // The full image opens from the thumbnail (fetched with the token, a blob: URL).
    js(&b, "document.querySelector('button.att-open').click();").await;
    let full = until(
        &b,
        "the full image",
        "(() => { const i = document.querySelector('dialog.att-dialog[open] img.att-full');\
           return i && i.complete && i.naturalWidth > 0 && [i.alt, i.naturalWidth, i.src.startsWith('blob:')]; })()",
    )
    .await;
    assert_eq!(full, json!(["stage.png", 40, true]));
    js(
        &b,
        "document.querySelector('dialog.att-dialog button').click();",
    )
    .await;
    until(
        &b,
        "dialog closed",
        "!document.querySelector('dialog.att-dialog')",
    )
    .await;

    // An HTML file is refused by the API: the error names the file and the API's reason, no
    // chip stays, and the next post carries no file.
    choose_files(&b, &[&page]).await;
    let error = until(
        &b,
        "the refusal shown",
        "(() => { const e = document.querySelector('p.attach-error'); return e && !e.hidden && e.textContent; })()",
    )
    .await;
    let error = error.as_str().unwrap();
    assert!(
        error.starts_with(
            "page.html: the file's content is HTML, XML or SVG markup, which is not accepted"
        ),
        "{error}"
    );
    assert_eq!(
        js(
            &b,
            "return document.querySelectorAll('ul.attach-chips li').length;"
        )
        .await,
        json!(0)
    );
    type_and_send(&b, "No file here").await;
    until(
        &b,
        "the second post shown",
        "document.querySelectorAll('li.msg:not(.pending)').length === 2 && !document.querySelector('li.msg.pending')",
    )
    .await;
    let msgs = ana
        .get(&format!("/chat/rooms/{crew}/messages"))
        .await
        .ok(200);
    let items = msgs["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{msgs}");
    let second = items.iter().find(|m| m["text"] == "No file here").unwrap();
    assert_eq!(second["attachments"], json!([]), "{msgs}");
    assert_eq!(js(&b, "return window.__xss ?? null;").await, Value::Null);

    // More than four files: the fifth is not added, and the page says so.
    choose_files(&b, &[&stage, &stage, &notes, &notes, &evil]).await;
    let error = until(
        &b,
        "the limit named",
        "(() => { const e = document.querySelector('p.attach-error'); return e && !e.hidden && e.textContent; })()",
    )
    .await;
    assert_eq!(
        error,
        json!(format!(
            "{evil_name}: not added, at most 4 files per message"
        ))
    );
    assert_eq!(
        js(
            &b,
            "return document.querySelectorAll('ul.attach-chips li').length;"
        )
        .await,
        json!(4)
    );

    browser::assert_no_csp_violations(&b).await;
    b.close().await.unwrap();
    drop(driver);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_sounds_are_synthesized_and_play_live_and_replies_quote_on_the_audience_tab() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.user("olga", "performer").await;
    let (_show, code, room) = live_show(&owner).await;
    let driver = browser::chromedriver().await;
    let profile = app.dir.path().join("profile-play");
    let b = browser::browser(&driver, &profile, 390, 800).await;

    // A message from before the page joined plays nothing when the page catches up.
    post(&owner, room, "p0", "/play gong").await;
    b.goto(&format!("http://{}/?show={code}", app.addr))
        .await
        .unwrap();
    until(
        &b,
        "joined",
        "document.getElementById('conn').dataset.state === 'live'",
    )
    .await;

    // Every sound on the server's list has a recipe: rendered offline it sounds, stays
    // within full scale and ends before 3 s.
    let rendered = b
        .execute_async(
            r#"const done = arguments[0];
               import('/web/sounds.js').then(async (m) => {
                 const out = {};
                 for (const name of m.SOUNDS) {
                   const x = await m.renderSound(name, 24000);
                   let peak = 0, sum = 0, last = 0;
                   for (let i = 0; i < x.length; i++) {
                     const a = Math.abs(x[i]);
                     peak = Math.max(peak, a); sum += x[i] * x[i];
                     if (a > 1e-3) last = i;
                   }
                   out[name] = [peak, Math.sqrt(sum / x.length), last / 24000];
                 }
                 done(out);
               }, (e) => done(String(e)));"#,
            vec![],
        )
        .await
        .unwrap();
    let rendered = rendered.as_object().unwrap_or_else(|| panic!("{rendered}"));
    let names: Vec<&str> = rendered.keys().map(String::as_str).collect();
    assert_eq!(names, tutti_chat::SOUNDS, "the page's list is the server's");
    for (name, v) in rendered {
        let (peak, rms, end) = (
            v[0].as_f64().unwrap(),
            v[1].as_f64().unwrap(),
            v[2].as_f64().unwrap(),
        );
        assert!(peak > 0.05 && peak <= 1.0, "{name}: peak {peak}");
        assert!(rms > 0.002, "{name}: rms {rms}");
        assert!(end > 0.2 && end < 2.95, "{name}: ends at {end} s");
    }

    // Live: the performer's `/play tada` plays on the phone, once, with a replay button.
    b.find(fantoccini::Locator::Css("#tab-chat"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let input = b
        .find(fantoccini::Locator::Css("#chat-name-input"))
        .await
        .unwrap();
    input.send_keys("Ada\u{E007}").await.unwrap();
    until(
        &b,
        "in the show's room, caught up",
        "window.tuttiAudienceChat.chat.ready && window.tuttiAudienceChat.view.roomId && document.querySelectorAll('li.msg:not(.pending)').length === 1",
    )
    .await;
    post(&owner, room, "p1", "/play tada").await;
    until(
        &b,
        "the live /play on the page",
        "document.querySelectorAll('li.msg:not(.pending)').length === 2",
    )
    .await;
    let played = js(&b, "return window.tuttiAudienceChat.view.played;").await;
    assert_eq!(
        played,
        json!(["tada"]),
        "the live sound only, not the caught-up gong"
    );
    let replay = js(
        &b,
        "return [...document.querySelectorAll('button.replay')].map((x) => x.getAttribute('aria-label'));",
    )
    .await;
    assert_eq!(replay, json!(["Play gong again", "Play tada again"]));
    // Replying: the phone answers the performer's message; the reply carries `reply_to`
    // and shows the quote; Escape would drop it, Cancel does.
    let buttons = b
        .find_all(fantoccini::Locator::Css("button.reply"))
        .await
        .unwrap();
    assert_eq!(buttons.len(), 2);
    buttons[1].click().await.unwrap();
    let bar = js(&b, "return document.querySelector('.replying').hidden ? null : document.querySelector('.replying').textContent;").await;
    assert!(
        bar.as_str()
            .unwrap()
            .contains("Replying to olga: /play tada"),
        "{bar}"
    );
    type_and_send(&b, "Encore!").await;
    until(
        &b,
        "the reply shown with its quote",
        "[...document.querySelectorAll('li.msg:not(.pending) blockquote.reply-to')].some((q) => q.textContent.includes('/play tada'))",
    )
    .await;
    assert_eq!(
        js(&b, "return document.querySelector('.replying').hidden;").await,
        json!(true)
    );
    let events = owner
        .get(&format!("/chat/rooms/{room}/events?after_seq=0"))
        .await
        .ok(200);
    let reply = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "Encore!")
        .cloned()
        .unwrap_or_else(|| panic!("the reply: {events}"));
    let tada = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "/play tada")
        .cloned()
        .unwrap();
    assert_eq!(reply["reply_to"], tada["message_id"]);
    assert_eq!(tada["sound"], "tada");

    // An unknown sound is refused with its code, and the composer says why.
    type_and_send(&b, "/play kazoo").await;
    until(
        &b,
        "the refusal named",
        "document.body.textContent.includes('unknown_sound') || document.body.textContent.includes('knows no sound')",
    )
    .await;
    assert_eq!(shown(&b).await.len(), 3, "nothing stored");
    b.close().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_sets_a_rooms_moderation_for_its_moderators_only() {
    let app = TestApp::spawn().await;
    let (owner, olga) = app.user("olga", "performer").await;
    let (_otto_api, otto) = app.user("otto", "crew").await;
    let (_show, _code, show_room) = live_show(&owner).await;
    // A closed room of no ensemble: only admins moderate it, so Olga does not.
    let closed = id_of(
        &app.admin
            .post(
                "/chat/rooms",
                json!({"kind": "closed", "name": "side", "members": [olga, otto]}),
            )
            .await
            .ok(201),
    );
    let driver = browser::chromedriver().await;
    let profile = app.dir.path().join("profile-mod");
    let b = browser::browser(&driver, &profile, 390, 900).await;
    sign_in(&b, app.addr, "olga").await;
    js(
        &b,
        &format!("document.querySelector('#rooms button[data-room=\"{show_room}\"]').click();"),
    )
    .await;
    until(
        &b,
        "the moderation panel for the show's room",
        "!document.querySelector('details.moderation').hidden && document.querySelector('[data-restrict]')",
    )
    .await;
    // Settings from the form, as stored (a show's room offers its sounds through the show).
    until(
        &b,
        "the show room's sounds checkbox",
        "!document.getElementById('mod-settings').sounds_through_show.closest('label').hidden",
    )
    .await;
    b.execute(
        "const f = document.getElementById('mod-settings');\
         f.slow_mode_s.value = '3'; f.audience_delay_s.value = '5';\
         f.sounds_through_show.checked = true;\
         f.filter.value = 'boo\\n  spoiler  \\n'; f.requestSubmit();",
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "saved",
        "document.getElementById('mod-status').textContent.startsWith('Saved')",
    )
    .await;
    let s = owner
        .get(&format!("/chat/rooms/{show_room}/settings"))
        .await
        .ok(200);
    assert_eq!(
        (&s["slow_mode_s"], &s["audience_delay_s"], &s["filter"]),
        (&json!(3), &json!(5), &json!(["boo", "spoiler"]))
    );
    assert_eq!(s["sounds_through_show"], true);
    // Out of range: the form itself refuses a delay past 60 s; a filter entry past 100
    // characters gets the API's refusal in its own words; nothing changes.
    let valid = js(
        &b,
        "const f = document.getElementById('mod-settings'); f.audience_delay_s.value = '99';\
         const ok = f.checkValidity(); f.audience_delay_s.value = '5'; return ok;",
    )
    .await;
    assert_eq!(valid, json!(false));
    b.execute(
        "const f = document.getElementById('mod-settings'); f.filter.value = 'x'.repeat(101); f.requestSubmit();",
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the refusal shown",
        "document.getElementById('mod-status').textContent.startsWith('Not saved')",
    )
    .await;
    let s = owner
        .get(&format!("/chat/rooms/{show_room}/settings"))
        .await
        .ok(200);
    assert_eq!(s["audience_delay_s"], 5);
    assert_eq!(s["filter"], json!(["boo", "spoiler"]));
    let said = js(
        &b,
        "return document.getElementById('mod-status').textContent;",
    )
    .await;
    assert!(said.as_str().unwrap().contains("filter"), "{said}");
    // A moderator cannot be restricted: the page says so and shows what holds.
    b.execute(
        &format!(
            "const s = document.querySelector('[data-restrict=\"{olga}\"]'); s.value = 'mute';\
             s.dispatchEvent(new Event('change'));"
        ),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the restriction refused",
        "document.getElementById('mod-status').textContent.startsWith('Not changed')",
    )
    .await;
    until(
        &b,
        "the log shows the change of settings",
        "[...document.querySelectorAll('#mod-log li')].some((li) => li.textContent.includes('settings changed'))",
    )
    .await;
    // In the closed room Olga does not moderate: no panel.
    js(
        &b,
        &format!("document.querySelector('#rooms button[data-room=\"{closed}\"]').click();"),
    )
    .await;
    until(
        &b,
        "the closed room open",
        &format!("window.tuttiChat.view.roomId === {closed}"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        js(
            &b,
            "return document.querySelector('details.moderation').hidden;"
        )
        .await,
        json!(true)
    );
    let _ = otto;
    b.close().await.unwrap();
    app.shutdown().await;
}
