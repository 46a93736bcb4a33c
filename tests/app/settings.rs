//! The site's settings: an admin edits the title and tagline at `/editor/settings`, every page
//! shows them (and still does after a restart), invalid values are refused with 422, editors
//! are refused with 403, and a write that fails half-way leaves nothing changed. Every
//! scenario runs on SQLite and on MariaDB.

use super::support::{App, Backend, both};

both!(
    an_admin_edits_the_settings_and_every_page_shows_them,
    invalid_settings_are_refused_with_422,
    only_admins_may_change_the_settings,
    a_failed_save_changes_nothing,
);

/// The `<title>` of a page.
fn title_of(page: &str) -> &str {
    let start = page.find("<title>").expect("<title>") + "<title>".len();
    let end = page.find("</title>").expect("</title>");
    &page[start..end]
}

async fn save(app: &App, title: &str, tagline: &str) -> reqwest::Response {
    let visitor = app.visitor();
    visitor.sign_in("admin@foobar.com").await;
    let csrf = visitor.session_csrf("/editor/settings").await;
    visitor
        .post(
            "/editor/settings",
            &[("csrf", &csrf), ("title", title), ("tagline", tagline)],
        )
        .await
}

async fn an_admin_edits_the_settings_and_every_page_shows_them(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let stranger = app.visitor();
    // The defaults while nothing is stored.
    assert_eq!(
        title_of(&stranger.page("/signin", 200).await),
        "Sign in — foobar.com"
    );

    let admin = app.visitor();
    admin.sign_in("admin@foobar.com").await;
    let form = admin.page("/editor/settings", 200).await;
    assert!(form.contains("value=\"foobar.com\""), "{form}");
    assert!(
        form.contains("value=\"the whole stack on one box\""),
        "{form}"
    );
    let csrf = admin.session_csrf("/editor/settings").await;
    let response = admin
        .post(
            "/editor/settings",
            &[
                ("csrf", &csrf),
                ("title", "  Foo & <Bar>  "),
                ("tagline", "News from the box"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/editor/settings?saved=1");
    let page = admin.page("/editor/settings?saved=1", 200).await;
    assert!(page.contains("Saved."), "{page}");
    assert!(
        page.contains("value=\"Foo &amp; &lt;Bar&gt;\""),
        "trimmed, escaped: {page}"
    );

    // Every page, for everyone, at once: the sign-in page and an error page.
    let signin = stranger.page("/signin", 200).await;
    assert_eq!(title_of(&signin), "Sign in — Foo &amp; &lt;Bar&gt;");
    assert!(signin.contains("News from the box"), "{signin}");
    let missing = stranger.page("/blog/no-such-post", 404).await;
    assert_eq!(title_of(&missing), "404 Not Found — Foo &amp; &lt;Bar&gt;");
    // The home page, the blog, and the 404 page of a file the site does not have, too.
    let home = stranger.page("/", 200).await;
    assert_eq!(title_of(&home), "Foo &amp; &lt;Bar&gt; — News from the box");
    assert!(
        home.contains("<h1>Foo &amp; &lt;Bar&gt; <span>News from the box</span></h1>"),
        "{home}"
    );
    let blog = stranger.page("/blog", 200).await;
    assert_eq!(title_of(&blog), "Blog — Foo &amp; &lt;Bar&gt;");
    let file = stranger.page("/no/such/file.png", 404).await;
    assert_eq!(title_of(&file), "404 Not Found — Foo &amp; &lt;Bar&gt;");
    assert!(file.contains("News from the box"), "{file}");
    assert_eq!(
        app.rows("SELECT `value` FROM `settings` WHERE `key` = 'title'")
            .await,
        ["Foo & <Bar>"]
    );

    // A new process reads them from the database before it reports ready.
    let app = app.restart();
    let signin = app.visitor().page("/signin", 200).await;
    assert_eq!(title_of(&signin), "Sign in — Foo &amp; &lt;Bar&gt;");
    assert!(signin.contains("News from the box"), "{signin}");
}

async fn invalid_settings_are_refused_with_422(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    for (title, tagline, message) in [
        ("   ", "fine", "The title must not be empty."),
        ("Fine", "", "The tagline must not be empty."),
        (
            &"t".repeat(81),
            "fine",
            "The title may have at most 80 characters.",
        ),
        (
            "Fine",
            &"é".repeat(201),
            "The tagline may have at most 200 characters.",
        ),
        ("Two\nlines", "fine", "The title must be one line of text."),
    ] {
        let response = save(&app, title, tagline).await;
        assert_eq!(response.status().as_u16(), 422, "{title:?} {tagline:?}");
        let page = response.text().await.expect("body");
        assert!(page.contains(message), "{message}: {page}");
        assert!(page.contains("Nothing was saved"), "{page}");
    }
    assert!(app.rows("SELECT `value` FROM `settings`").await.is_empty());
    let page = app.visitor().page("/signin", 200).await;
    assert_eq!(title_of(&page), "Sign in — foobar.com");
    // At the limits: accepted.
    let response = save(&app, &"é".repeat(80), &"t".repeat(200)).await;
    assert_eq!(response.status().as_u16(), 303);
}

async fn only_admins_may_change_the_settings(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    // Not signed in: to the sign-in form, and back here afterwards.
    let stranger = app.visitor();
    let response = stranger.get("/editor/settings").await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        response.headers()["location"],
        "/signin?next=%2Feditor%2Fsettings"
    );
    // An editor: 403, for the page and for the post (with a valid CSRF token).
    let editor = app.visitor();
    editor.sign_in("editor@foobar.com").await;
    let csrf = editor.session_csrf("/signin").await;
    let page = editor.page("/editor/settings", 403).await;
    assert!(page.contains("only an admin may do that"), "{page}");
    let response = editor
        .post(
            "/editor/settings",
            &[("csrf", &csrf), ("title", "Mine now"), ("tagline", "x")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 403);
    assert!(app.rows("SELECT `value` FROM `settings`").await.is_empty());
}

async fn a_failed_save_changes_nothing(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    assert_eq!(
        save(&app, "Before", "the tagline before")
            .await
            .status()
            .as_u16(),
        303
    );
    // The database refuses to store a tagline: the title, written first in the same
    // transaction, must not change either.
    let trigger = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_tagline BEFORE UPDATE ON settings \
             WHEN NEW.`key` = 'tagline' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        }
        Backend::MariaDb => {
            "CREATE TRIGGER refuse_tagline BEFORE UPDATE ON settings FOR EACH ROW \
             BEGIN IF NEW.`key` = 'tagline' THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF; END"
        }
    };
    app.execute(trigger).await;
    let response = save(&app, "After", "the tagline after").await;
    assert_eq!(response.status().as_u16(), 500);
    let mut stored = app
        .rows("SELECT `value` FROM `settings` ORDER BY `key`")
        .await;
    stored.sort();
    assert_eq!(stored, ["Before", "the tagline before"]);
    let page = app.visitor().page("/signin", 200).await;
    assert_eq!(title_of(&page), "Sign in — Before");
}
