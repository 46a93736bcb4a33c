//! Users, sign-in, sessions, CSRF and throttling, end to end: users made with `onebox user`,
//! a visitor signing in over HTTPS, the database looked at directly. Every scenario runs on
//! SQLite and on MariaDB.

use std::time::Duration;

use super::support::{App, Backend, PASSWORD, bare_client, both, encode, set_cookies, sha256_hex};

const SESSION: &str = "__Host-onebox_session";
const CSRF: &str = "__Host-onebox_csrf";

both!(
    user_add_reads_stdin_and_refuses_bad_input,
    user_add_asks_twice_on_a_terminal,
    api_tokens_are_shown_once_and_stored_as_digests,
    sign_in_sets_a_host_only_http_only_secure_cookie,
    wrong_password_and_unknown_email_read_the_same,
    sign_in_without_the_csrf_token_is_forbidden,
    signed_in_forms_without_the_csrf_token_are_forbidden,
    sessions_expire,
    sign_out_ends_the_session_on_the_server,
    every_sign_in_is_a_new_session,
    failed_sign_ins_are_throttled,
    next_never_leads_off_the_site,
    api_writes_take_an_api_token_or_a_session_with_its_csrf_token,
);

async fn user_add_reads_stdin_and_refuses_bad_input(backend: Backend) {
    let app = App::start(backend, &[]);
    let out = app.cli(
        &["user", "add", "--email", "Ada@FooBar.com", "--admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let hashes = app
        .rows("SELECT `password_hash` FROM `users` WHERE `email` = 'ada@foobar.com'")
        .await;
    assert_eq!(hashes.len(), 1, "stored lower-case: {hashes:?}");
    assert!(
        hashes[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hashes[0]
    );
    assert!(!hashes[0].contains(PASSWORD));
    let roles = app.rows("SELECT `role` FROM `users`").await;
    assert_eq!(roles, ["admin"]);

    let refused = [
        // The same address, in other case.
        (
            vec!["--email", "ADA@foobar.com"],
            format!("{PASSWORD}\n"),
            "a user with the e-mail address ada@foobar.com exists already",
        ),
        (
            vec!["--email", "short@foobar.com"],
            "seven77\n".to_owned(),
            "the password is too short: use at least 8 characters",
        ),
        (
            vec!["--email", "empty@foobar.com"],
            String::new(),
            "no password on standard input",
        ),
        (
            vec!["--email", "not-an-address"],
            format!("{PASSWORD}\n"),
            "is not an e-mail address",
        ),
    ];
    for (args, stdin, message) in refused {
        let mut full = vec!["user", "add"];
        full.extend(args.iter().copied());
        let out = app.cli(&full, &stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(
        app.rows("SELECT `email` FROM `users`").await,
        ["ada@foobar.com"]
    );

    // The first line only; a trailing CR (a Windows pipe) is not part of the password.
    let out = app.cli(
        &[
            "user",
            "add",
            "--email",
            "ed@foobar.com",
            "--name",
            "Ed Itor",
        ],
        &format!("{PASSWORD}\r\nsecond line\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let visitor = app.visitor();
    visitor.sign_in("ed@foobar.com").await;
    let list = app.cli(&["user", "list"], "");
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "ada@foobar.com\tadmin\t-\tada\ned@foobar.com\teditor\t-\tEd Itor\n"
    );
}

async fn user_add_asks_twice_on_a_terminal(backend: Backend) {
    let app = App::start(backend, &[]);
    let add = ["user", "add", "--email", "tty@foobar.com"];
    let (status, screen) = app.cli_on_terminal(&add, "first password\nsecond password\n");
    assert_eq!(status, Some(1), "{screen}");
    assert!(screen.contains("Password: "), "{screen}");
    assert!(screen.contains("Password (again): "), "{screen}");
    assert!(screen.contains("the two passwords differ"), "{screen}");
    assert!(app.rows("SELECT `email` FROM `users`").await.is_empty());
    let (status, screen) = app.cli_on_terminal(&add, &format!("{PASSWORD}\n{PASSWORD}\n"));
    assert_eq!(status, Some(0), "{screen}");
    app.visitor().sign_in("tty@foobar.com").await;
}

async fn api_tokens_are_shown_once_and_stored_as_digests(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let issue = || {
        let out = app.cli(&["user", "token", "--email", "editor@foobar.com"], "");
        assert!(out.status.success(), "{out:?}");
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(token.len(), 64, "{token}");
        token
    };
    let first = issue();
    let stored = |token: String| {
        let app = &app;
        async move {
            app.rows(&format!(
                "SELECT `email` FROM `users` WHERE `api_token_hash` = '{}'",
                sha256_hex(&token)
            ))
            .await
        }
    };
    assert_eq!(stored(first.clone()).await, ["editor@foobar.com"]);
    assert!(
        app.rows(&format!(
            "SELECT `email` FROM `users` WHERE `api_token_hash` = '{first}'"
        ))
        .await
        .is_empty(),
        "the token itself is never stored"
    );
    // A new token replaces the old one.
    let second = issue();
    assert_ne!(first, second);
    assert!(stored(first).await.is_empty());
    assert_eq!(stored(second).await, ["editor@foobar.com"]);

    let out = app.cli(&["user", "token", "--email", "nobody@foobar.com"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user has the e-mail address"));
}

async fn sign_in_sets_a_host_only_http_only_secure_cookie(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    let form = visitor.get("/signin?next=/editor/settings").await;
    assert_eq!(form.status().as_u16(), 200);
    assert_eq!(form.headers()["cache-control"], "no-store");
    let csrf_cookie = set_cookies(form.headers(), CSRF);
    assert_eq!(csrf_cookie.len(), 1, "{csrf_cookie:?}");
    for attribute in ["; Path=/", "; HttpOnly", "; Secure", "; SameSite=Strict"] {
        assert!(csrf_cookie[0].contains(attribute), "{csrf_cookie:?}");
    }
    assert!(!csrf_cookie[0].contains("Domain="), "{csrf_cookie:?}");
    let page = form.text().await.expect("body");
    let token = visitor.cookie(CSRF).expect("the CSRF cookie");
    assert!(page.contains(&format!("name=\"csrf\" value=\"{token}\"")));
    assert!(
        page.contains("name=\"next\" value=\"/editor/settings\""),
        "{page}"
    );

    let response = visitor
        .sign_in_to("Admin@FooBar.com", PASSWORD, "/editor/settings")
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/editor/settings");
    let session = set_cookies(response.headers(), SESSION);
    assert_eq!(session.len(), 1, "{session:?}");
    for attribute in [
        "; Path=/",
        "; HttpOnly",
        "; Secure",
        "; SameSite=Lax",
        "; Max-Age=43200",
    ] {
        assert!(session[0].contains(attribute), "{session:?}");
    }
    assert!(!session[0].contains("Domain="), "{session:?}");
    // The pre-session CSRF cookie has served its purpose.
    assert!(visitor.cookie(CSRF).is_none());

    // The server keeps only the token's digest.
    let token = visitor.cookie(SESSION).expect("the session cookie");
    assert_eq!(token.len(), 64);
    assert_eq!(
        app.rows("SELECT `id` FROM `sessions`").await,
        [sha256_hex(&token)]
    );
    let page = visitor.page("/editor/settings", 200).await;
    assert!(page.contains("Sign out Ada Admin"), "{page}");
}

async fn wrong_password_and_unknown_email_read_the_same(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    let mut pages = Vec::new();
    for (email, password) in [
        ("admin@foobar.com", "not the password"),
        ("nobody@foobar.com", PASSWORD),
        ("admin@foobar.com", ""),
    ] {
        let response = visitor.sign_in_to(email, password, "/editor").await;
        assert_eq!(response.status().as_u16(), 401, "{email}");
        assert!(set_cookies(response.headers(), SESSION).is_empty());
        let page = response.text().await.expect("body");
        assert!(page.contains("Wrong e-mail address or password."), "{page}");
        assert!(page.contains(&format!("value=\"{email}\"")), "{page}");
        pages.push(page.replace(email, "EMAIL"));
    }
    assert_eq!(pages[0], pages[1], "the same page, whatever was wrong");
    assert!(app.rows("SELECT `id` FROM `sessions`").await.is_empty());
    // Not signed in: the editor area still sends the visitor to the form.
    let response = visitor.get("/editor/settings").await;
    assert_eq!(response.status().as_u16(), 303);
}

async fn sign_in_without_the_csrf_token_is_forbidden(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    let csrf = visitor.signin_csrf("/editor").await;
    let wrong = "0".repeat(64);
    for form in [
        vec![("email", "admin@foobar.com"), ("password", PASSWORD)],
        vec![
            ("email", "admin@foobar.com"),
            ("password", PASSWORD),
            ("csrf", ""),
        ],
        vec![
            ("email", "admin@foobar.com"),
            ("password", PASSWORD),
            ("csrf", &wrong),
        ],
    ] {
        let response = visitor.post("/signin", &form).await;
        assert_eq!(response.status().as_u16(), 403, "{form:?}");
        assert!(set_cookies(response.headers(), SESSION).is_empty());
    }
    // The right field but no cookie (another browser's token, say): forbidden too.
    let other = bare_client(&app);
    let response = other
        .post(visitor.url("/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=admin%40foobar.com&password={}&csrf={csrf}",
            encode(PASSWORD)
        ))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 403);
    assert!(app.rows("SELECT `id` FROM `sessions`").await.is_empty());
    // With both, it works.
    let response = visitor
        .post(
            "/signin",
            &[
                ("email", "admin@foobar.com"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/editor");
}

async fn signed_in_forms_without_the_csrf_token_are_forbidden(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    visitor.sign_in("admin@foobar.com").await;
    let csrf = visitor.session_csrf("/editor/settings").await;
    let wrong = "f".repeat(64);
    for token in [None, Some(""), Some(wrong.as_str())] {
        let mut form = vec![("title", "Hijacked"), ("tagline", "by a foreign page")];
        form.extend(token.map(|t| ("csrf", t)));
        let response = visitor.post("/editor/settings", &form).await;
        assert_eq!(response.status().as_u16(), 403, "{token:?}");
        let page = response.text().await.expect("body");
        assert!(page.contains("CSRF"), "{page}");
        let response = visitor.post("/signout", &form).await;
        assert_eq!(response.status().as_u16(), 403, "{token:?}");
    }
    assert!(app.rows("SELECT `value` FROM `settings`").await.is_empty());
    // Still signed in: sign-out was refused each time.
    let page = visitor.page("/editor/settings", 200).await;
    assert!(!page.contains("Hijacked"));
    assert_eq!(app.rows("SELECT `id` FROM `sessions`").await.len(), 1);
    let response = visitor.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(response.status().as_u16(), 303);
}

async fn sessions_expire(backend: Backend) {
    let app = App::start(backend, &["session_ttl = \"3s\""]).with_users();
    let visitor = app.visitor();
    let response = visitor
        .sign_in_to("admin@foobar.com", PASSWORD, "/editor")
        .await;
    let signed_in = std::time::Instant::now();
    assert!(set_cookies(response.headers(), SESSION)[0].contains("; Max-Age=3;"));
    // The cookie is sent by hand: a browser would drop it at Max-Age, but the server must
    // refuse it by itself.
    let cookie = format!("{SESSION}={}", visitor.cookie(SESSION).expect("session"));
    let client = bare_client(&app);
    let get = || {
        client
            .get(visitor.url("/editor/settings"))
            .header("cookie", &cookie)
            .send()
    };
    let fresh = get().await.expect("GET");
    assert!(
        signed_in.elapsed() < Duration::from_secs(3),
        "the machine is too slow for this test"
    );
    assert_eq!(fresh.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(signed_in.elapsed())).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = get().await.expect("GET");
    assert_eq!(expired.status().as_u16(), 303);
    assert_eq!(
        expired.headers()["location"],
        "/signin?next=%2Feditor%2Fsettings"
    );
    // Refused, but still stored until the watcher's next purge: a new process purges once
    // the database is up, before it says so.
    assert_eq!(app.rows("SELECT `id` FROM `sessions`").await.len(), 1);
    let app = app.restart();
    assert!(app.rows("SELECT `id` FROM `sessions`").await.is_empty());
}

async fn sign_out_ends_the_session_on_the_server(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    visitor.sign_in("editor@foobar.com").await;
    let cookie = format!("{SESSION}={}", visitor.cookie(SESSION).expect("session"));
    // The sign-out form is in the navigation of every page a signed-in visitor gets, the
    // sign-in page included (an editor has no settings page).
    let csrf = visitor.session_csrf("/signin").await;
    let response = visitor.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/");
    let cleared = set_cookies(response.headers(), SESSION);
    assert!(cleared[0].contains("Max-Age=0"), "{cleared:?}");
    assert!(app.rows("SELECT `id` FROM `sessions`").await.is_empty());
    // The old cookie, replayed: no longer a session.
    let response = bare_client(&app)
        .get(visitor.url("/editor/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 303);
}

async fn every_sign_in_is_a_new_session(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    visitor.sign_in("admin@foobar.com").await;
    let first = visitor.cookie(SESSION).expect("session");
    visitor.sign_in("admin@foobar.com").await;
    let second = visitor.cookie(SESSION).expect("session");
    assert_ne!(first, second);
    // The browser's old session was ended, not left behind.
    assert_eq!(
        app.rows("SELECT `id` FROM `sessions`").await,
        [sha256_hex(&second)]
    );
    let response = bare_client(&app)
        .get(visitor.url("/editor/settings"))
        .header("cookie", format!("{SESSION}={first}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 303);
}

async fn failed_sign_ins_are_throttled(backend: Backend) {
    let app = App::start(
        backend,
        &["signin_max_failures = 3", "signin_window = \"10m\""],
    )
    .with_users();
    let visitor = app.visitor();
    for n in 1..=3 {
        let response = visitor
            .sign_in_to("editor@foobar.com", "wrong password", "/editor")
            .await;
        assert_eq!(response.status().as_u16(), 401, "failure {n}");
    }
    // Now even the right password is refused, for this address and from this client.
    for email in ["editor@foobar.com", "admin@foobar.com"] {
        let response = visitor.sign_in_to(email, PASSWORD, "/editor").await;
        assert_eq!(response.status().as_u16(), 429, "{email}");
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=600).contains(&retry), "Retry-After: {retry}");
        assert!(set_cookies(response.headers(), SESSION).is_empty());
    }
    assert!(app.rows("SELECT `id` FROM `sessions`").await.is_empty());
    let metrics = app.server.scrape();
    let count = |result: &str| {
        crate::metrics::value(
            &metrics,
            &format!("onebox_app_signins_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(
        (count("failed"), count("throttled")),
        (3.0, 2.0),
        "{metrics}"
    );
    // The count is in the database: a restart forgets nothing.
    let app = app.restart();
    let response = app
        .visitor()
        .sign_in_to("editor@foobar.com", PASSWORD, "/editor")
        .await;
    assert_eq!(response.status().as_u16(), 429, "still throttled");
}

async fn next_never_leads_off_the_site(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let visitor = app.visitor();
    for (next, location) in [
        ("/blog/hello?page=2", "/blog/hello?page=2"),
        ("//evil.example/", "/editor"),
        ("///evil.example/", "/editor"),
        ("/\\evil.example/", "/editor"),
        ("https://evil.example/", "/editor"),
        ("javascript:alert(1)", "/editor"),
        ("evil.example", "/editor"),
        ("", "/editor"),
    ] {
        let response = visitor.sign_in_to("admin@foobar.com", PASSWORD, next).await;
        assert_eq!(response.status().as_u16(), 303, "{next:?}");
        assert_eq!(response.headers()["location"], location, "{next:?}");
    }
}

/// API writes: a per-user token (`onebox user token`; a new one replaces the old), or a
/// session with its CSRF token in `X-CSRF-Token`; nothing else.
async fn api_writes_take_an_api_token_or_a_session_with_its_csrf_token(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let issue = || {
        let out = app.cli(&["user", "token", "--email", "editor@foobar.com"], "");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = issue();
    let client = bare_client(&app);
    let visitor = app.visitor();
    let post = |auth: Option<String>, title: &'static str| {
        let mut req = client
            .post(visitor.url("/api/posts"))
            .header("content-type", "application/json")
            .body(format!("{{\"title\": \"{title}\"}}"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    let r = post(Some(format!("Bearer {first}")), "One").await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    let r = post(Some(format!("Bearer {}", "0".repeat(64))), "Two")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = post(None, "Three").await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let second = issue();
    let r = post(Some(format!("Bearer {first}")), "Four").await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = post(Some(format!("Bearer {second}")), "Five")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Session + CSRF header.
    visitor.sign_in("editor@foobar.com").await;
    let csrf = visitor.session_csrf("/editor").await;
    let r = visitor
        .client
        .post(visitor.url("/api/posts"))
        .header("content-type", "application/json")
        .body("{\"title\": \"Six\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = visitor
        .client
        .post(visitor.url("/api/posts"))
        .header("content-type", "application/json")
        .header("x-csrf-token", csrf)
        .body("{\"title\": \"Seven\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Editor page after sign-in.
    let page = visitor.page("/editor", 200).await;
    assert!(page.contains("Ed Editor"));
}
