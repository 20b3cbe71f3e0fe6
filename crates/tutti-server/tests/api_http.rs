//! `/api/v1` against a real server with a fresh SQLite store per test: the envelope for every
//! bad input, accounts and tokens, cookie sessions and CSRF, permissions, the piece and show
//! state machines, idempotent creates, and the live hub running an API-created show.

#[path = "api_support/mod.rs"]
mod api_support;

use api_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn count_users(admin: &Api) -> usize {
    admin.get("/users?limit=100").await.ok(200)["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn every_bad_input_gets_the_envelope_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (addr, admin) = (app.addr, &app.admin);
    let auth = format!("Bearer {}", admin.token.clone().unwrap());
    let a: &[(&str, &str)] = &[("authorization", &auth)];
    let before = count_users(admin).await;

    // Unknown path and method.
    admin.get("/nope").await.err(404, "not_found");
    admin
        .req("DELETE", "/health", None, &[])
        .await
        .err(405, "method_not_allowed");
    // The client's request id is echoed.
    let r = admin
        .req("GET", "/nope", None, &[("x-request-id", "my-id-1")])
        .await;
    assert_eq!(r.err(404, "not_found")["request_id"], "my-id-1");

    let ct = |c: &'static str| -> Vec<(&str, &str)> {
        let mut h = a.to_vec();
        h.push(("content-type", c));
        h
    };
    let json_h = ct("application/json");
    // Malformed JSON.
    raw(addr, "POST", "/api/v1/users", &json_h, b"{\"username\": ")
        .await
        .err(400, "malformed_json");
    // Wrong or missing content type.
    raw(addr, "POST", "/api/v1/users", &ct("text/plain"), b"{}")
        .await
        .err(415, "unsupported_media_type");
    raw(addr, "POST", "/api/v1/users", a, b"{}")
        .await
        .err(415, "unsupported_media_type");
    // Invalid UTF-8.
    raw(
        addr,
        "POST",
        "/api/v1/users",
        &json_h,
        b"{\"username\": \"\xff\xfe\"}",
    )
    .await
    .err(400, "invalid_utf8");
    // Too large (limit 64 KiB in the test config).
    let big = format!("{{\"username\": \"{}\"}}", "x".repeat(100_000));
    raw(addr, "POST", "/api/v1/users", &json_h, big.as_bytes())
        .await
        .err(413, "payload_too_large");
    // Missing, extra and wrongly typed fields, named.
    let e = admin
        .post(
            "/users",
            json!({"username": "bob", "password": "bob-password", "role": "crew"}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "display_name", "{e}");
    let e = admin
        .post("/users", json!({"username": "bob", "password": "bob-password", "display_name": "Bob", "role": "crew", "colour": "red"}))
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "colour", "{e}");
    let e = admin
        .post("/users", json!({"username": 7, "password": "bob-password", "display_name": "Bob", "role": "crew"}))
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "username", "{e}");
    let e = admin
        .post(
            "/users",
            json!({"username": "bob", "password": "short", "display_name": "Bob", "role": "king"}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "role", "{e}");
    let e = admin
        .post("/users", json!({"username": "bad name", "password": "short", "display_name": "", "role": "crew"}))
        .await
        .err(422, "validation_failed");
    let fields: Vec<&str> = e["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "password", "display_name"], "{e}");
    // Bad query parameters.
    admin
        .get("/users?limit=0")
        .await
        .err(422, "validation_failed");
    admin
        .get("/users?cursor=zzz")
        .await
        .err(422, "validation_failed");
    admin
        .get("/users?limit=abc")
        .await
        .err(422, "validation_failed");
    admin.get("/users/abc").await.err(404, "not_found");
    assert_eq!(count_users(admin).await, before, "nothing was written");

    // Duplicates where unique.
    app.user("carol", "performer").await;
    let r = admin
        .post("/users", json!({"username": "CAROL", "password": "carol-password", "display_name": "C", "role": "crew"}))
        .await;
    r.err(409, "already_exists");
    let eid = admin.ensemble("band").await;
    admin
        .post("/ensembles", json!({"slug": "band", "name": "Other"}))
        .await
        .err(409, "already_exists");
    let pid = admin.piece(eid, "p1").await;
    admin
        .post(
            &format!("/ensembles/{eid}/pieces"),
            json!({"slug": "p1", "title": "P"}),
        )
        .await
        .err(409, "already_exists");
    assert_eq!(
        admin
            .get(&format!("/pieces?ensemble_id={eid}"))
            .await
            .ok(200)["items"][0]["id"],
        pid
    );
    // An invalid spec names its field; nothing stored.
    let mut bad = spec("p1");
    bad["tick_hz"] = json!(1000);
    let e = admin
        .post(&format!("/pieces/{pid}/specs"), json!({"spec": bad}))
        .await
        .err(422, "validation_failed");
    assert!(
        e["details"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("spec"),
        "{e}"
    );
    let e = admin
        .post(
            &format!("/pieces/{pid}/specs"),
            json!({"spec": {"slug": "x"}}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "spec", "{e}");
    assert_eq!(
        admin.get(&format!("/pieces/{pid}/specs")).await.ok(200)["items"],
        json!([])
    );
    app.shutdown().await;
}

/// The message of a 422 for one field, after checking the field's name.
#[track_caller]
fn problem(r: &Res, field: &str) -> String {
    let e = r.err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], field, "{e}");
    e["details"][0]["problem"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn texts_ids_and_parameters_are_checked_alike_and_named_once() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let pieces = format!("/ensembles/{}/pieces", admin.ensemble("chars").await);

    // Titles count characters: 200 × "é" (400 bytes) fits, 201 does not, with one message.
    let e200 = "é".repeat(200);
    let p = admin
        .post(&pieces, json!({"slug": "accents", "title": e200}))
        .await
        .ok(201);
    assert_eq!(p["title"], e200);
    let r = admin
        .post(
            &pieces,
            json!({"slug": "accents2", "title": "é".repeat(201)}),
        )
        .await;
    assert_eq!(problem(&r, "title"), "must be 1–200 characters (got 201)");
    let pid = p["id"].as_i64().unwrap();
    let mut sp = spec("accents");
    sp["title"] = json!(e200);
    admin
        .post(&format!("/pieces/{pid}/specs"), json!({ "spec": sp }))
        .await
        .ok(201);

    // Display strings refuse reordering and invisible characters, naming the first one.
    let r = admin
        .post(
            &pieces,
            json!({"slug": "rlo", "title": "Finale \u{202E}3pm.exe"}),
        )
        .await;
    let why = problem(&r, "title");
    assert!(
        why.contains("bidirectional control characters (U+202E at character 8)"),
        "{why}"
    );
    let r = admin
        .post("/ensembles", json!({"slug": "zw", "name": "Ba\u{200B}nd"}))
        .await;
    assert!(problem(&r, "name").contains("invisible characters (U+200B"));
    let r = admin
        .post(
            "/users",
            json!({"username": "zed", "password": "zed-password",
            "display_name": "\u{2066}Zed", "role": "crew"}),
        )
        .await;
    assert!(problem(&r, "display_name").contains("U+2066"));
    let mut sp = spec("accents");
    sp["params"][0]["label"] = json!("Lou\u{FEFF}d");
    let r = admin
        .post(&format!("/pieces/{pid}/specs"), json!({ "spec": sp }))
        .await;
    assert!(problem(&r, "spec.params[0].label").contains("U+FEFF"));
    admin
        .post(
            &pieces,
            json!({"slug": "emoji", "title": "Finale \u{1F469}\u{200D}\u{1F3A4}"}),
        )
        .await
        .ok(201);

    // Path ids that do not parse: the envelope names the parameter.
    for (path, name) in [
        ("/users/abc", "id"),
        ("/pieces/99999999999999999999", "id"),
        ("/pieces/1/specs/latest", "version"),
        ("/ensembles/1/members/x", "user_id"),
    ] {
        let method = if name == "user_id" { "DELETE" } else { "GET" };
        let e = admin
            .req(method, path, None, &[])
            .await
            .err(404, "not_found");
        let m = e["message"].as_str().unwrap();
        assert!(
            m.starts_with(&format!("path parameter `{name}` must be a whole number")),
            "{m}"
        );
        assert!(!m.contains("Cannot parse"), "{m}");
        assert_eq!(e["details"]["parameter"], name, "{e}");
    }

    // Unknown query parameters and body fields: named once, with what is expected.
    let r = admin.get("/users?colour=red").await;
    assert_eq!(
        problem(&r, "colour"),
        "is not a known query parameter (expected `limit` or `cursor`)"
    );
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(message.matches("colour").count(), 1, "{message}");
    let r = admin.get("/users?limit=abc").await;
    assert_eq!(problem(&r, "limit"), "must be a whole number");
    let r = admin
        .post(&pieces, json!({"slug": "x", "title": "X", "colour": "red"}))
        .await;
    assert!(problem(&r, "colour").starts_with("is not a known field (expected"));
    let r = admin
        .get(&format!("/pieces/{pid}/specs/1/export?format=pdf"))
        .await;
    assert_eq!(
        problem(&r, "format"),
        "must be one of `json`, `toml`, `markdown` (got `pdf`)"
    );

    // Shows speak of the per-piece version number; the store id stays for compatibility.
    admin.publish(pid, 1).await;
    let show = admin.show(pid, "rehearsal").await;
    assert_eq!(show["spec_version"], 1, "{show}");
    assert!(
        show["spec_version_id"].as_i64().unwrap() > 1,
        "the demo piece has id 1: {show}"
    );
    let again = admin.get(&format!("/shows/{}", show["id"])).await.ok(200);
    assert_eq!(again["spec_version"], 1);
    let listed = admin.get(&format!("/shows?piece_id={pid}")).await.ok(200);
    assert_eq!(listed["items"][0]["spec_version"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn setup_login_refresh_rotation_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let addr = server.addr;
    let anon = Api::new(addr);
    assert_eq!(anon.get("/setup").await.ok(200)["needed"], true);
    anon.get("/me").await.err(401, "unauthorized");
    let (admin, setup) = setup_admin(addr).await;
    assert_eq!(setup["user"]["role"], "admin");
    assert_eq!(anon.get("/setup").await.ok(200)["needed"], false);
    anon.post(
        "/setup",
        json!({"username": "eve", "password": "eve-password", "display_name": "Eve"}),
    )
    .await
    .err(409, "setup_closed");
    assert_eq!(admin.get("/me").await.ok(200)["username"], "admin");
    anon.get("/me").await.err(401, "unauthorized");
    anon.with("tta_forged")
        .get("/me")
        .await
        .err(401, "unauthorized");
    anon.post(
        "/auth/login",
        json!({"username": "admin", "password": "wrong-password"}),
    )
    .await
    .err(401, "unauthorized");
    anon.post(
        "/auth/login",
        json!({"username": "nobody", "password": "wrong-password"}),
    )
    .await
    .err(401, "unauthorized");

    // Failed sign-ins slow the failing address only (see
    // `failed_sign_ins_slow_the_failing_address_and_never_lock_the_account`).
    let (_, eve_id) = user(&admin, "eve", "crew").await;
    assert!(eve_id > 0);
    login(&anon, "eve", "not-her-password")
        .await
        .err(401, "unauthorized");
    login(&anon, "EVE", "eve-password").await.ok(200);

    // Refresh rotation; reuse kills the family.
    let login = anon
        .post(
            "/auth/login",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await
        .ok(200);
    assert_eq!(login["token_type"], "Bearer");
    let r1 = login["refresh_token"].as_str().unwrap().to_owned();
    let a1 = anon.with(login["access_token"].as_str().unwrap());
    let second = anon
        .post("/auth/refresh", json!({"refresh_token": r1}))
        .await
        .ok(200);
    let a2 = anon.with(second["access_token"].as_str().unwrap());
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    a2.get("/me").await.ok(200);
    a1.get("/me").await.ok(200);
    anon.post("/auth/refresh", json!({"refresh_token": r1}))
        .await
        .err(401, "token_reused");
    a2.get("/me").await.err(401, "unauthorized");
    a1.get("/me").await.err(401, "unauthorized");
    anon.post("/auth/refresh", json!({"refresh_token": r2}))
        .await
        .err(401, "unauthorized");
    anon.post("/auth/refresh", json!({"refresh_token": "ttr_unknown"}))
        .await
        .err(401, "unauthorized");
    admin.get("/me").await.ok(200);

    // Logout revokes the family.
    let login = anon
        .post(
            "/auth/login",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await
        .ok(200);
    let a3 = anon.with(login["access_token"].as_str().unwrap());
    a3.post_empty("/auth/logout").await.ok(204);
    a3.get("/me").await.err(401, "unauthorized");
    anon.post(
        "/auth/refresh",
        json!({"refresh_token": login["refresh_token"]}),
    )
    .await
    .err(401, "unauthorized");

    // Deactivation signs a user out at once; a password change revokes the other sessions.
    let (dan, dan_id) = user(&admin, "dan", "performer").await;
    dan.get("/me").await.ok(200);
    let (other_dan_login, _) = (
        anon.post(
            "/auth/login",
            json!({"username": "dan", "password": "dan-password"}),
        )
        .await
        .ok(200),
        (),
    );
    let dan2 = anon.with(other_dan_login["access_token"].as_str().unwrap());
    dan.post(
        "/me/password",
        json!({"current_password": "wrong", "new_password": "dan-new-password"}),
    )
    .await
    .err(403, "forbidden");
    dan.post(
        "/me/password",
        json!({"current_password": "dan-password", "new_password": "dan-new-password"}),
    )
    .await
    .ok(204);
    dan.get("/me").await.ok(200);
    dan2.get("/me").await.err(401, "unauthorized");
    anon.post(
        "/auth/login",
        json!({"username": "dan", "password": "dan-password"}),
    )
    .await
    .err(401, "unauthorized");
    anon.post(
        "/auth/login",
        json!({"username": "dan", "password": "dan-new-password"}),
    )
    .await
    .ok(200);
    dan.post_empty(&format!("/users/{dan_id}/deactivate"))
        .await
        .err(403, "forbidden");
    let d = admin
        .post_empty(&format!("/users/{dan_id}/deactivate"))
        .await
        .ok(200);
    assert_eq!(d["active"], false);
    dan.get("/me").await.err(401, "unauthorized");
    anon.post(
        "/auth/login",
        json!({"username": "dan", "password": "dan-new-password"}),
    )
    .await
    .err(401, "unauthorized");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_sign_ins_slow_the_failing_address_and_never_lock_the_account() {
    let app = TestApp::spawn().await;
    app.user("zoe", "crew").await;
    let attacker = app.anon().connecting_from("127.0.0.2");
    let owner = app.anon().connecting_from("127.0.0.3");

    // An attacker fails five times for the admin: each is a plain 401 ...
    for _ in 0..5 {
        login(&attacker, "admin", "guess")
            .await
            .err(401, "unauthorized");
    }
    // ... then that address must wait, even with the right password, and is told how long.
    for password in ["guess", ADMIN_PASSWORD] {
        let r = login(&attacker, "ADMIN", password).await;
        let e = r.err(429, "rate_limited");
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=30).contains(&wait), "{wait}");
        assert!(e["message"].as_str().unwrap().contains("retry in"), "{e}");
    }
    // The admin signs in from another address at once, as often as needed.
    for _ in 0..3 {
        login(&owner, "admin", ADMIN_PASSWORD).await.ok(200);
    }
    // The attacker address may still try other names (it failed 5 times of its 20).
    login(&attacker, "zoe", "zoe-password").await.ok(200);

    // An address spraying many names is slowed for every name once it failed 20 times.
    let sprayer = app.anon().connecting_from("127.0.0.4");
    for i in 0..20 {
        login(&sprayer, &format!("name{i}"), "guess")
            .await
            .err(401, "unauthorized");
    }
    login(&sprayer, "zoe", "zoe-password")
        .await
        .err(429, "rate_limited");
    login(&owner, "zoe", "zoe-password").await.ok(200);
    app.shutdown().await;
}

/// Signs in under `names` at once, each with `password(name)`; the answers in order.
async fn sign_in_burst(api: &Api, names: &[String], password: impl Fn(&str) -> String) -> Vec<Res> {
    futures_util::future::join_all(names.iter().map(|n| {
        let p = password(n.as_str());
        async move { login(api, n, &p).await }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_is_bounded_and_a_full_gate_answers_429() {
    let app = TestApp::spawn_with(|cfg| cfg.api.password_hash_concurrency = 2).await;
    for i in 0..4 {
        app.user(&format!("burst{i}"), "crew").await;
    }
    // Distinct names: four accounts with their passwords, four with wrong ones, and unknown names.
    let names: Vec<String> = (0..4)
        .map(|i| format!("burst{i}"))
        .chain((0..4).map(|i| format!("nobody{i}")))
        .collect();
    let right = |n: &str| format!("{n}-password");
    let gate = app.server.api().password_gate();
    assert_eq!((gate.size(), gate.available()), (2, 2));

    // Every slot taken: the whole burst is refused at once, none is checked.
    let held = [gate.try_hold().unwrap(), gate.try_hold().unwrap()];
    for r in sign_in_burst(&app.anon(), &names, right).await {
        let e = r.err(429, "rate_limited");
        assert_eq!(r.header("retry-after"), Some("1"), "{e}");
    }
    drop(held);

    // Slots free: each answer is correct for its credentials or a 429, never a 5xx, and the
    // burst cannot be refused entirely (a 429 means another request held a slot).
    for with_right_passwords in [true, false] {
        let answers = sign_in_burst(&app.anon(), &names, |n| {
            if with_right_passwords {
                right(n)
            } else {
                "wrong-password".to_owned()
            }
        })
        .await;
        for (name, r) in names.iter().zip(&answers) {
            let expected = if with_right_passwords && name.starts_with("burst") {
                200
            } else {
                401
            };
            assert!(
                r.status == expected || r.status == 429,
                "{name}: {} {:?}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            if r.status == 429 {
                r.err(429, "rate_limited");
            }
        }
        assert!(answers.iter().any(|r| r.status != 429), "nobody got a slot");
        assert_eq!(gate.available(), 2, "every slot came back");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_header_on_unsafe_methods() {
    let app = TestApp::spawn().await;
    let r = app
        .anon()
        .post(
            "/auth/login",
            json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookie"}),
        )
        .await;
    let j = r.ok(200);
    let csrf = j["csrf_token"].as_str().unwrap().to_owned();
    let set_cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let anon = app.anon();
    let me = anon
        .req("GET", "/me", None, &[("cookie", &cookie)])
        .await
        .ok(200);
    assert_eq!(me["username"], "admin");
    let body = json!({"slug": "cookies", "name": "Cookies"});
    anon.req(
        "POST",
        "/ensembles",
        Some(body.clone()),
        &[("cookie", &cookie)],
    )
    .await
    .err(403, "csrf_failed");
    anon.req(
        "POST",
        "/ensembles",
        Some(body.clone()),
        &[("cookie", &cookie), ("x-csrf-token", "wrong")],
    )
    .await
    .err(403, "csrf_failed");
    anon.req(
        "POST",
        "/ensembles",
        Some(body),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await
    .ok(201);
    anon.req(
        "POST",
        "/auth/logout",
        None,
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await
    .ok(204);
    anon.req("GET", "/me", None, &[("cookie", &cookie)])
        .await
        .err(401, "unauthorized");
    app.shutdown().await;
}

#[tokio::test]
async fn guest_tokens_are_asked_for_by_join_code_and_limited_per_address() {
    let app = TestApp::spawn_with(|cfg| cfg.api.guests_per_minute = 2).await;
    let code = &app.server.show_code;
    let phone = app.anon().connecting_from("127.0.0.5");

    // Two at once, then this address waits; unknown codes count too (no free probing).
    phone
        .post_empty(&format!("/join/{code}/guests"))
        .await
        .ok(201);
    phone
        .post_empty("/join/ZZZZZZ/guests")
        .await
        .err(404, "not_found");
    for path in [format!("/join/{code}/guests"), "/shows/1/guests".to_owned()] {
        let r = phone.post_empty(&path).await;
        r.err(429, "rate_limited");
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=30).contains(&wait), "{wait}");
    }
    // Another address is not affected.
    let other = app.anon().connecting_from("127.0.0.6");
    let g = other
        .post_empty(&format!("/join/{code}/guests"))
        .await
        .ok(201);
    assert!(
        g["device_token"].as_str().unwrap().starts_with("ttg_"),
        "{g}"
    );

    // The old route by show id still works, announced as deprecated.
    let r = other.post_empty("/shows/1/guests").await;
    r.ok(201);
    assert!(
        r.header("deprecation").is_some_and(|d| d.starts_with('@')),
        "{:?}",
        r.headers
    );
    assert!(r
        .header("link")
        .is_some_and(|l| l.contains("rel=\"deprecation\"")));
    let doc = other.get("/openapi.json").await.ok(200);
    assert_eq!(
        doc["paths"]["/api/v1/shows/{id}/guests"]["post"]["deprecated"],
        true
    );
    assert!(doc["paths"]["/api/v1/join/{code}/guests"]["post"]
        .get("deprecated")
        .is_none_or(|d| d == false));
    app.shutdown().await;
}

#[tokio::test]
async fn only_admins_read_the_user_directory_and_owners_add_members_by_exact_name() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let (owner, _) = app.user("owner", "performer").await;
    let (crew, crew_id) = app.user("stagehand", "crew").await;
    let (_, guitar_id) = app.user("Guitar.Player", "performer").await;

    // Admins list and read every account.
    let all = admin.get("/users").await.ok(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    admin.get(&format!("/users/{crew_id}")).await.ok(200);
    // Nobody else lists users or reads another account; everyone reads their own.
    for who in [&owner, &crew] {
        let e = who.get("/users").await.err(403, "forbidden");
        assert!(e["message"].as_str().unwrap().contains("username"), "{e}");
        who.get(&format!("/users/{guitar_id}"))
            .await
            .err(403, "forbidden");
        who.get("/users/999").await.err(403, "forbidden");
    }
    assert_eq!(
        crew.get(&format!("/users/{crew_id}")).await.ok(200)["username"],
        "stagehand"
    );

    // An owner adds a member by exact username (ignoring case), without listing anyone.
    let members = format!("/ensembles/{}/members", owner.ensemble("trio").await);
    let m = owner
        .post(
            &members,
            json!({"username": "guitar.player", "role": "performer"}),
        )
        .await
        .ok(201);
    assert_eq!(
        (m["user_id"].as_i64(), &m["username"]),
        (Some(guitar_id), &json!("Guitar.Player"))
    );
    let e = owner
        .post(&members, json!({"username": "guitar", "role": "crew"}))
        .await
        .err(404, "not_found");
    assert!(e["message"].as_str().unwrap().contains("\"guitar\""), "{e}");
    let e = owner
        .post(
            &members,
            json!({"username": "stagehand", "user_id": crew_id, "role": "crew"}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "username", "{e}");
    let e = owner
        .post(&members, json!({"role": "crew"}))
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "user_id", "{e}");
    owner
        .post(&members, json!({"user_id": crew_id, "role": "crew"}))
        .await
        .ok(201);
    // A member who is not an owner cannot use it to probe names.
    crew.post(&members, json!({"username": "owner", "role": "crew"}))
        .await
        .err(403, "forbidden");
    app.shutdown().await;
}

#[tokio::test]
async fn forbidden_paths() {
    let app = TestApp::spawn().await;
    let (perf, _) = app.user("perf", "performer").await;
    let (outsider, _) = app.user("outsider", "performer").await;
    let (crew, crew_id) = app.user("crewie", "crew").await;
    let (aud, _) = app.user("aud", "audience").await;

    // Only admins create users; audience and crew cannot create ensembles.
    perf.post(
        "/users",
        json!({"username": "x1", "password": "x1-password", "display_name": "X", "role": "admin"}),
    )
    .await
    .err(403, "forbidden");
    aud.post("/ensembles", json!({"slug": "aud", "name": "A"}))
        .await
        .err(403, "forbidden");
    crew.post("/ensembles", json!({"slug": "crew", "name": "C"}))
        .await
        .err(403, "forbidden");

    let eid = perf.ensemble("quartet").await;
    let members = perf.get(&format!("/ensembles/{eid}/members")).await.ok(200);
    assert_eq!(members["items"][0]["role"], "owner");
    perf.add_member(eid, crew_id, "crew").await;
    perf.post(
        &format!("/ensembles/{eid}/members"),
        json!({"user_id": crew_id, "role": "crew"}),
    )
    .await
    .err(409, "already_member");
    let pid = perf.published_piece(eid, "etude").await;
    let sid = id_of(&perf.show(pid, "rehearsal").await);

    // A performer outside the ensemble sees nothing and touches nothing (404).
    outsider
        .get(&format!("/ensembles/{eid}"))
        .await
        .err(404, "not_found");
    outsider
        .get(&format!("/pieces/{pid}"))
        .await
        .err(404, "not_found");
    outsider
        .req(
            "PATCH",
            &format!("/pieces/{pid}"),
            Some(json!({"title": "Mine"})),
            &[],
        )
        .await
        .err(404, "not_found");
    outsider
        .post(
            &format!("/pieces/{pid}/transition"),
            json!({"to": "rehearsal"}),
        )
        .await
        .err(404, "not_found");
    outsider
        .post(
            &format!("/pieces/{pid}/specs"),
            json!({"spec": spec("etude")}),
        )
        .await
        .err(404, "not_found");
    outsider
        .post(
            &format!("/ensembles/{eid}/pieces"),
            json!({"slug": "x", "title": "X"}),
        )
        .await
        .err(404, "not_found");
    outsider
        .post(&format!("/shows/{sid}/transition"), json!({"to": "live"}))
        .await
        .err(404, "not_found");
    outsider
        .get(&format!("/pieces?ensemble_id={eid}"))
        .await
        .err(404, "not_found");
    assert_eq!(outsider.get("/pieces").await.ok(200)["items"], json!([]));
    outsider
        .req(
            "DELETE",
            &format!("/ensembles/{eid}/members/{crew_id}"),
            None,
            &[],
        )
        .await
        .err(404, "not_found");

    // Audience accounts: nothing in the management API.
    aud.get(&format!("/pieces/{pid}"))
        .await
        .err(403, "forbidden");
    aud.req(
        "PATCH",
        &format!("/pieces/{pid}"),
        Some(json!({"title": "Mine"})),
        &[],
    )
    .await
    .err(403, "forbidden");
    aud.post(&format!("/shows/{sid}/transition"), json!({"to": "live"}))
        .await
        .err(403, "forbidden");

    // Crew read and operate shows, but do not edit (403: they know the piece).
    crew.get(&format!("/pieces/{pid}")).await.ok(200);
    crew.req(
        "PATCH",
        &format!("/pieces/{pid}"),
        Some(json!({"title": "Mine"})),
        &[],
    )
    .await
    .err(403, "forbidden");
    crew.post(
        &format!("/pieces/{pid}/specs"),
        json!({"spec": spec("etude")}),
    )
    .await
    .err(403, "forbidden");
    crew.post(
        &format!("/ensembles/{eid}/members"),
        json!({"user_id": 1, "role": "crew"}),
    )
    .await
    .err(403, "forbidden");
    crew.post(&format!("/shows/{sid}/transition"), json!({"to": "live"}))
        .await
        .ok(200);

    // The title is unchanged by all of the above.
    assert_eq!(
        perf.get(&format!("/pieces/{pid}")).await.ok(200)["title"],
        "etude"
    );

    // A revoked token fails.
    perf.post_empty("/auth/logout").await.ok(204);
    perf.get(&format!("/pieces/{pid}"))
        .await
        .err(401, "unauthorized");
    app.shutdown().await;
}

#[tokio::test]
async fn piece_spec_and_show_state_machines() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let eid = admin.ensemble("trio").await;
    let p = admin
        .post(
            &format!("/ensembles/{eid}/pieces"),
            json!({"slug": "sonata", "title": "Sonata"}),
        )
        .await
        .ok(201);
    let pid = p["id"].as_i64().unwrap();
    assert_eq!(p["status"], "draft");
    let go = |to: &'static str| {
        let admin = admin.clone();
        async move {
            admin
                .post(&format!("/pieces/{pid}/transition"), json!({"to": to}))
                .await
        }
    };
    let e = go("ready").await.err(409, "invalid_transition");
    assert_eq!(e["details"]["allowed"], json!(["rehearsal", "archived"]));
    assert_eq!(go("rehearsal").await.ok(200)["status"], "rehearsal");
    assert_eq!(go("ready").await.ok(200)["status"], "ready");
    assert_eq!(go("rehearsal").await.ok(200)["status"], "rehearsal");
    assert_eq!(go("draft").await.ok(200)["status"], "draft");
    go("draft").await.err(409, "invalid_transition");
    go("flying").await.err(422, "validation_failed");
    let patched = admin
        .req(
            "PATCH",
            &format!("/pieces/{pid}"),
            Some(json!({"title": "Sonata No. 2"})),
            &[],
        )
        .await
        .ok(200);
    assert_eq!(patched["title"], "Sonata No. 2");

    // Specs: drafts, publish, exactly one current, rollback.
    admin
        .get(&format!("/pieces/{pid}/specs/current"))
        .await
        .err(404, "not_found");
    admin
        .post(
            &format!("/pieces/{pid}/shows"),
            json!({"kind": "rehearsal"}),
        )
        .await
        .err(409, "conflict");
    for i in 1..=3 {
        let v = admin
            .post(
                &format!("/pieces/{pid}/specs"),
                json!({"spec": spec("sonata"), "note": format!("v{i}")}),
            )
            .await
            .ok(201);
        assert_eq!(v["version"], i);
        assert_eq!(v["status"], "draft");
    }
    admin.publish(pid, 2).await;
    admin.publish(pid, 3).await;
    admin
        .post_empty(&format!("/pieces/{pid}/specs/9/publish"))
        .await
        .err(404, "not_found");
    let list = admin
        .get(&format!("/pieces/{pid}/specs?limit=2"))
        .await
        .ok(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let cursor = list["next_cursor"].as_str().unwrap().to_owned();
    let rest = admin
        .get(&format!("/pieces/{pid}/specs?limit=2&cursor={cursor}"))
        .await
        .ok(200);
    assert_eq!(rest["next_cursor"], Value::Null);
    let statuses: Vec<Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|v| v["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("draft"), json!("superseded"), json!("current")]
    );
    assert_eq!(
        admin
            .get(&format!("/pieces/{pid}/specs/current"))
            .await
            .ok(200)["version"],
        3
    );
    assert_eq!(
        admin.get(&format!("/pieces/{pid}/specs/1")).await.ok(200)["note"],
        "v1"
    );
    for (format, needle) in [
        ("json", "\"slug\""),
        ("toml", "slug = "),
        ("markdown", "# "),
    ] {
        let r = admin
            .get(&format!("/pieces/{pid}/specs/3/export?format={format}"))
            .await;
        assert_eq!(r.status, 200);
        assert!(
            String::from_utf8_lossy(&r.body).contains(needle),
            "{format}"
        );
    }
    admin
        .get(&format!("/pieces/{pid}/specs/3/export?format=pdf"))
        .await
        .err(422, "validation_failed");

    // Shows: scheduled → live ⇄ paused → ended; ending twice is a 409.
    let show = admin
        .post(
            &format!("/pieces/{pid}/shows"),
            json!({"kind": "performance", "spec_version": 2}),
        )
        .await
        .ok(201);
    let sid = show["id"].as_i64().unwrap();
    assert_eq!(show["status"], "scheduled");
    assert_eq!(show["spec_version"], 2, "{show}");
    assert!(show["join_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("?show={}", show["code"].as_str().unwrap())));
    let step = |to: &'static str| {
        let admin = admin.clone();
        async move {
            admin
                .post(&format!("/shows/{sid}/transition"), json!({"to": to}))
                .await
        }
    };
    // Guests: anonymous device tokens bound to the show by its join code, no sign-in needed.
    let code = show["code"].as_str().unwrap().to_owned();
    let g = app
        .anon()
        .post_empty(&format!("/join/{code}/guests"))
        .await
        .ok(201);
    assert!(g["device_token"].as_str().unwrap().len() > 30, "{g}");
    assert_eq!(g["show_id"], sid);
    let lower = code.to_ascii_lowercase();
    app.anon()
        .post_empty(&format!("/join/{lower}/guests"))
        .await
        .ok(201);
    app.anon()
        .post_empty("/join/NOSUCH/guests")
        .await
        .err(404, "not_found");
    let e = step("paused").await.err(409, "invalid_transition");
    assert_eq!(e["details"]["allowed"], json!(["live"]));
    assert_eq!(step("live").await.ok(200)["status"], "live");
    assert_eq!(step("paused").await.ok(200)["status"], "paused");
    assert_eq!(step("live").await.ok(200)["status"], "live");
    let ended = step("ended").await.ok(200);
    assert!(ended["ended_at_ms"].as_i64().is_some());
    let e = step("ended").await.err(409, "invalid_transition");
    assert_eq!(e["details"]["allowed"], json!([]));
    let export = admin.get(&format!("/shows/{sid}/export")).await.ok(200);
    assert_eq!(export["spec_version"]["version"], 2);
    assert!(export["timeline"].as_array().unwrap().len() >= 3);
    let guests = app.anon().post_empty(&format!("/join/{code}/guests")).await;
    guests.err(409, "conflict");
    let r = admin.get(&format!("/shows/{sid}/qr.svg")).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("<svg"));
    assert_eq!(
        admin.get(&format!("/shows?piece_id={pid}")).await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Archived is final; no new drafts or shows for an archived piece.
    go("archived").await.ok(200);
    let e = go("draft").await.err(409, "invalid_transition");
    assert_eq!(e["details"]["allowed"], json!([]));
    admin
        .post(
            &format!("/pieces/{pid}/specs"),
            json!({"spec": spec("sonata")}),
        )
        .await
        .err(409, "conflict");
    app.shutdown().await;
}

#[tokio::test]
async fn idempotent_creates_replay() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let body = json!({"slug": "choir", "name": "Choir"});
    let first = admin
        .req(
            "POST",
            "/ensembles",
            Some(body.clone()),
            &[("idempotency-key", "k-1")],
        )
        .await;
    let a = first.ok(201);
    let again = admin
        .req(
            "POST",
            "/ensembles",
            Some(body.clone()),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(again.ok(201), a);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        admin.get("/ensembles").await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    admin
        .req(
            "POST",
            "/ensembles",
            Some(json!({"slug": "choir2", "name": "Choir"})),
            &[("idempotency-key", "k-1")],
        )
        .await
        .err(422, "idempotency_key_reused");
    admin
        .req(
            "POST",
            "/ensembles",
            Some(body),
            &[("idempotency-key", "bad key with spaces")],
        )
        .await
        .err(422, "validation_failed");
    // Keys are per user.
    let (perf, _) = app.user("pat", "performer").await;
    perf.req(
        "POST",
        "/ensembles",
        Some(json!({"slug": "pats", "name": "P"})),
        &[("idempotency-key", "k-1")],
    )
    .await
    .ok(201);
    app.shutdown().await;
}

#[tokio::test]
async fn openapi_docs_and_health() {
    let app = TestApp::spawn().await;
    let anon = app.anon();
    assert_eq!(anon.get("/health").await.ok(200)["status"], "ok");
    let doc = anon.get("/openapi.json").await.ok(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/pieces/{id}",
        "/api/v1/auth/refresh",
        "/api/v1/shows/{id}/transition",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["paths"]["/api/v1/pieces/{id}"]["get"]["responses"]
        .get("default")
        .is_some());
    let page = anon.get("/docs").await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("openapi.json"));
    for path in ["/api/v1", "/api/v1/", "/api/v1/pieces/1/nothing/here"] {
        raw(app.addr, "POST", path, &[], b"")
            .await
            .err(404, "not_found");
    }
    // The older endpoints still answer.
    let r = raw(app.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
    let r = raw(app.addr, "GET", "/api/v1/info", &[], b"").await;
    assert_eq!(r.status, 200);
    app.shutdown().await;
}

async fn ws_join(addr: std::net::SocketAddr, frame: Value) -> Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/v1"))
        .await
        .unwrap();
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "welcome" || v["type"] == "error" {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn the_live_hub_runs_an_api_show_and_admits_its_performers() {
    let app = TestApp::spawn().await;
    let (addr, admin) = (app.addr, &app.admin);
    let (perf, _) = app.user("lead", "performer").await;
    let (outsider, _) = app.user("stranger", "performer").await;
    let eid = perf.ensemble("duo").await;
    let pid = perf.piece(eid, "nocturne").await;
    let mut s = spec("nocturne");
    s["params"] = json!([s["params"][0].clone()]);
    let version = perf.draft_spec(pid, s).await;
    perf.publish(pid, version).await;
    let show = perf.show(pid, "performance").await;
    let code = show["code"].as_str().unwrap().to_owned();
    let sid = id_of(&show);

    // Not on the hub until it goes live.
    let w = ws_join(addr, json!({"type": "join", "show": code})).await;
    assert_eq!(w["type"], "error", "{w}");
    perf.show_to(sid, "live").await;
    let w = ws_join(addr, json!({"type": "join", "show": code})).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["show"]["title"], "nocturne title");
    assert_eq!(
        w["params"].as_array().unwrap().len(),
        1,
        "runs the recorded spec version"
    );

    let token = |api: &Api| api.token.clone().unwrap();
    let w = ws_join(
        addr,
        json!({"type": "join", "show": code, "role": "performer", "token": token(&perf)}),
    )
    .await;
    assert_eq!(w["type"], "welcome", "{w}");
    let w = ws_join(
        addr,
        json!({"type": "join", "show": code, "role": "performer", "token": token(admin)}),
    )
    .await;
    assert_eq!(w["type"], "welcome", "{w}");
    let w = ws_join(
        addr,
        json!({"type": "join", "show": code, "role": "performer", "token": PERFORMER_TOKEN}),
    )
    .await;
    assert_eq!(w["type"], "welcome", "{w}");
    let w = ws_join(
        addr,
        json!({"type": "join", "show": code, "role": "performer", "token": token(&outsider)}),
    )
    .await;
    assert_eq!(w["type"], "error", "{w}");
    // A revoked token no longer admits.
    perf.post_empty("/auth/logout").await.ok(204);
    let w = ws_join(
        addr,
        json!({"type": "join", "show": code, "role": "performer", "token": token(&perf)}),
    )
    .await;
    assert_eq!(w["type"], "error", "{w}");

    // The hub follows the API's status changes.
    admin.show_to(sid, "ended").await;
    let w = ws_join(addr, json!({"type": "join", "show": code})).await;
    assert_eq!(w["type"], "error", "{w}");
    app.shutdown().await;
}

#[tokio::test]
async fn events_history_streams_and_webhooks_respect_ensembles() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let (perf, _) = app.user("ev-perf", "performer").await;
    let (outsider, _) = app.user("ev-out", "performer").await;
    let eid = perf.ensemble("evens").await;
    perf.piece(eid, "ev-piece").await;

    let kinds = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let mine = perf.get("/events").await.ok(200);
    let k = kinds(&mine);
    assert!(
        k.contains(&"ensemble.created".to_owned()) && k.contains(&"piece.created".to_owned()),
        "{k:?}"
    );
    assert!(
        !k.iter().any(|k| k.starts_with("account.")),
        "account events are admin-only: {k:?}"
    );
    assert_eq!(
        kinds(&outsider.get("/events").await.ok(200)),
        Vec::<String>::new()
    );
    assert!(kinds(&admin.get("/events").await.ok(200)).contains(&"account.created".to_owned()));
    let page = admin.get("/events?limit=1").await.ok(200);
    assert!(page["next_cursor"].is_string());
    admin
        .get("/events?after=-1")
        .await
        .err(422, "validation_failed");

    // Webhooks: the secret once; bad URLs and kinds named; outsiders see nothing.
    let w = perf
        .post(
            &format!("/ensembles/{eid}/webhooks"),
            json!({"url": "http://hooks.example.com/hook", "kinds": ["piece.created"]}),
        )
        .await
        .ok(201);
    assert!(w["secret"].as_str().unwrap().len() > 16, "{w}");
    let wid = w["id"].as_i64().unwrap();
    let list = perf
        .get(&format!("/ensembles/{eid}/webhooks"))
        .await
        .ok(200);
    assert_eq!(list["items"][0]["id"], wid);
    assert!(list["items"][0].get("secret").is_none(), "{list}");
    let e = perf
        .post(
            &format!("/ensembles/{eid}/webhooks"),
            json!({"url": "ftp://x"}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "url");
    let e = perf
        .post(
            &format!("/ensembles/{eid}/webhooks"),
            json!({"url": "http://hooks.example.com/", "kinds": ["nope"]}),
        )
        .await
        .err(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "kinds[0]");
    outsider
        .get(&format!("/ensembles/{eid}/webhooks"))
        .await
        .err(404, "not_found");
    outsider
        .req("DELETE", &format!("/webhooks/{wid}"), None, &[])
        .await
        .err(404, "not_found");
    perf.get(&format!("/webhooks/{wid}/deliveries"))
        .await
        .ok(200);
    perf.post_empty(&format!("/webhooks/{wid}/enable"))
        .await
        .ok(200);

    // The SSE stream replays what the caller may see after `after`.
    let text = sse_until(&perf, "event: piece.created").await;
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(!text.contains("account.created"), "{text}");
    perf.req("DELETE", &format!("/webhooks/{wid}"), None, &[])
        .await
        .ok(204);
    app.shutdown().await;
}

#[tokio::test]
async fn webhook_targets_are_restricted_and_schemes_are_checked_alike() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let hooks = format!("/ensembles/{}/webhooks", admin.ensemble("wh").await);
    let port = app.addr.port();
    // Link-local (metadata), this server, loopback and private: refused by default, named.
    for (url, reason) in [
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        (
            &format!("http://0.0.0.0:{port}/api/v1/setup") as &str,
            "unspecified",
        ),
        ("http://[::1]:9000/hook", "loopback"),
        ("http://localhost:9000/hook", "loopback"),
        ("https://192.168.1.20/hook", "private"),
        ("http://[fe80::1]/hook", "link_local"),
    ] {
        let r = admin.post(&hooks, json!({ "url": url })).await;
        let e = r.err(422, "webhook_target_forbidden");
        assert_eq!(e["details"]["field"], "url", "{e}");
        assert_eq!(e["details"]["reason"], reason, "{url}: {e}");
        assert!(e["message"].as_str().unwrap().starts_with("url: "), "{e}");
    }
    // Schemes in any case, https included; anything else is one message.
    for url in [
        "https://hooks.example.com/in",
        "HTTP://hooks.example.com/in",
    ] {
        admin.post(&hooks, json!({ "url": url })).await.ok(201);
    }
    for url in ["ftp://hooks.example.com/", "hooks.example.com/in"] {
        let e = admin
            .post(&hooks, json!({ "url": url }))
            .await
            .err(422, "validation_failed");
        assert_eq!(e["details"][0]["field"], "url", "{e}");
        assert_eq!(
            e["details"][0]["problem"], "must be an http:// or https:// URL",
            "{e}"
        );
    }
    app.shutdown().await;

    // A venue allowing private targets reaches its LAN and loopback, never this server.
    let app = TestApp::spawn_with(|cfg| cfg.webhooks.allow_private = true).await;
    let admin = &app.admin;
    let hooks = format!("/ensembles/{}/webhooks", admin.ensemble("wh").await);
    for url in ["http://127.0.0.1:9/hook", "http://192.168.1.20/hook"] {
        admin.post(&hooks, json!({ "url": url })).await.ok(201);
    }
    for url in [
        format!("http://127.0.0.1:{}/api/v1/setup", app.addr.port()),
        format!("http://localhost:{}/api/v1/setup", app.addr.port()),
    ] {
        let e = admin
            .post(&hooks, json!({ "url": url }))
            .await
            .err(422, "webhook_target_forbidden");
        assert_eq!(e["details"]["reason"], "own_listener", "{e}");
    }
    admin
        .post(&hooks, json!({"url": "http://169.254.169.254/"}))
        .await
        .err(422, "webhook_target_forbidden");
    app.shutdown().await;
}

#[tokio::test]
async fn events_show_crew_no_webhook_urls_in_the_history_or_the_streams() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let (perf, _) = app.user("wh-perf", "performer").await;
    let (crew, crew_id) = app.user("wh-crew", "crew").await;
    let eid = perf.ensemble("hooks").await;
    perf.add_member(eid, crew_id, "crew").await;
    let url = "http://hooks.example.com/in?token=s3cret";
    let w = perf
        .post(&format!("/ensembles/{eid}/webhooks"), json!({"url": url}))
        .await
        .ok(201);
    let wid = w["id"].as_i64().unwrap();
    crew.get(&format!("/ensembles/{eid}/webhooks"))
        .await
        .err(403, "forbidden");

    let created = |page: &Value| -> Value {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "webhook.created")
            .cloned()
            .expect("a webhook.created event")
    };
    // Editors and admins see the whole event; crew see its ids only.
    for who in [&perf, admin] {
        assert_eq!(
            created(&who.get("/events").await.ok(200))["data"]["url"],
            url
        );
    }
    let seen = created(&crew.get("/events").await.ok(200));
    assert_eq!(
        seen["data"],
        json!({"webhook_id": wid, "ensemble_id": eid, "redacted": true}),
        "{seen}"
    );
    assert_eq!(seen["subject"], format!("webhook:{wid}"));
    // The same in the SSE and WebSocket streams.
    let text = sse_until(&crew, "event: webhook.created").await;
    assert!(
        !text.contains("s3cret") && !text.contains("hooks.example.com"),
        "{text}"
    );
    assert!(text.contains("\"redacted\":true"), "{text}");
    let ev = ws_event(&crew, "webhook.created").await;
    assert_eq!(ev["data"]["redacted"], true, "{ev}");
    assert!(ev["data"].get("url").is_none(), "{ev}");
    assert_eq!(ws_event(&perf, "webhook.created").await["data"]["url"], url);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_leave_exactly_one_current_version() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let eid = admin.ensemble("cc").await;
    let pid = admin.piece(eid, "cc-piece").await;
    for _ in 0..8 {
        admin.draft_spec(pid, spec("cc-piece")).await;
    }
    let mut tasks = Vec::new();
    for _round in 0..3 {
        for v in 1..=8 {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                admin
                    .post_empty(&format!("/pieces/{pid}/specs/{v}/publish"))
                    .await
                    .status
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let all = admin
        .get(&format!("/pieces/{pid}/specs?limit=100"))
        .await
        .ok(200);
    let current: Vec<&Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "current")
        .collect();
    assert_eq!(current.len(), 1, "{all}");
    assert_eq!(
        admin
            .get(&format!("/pieces/{pid}/specs/current"))
            .await
            .ok(200)["version"],
        current[0]["version"]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_live_api_show_is_reopened_after_a_restart() {
    let app = TestApp::spawn().await;
    let admin = app.admin.clone();
    let eid = admin.ensemble("rs").await;
    let pid = admin.published_piece(eid, "rs-piece").await;
    let show = admin.show(pid, "performance").await;
    let sid = id_of(&show);
    let code = show["code"].as_str().unwrap().to_owned();
    admin.show_to(sid, "live").await;
    let dir = app.shutdown().await;

    let server = start(dir.path()).await;
    let w = ws_join(server.addr, json!({"type": "join", "show": code})).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["show"]["title"], "rs-piece title");
    // Tokens survive the restart (they are in the store).
    let again = Api::new(server.addr).with(admin.token.as_deref().unwrap());
    assert_eq!(
        again.get(&format!("/shows/{sid}")).await.ok(200)["status"],
        "live"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_idempotency_key_create_once() {
    let app = TestApp::spawn().await;
    let admin = &app.admin;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            admin
                .req(
                    "POST",
                    "/ensembles",
                    Some(json!({"slug": "once", "name": "Once"})),
                    &[("idempotency-key", "same")],
                )
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    let list = admin.get("/ensembles").await.ok(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // Once finished, the same key replays.
    let r = admin
        .req(
            "POST",
            "/ensembles",
            Some(json!({"slug": "once", "name": "Once"})),
            &[("idempotency-key", "same")],
        )
        .await;
    r.ok(201);
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    app.shutdown().await;
}
