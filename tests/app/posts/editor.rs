//! The editor area as a signed-in browser uses it: every page needs the session, every form
//! post the session's CSRF token; a good post answers 303, a bad one shows the form again with
//! a message per field; publish, unpublish and delete (after a confirmation page) show on the
//! public blog at once.

use reqwest::StatusCode;

use super::{App, Backend, User, both, text_of};

both!(
    editor_needs_a_session_and_csrf,
    an_admin_changes_anyones_post_an_editor_only_their_own,
    editor_writes_publishes_and_deletes
);

/// A browser with `user`'s session.
struct Browser<'a> {
    app: &'a App,
    cookie: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a App, user: &User) -> Self {
        Self {
            app,
            cookie: format!("__Host-onebox_session={}", user.session),
            csrf: user.csrf.clone(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .app
            .client()
            .get(self.app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get");
        text_of(response).await
    }

    /// Posts the form `fields` with the session's CSRF token (or `csrf` if given).
    async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut all = vec![("csrf", csrf.unwrap_or(&self.csrf))];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).expect("form");
        let response = self
            .app
            .client()
            .post(self.app.url(path))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post");
        text_of(response).await
    }
}

async fn editor_needs_a_session_and_csrf(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let bob = app.user("Bob", "editor").await;
    for path in ["/editor", "/editor/new", "/editor/posts/1"] {
        let (status, headers, _) = app.get(path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        let location = headers["location"].to_str().expect("location");
        assert!(location.starts_with("/signin?next=%2Feditor"), "{location}");
    }
    let browser = Browser::new(&app, &ada);
    let fields = [("title", "Forged"), ("body_markdown", "x")];
    for csrf in ["", "wrong"] {
        let (status, _, _) = browser.post("/editor/new", &fields, Some(csrf)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "csrf={csrf:?}");
    }
    let (_, _, list) = browser.get("/editor").await;
    assert!(list.contains("No posts yet"), "nothing was written: {list}");

    // Bob's post: Ada sees it in the list, but may not open, change or delete it.
    let bobs = app.post(&bob, "bobs", "Bob's post", "x", "published").await;
    assert_eq!(bobs["author"], "Bob");
    let (_, headers, list) = browser.get("/editor").await;
    assert_eq!(headers["cache-control"], "private, no-store");
    assert!(
        list.contains("Bob&#x27;s post") || list.contains("Bob's post"),
        "{list}"
    );
    assert!(
        !list.contains("/editor/posts/"),
        "no edit links for Bob's post: {list}"
    );
    let id = bob_post_id(&app).await;
    for path in [
        format!("/editor/posts/{id}"),
        format!("/editor/posts/{id}/delete"),
    ] {
        let (status, _, _) = browser.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _, _) = browser
        .post(&format!("/editor/posts/{id}/delete"), &[], None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app.get("/blog/bobs").await;
    assert_eq!(status, StatusCode::OK, "still there");
}

/// The rule for changing a post, through the pages: an editor may change only their own posts
/// (no links to others', 403 on a forged request), an admin anyone's; only an admin is offered
/// the site's settings.
async fn an_admin_changes_anyones_post_an_editor_only_their_own(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let bob = app.user("Bob", "editor").await;
    let root = app.user("Root", "admin").await;
    app.post(&bob, "bobs", "Bob's post", "x", "published").await;
    let id = bob_post_id(&app).await;
    let edit = format!("/editor/posts/{id}");

    let ada = Browser::new(&app, &ada);
    let (_, _, list) = ada.get("/editor").await;
    assert!(!list.contains("/editor/settings"), "{list}");
    assert!(!list.contains(&edit), "{list}");
    assert!(!list.contains("/unpublish\""), "{list}");
    let (status, _, _) = ada.post(&format!("{edit}/unpublish"), &[], None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app.get("/blog/bobs").await;
    assert_eq!(status, StatusCode::OK, "still published");

    let bob = Browser::new(&app, &bob);
    let (_, _, list) = bob.get("/editor").await;
    assert!(!list.contains("/editor/settings"), "{list}");
    assert!(list.contains(&format!("href=\"{edit}\"")), "{list}");

    let root = Browser::new(&app, &root);
    let (_, _, list) = root.get("/editor").await;
    assert!(list.contains("href=\"/editor/settings\""), "{list}");
    assert!(list.contains(&format!("href=\"{edit}\"")), "{list}");
    assert!(
        list.contains(&format!("action=\"{edit}/unpublish\"")),
        "a published post offers Unpublish: {list}"
    );
    let (status, _, form) = root.get(&edit).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        form.contains("<option value=\"published\" selected>"),
        "{form}"
    );
    let (status, _, _) = root.post(&format!("{edit}/unpublish"), &[], None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = app.get("/blog/bobs").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the admin unpublished it");
    let (_, _, list) = root.get("/editor").await;
    assert!(
        list.contains(&format!("action=\"{edit}/publish\"")),
        "a draft offers Publish: {list}"
    );
    let (status, _, form) = root.get(&edit).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("<option value=\"draft\" selected>"), "{form}");
    let (status, _, _) = root.get("/editor/settings").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = ada.get("/editor/settings").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The row id of the only post (through the data layer: the editor's URLs use ids).
async fn bob_post_id(app: &App) -> i64 {
    onebox::db::posts::by_slug(&app.db, "bobs")
        .await
        .expect("read")
        .expect("exists")
        .id
}

async fn editor_writes_publishes_and_deletes(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let browser = Browser::new(&app, &ada);

    let (status, _, form) = browser.get("/editor/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        form.contains(&format!("name=\"csrf\" value=\"{}\"", ada.csrf)),
        "the form carries the token: {form}"
    );

    // Bad fields: the form again, 422, each message, what was typed kept.
    let (status, _, form) = browser
        .post(
            "/editor/new",
            &[
                ("title", "Kept title"),
                ("slug", "Bad Slug"),
                ("body_markdown", "kept body"),
                ("status", "draft"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        form.contains("<p class=\"error\">must be lower-case"),
        "{form}"
    );
    assert!(form.contains("value=\"Kept title\""), "{form}");
    assert!(form.contains(">\nkept body</textarea>"), "{form}");

    // A draft, its slug made from the title.
    let (status, headers, _) = browser
        .post(
            "/editor/new",
            &[
                ("title", "Hello, Editor!"),
                ("slug", ""),
                ("body_markdown", "First *words*"),
                ("status", "draft"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().expect("location").to_owned();
    assert!(
        location.starts_with("/editor/posts/") && location.ends_with("?done=created"),
        "{location}"
    );
    let edit = location.split('?').next().expect("path").to_owned();
    let (status, _, form) = browser.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("Post created."), "{form}");
    assert!(form.contains("value=\"hello-editor\""), "{form}");
    let (status, _, _) = app.get("/blog/hello-editor").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a draft is not public");

    // A duplicate slug: 409, the form again.
    app.post(&ada, "taken", "Taken", "x", "draft").await;
    let (status, _, form) = browser
        .post(
            &edit,
            &[
                ("title", "Hello, Editor!"),
                ("slug", "taken"),
                ("body_markdown", "First *words*"),
                ("status", "draft"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        form.contains("another post already has this slug"),
        "{form}"
    );

    // Publish from the list, then it is on the blog.
    let id = edit.trim_start_matches("/editor/posts/");
    let (status, headers, _) = browser
        .post(&format!("/editor/posts/{id}/publish"), &[], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/editor?done=published");
    let (status, _, page) = app.get("/blog/hello-editor").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<p>First <em>words</em></p>"), "{page}");
    let (_, _, list) = browser.get("/editor?done=published").await;
    assert!(list.contains("Post published."), "{list}");
    assert!(list.contains("badge published"), "{list}");

    // Edit and save.
    let (status, headers, _) = browser
        .post(
            &edit,
            &[
                ("title", "Hello again"),
                ("slug", "hello-editor"),
                ("body_markdown", "Changed"),
                ("status", "published"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], format!("{edit}?done=saved").as_str());
    let (_, _, page) = app.get("/blog/hello-editor").await;
    assert!(page.contains("<h1>Hello again</h1>"), "{page}");

    // Unpublish: gone from the blog.
    let (status, _, _) = browser
        .post(&format!("/editor/posts/{id}/unpublish"), &[], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = app.get("/blog/hello-editor").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete: a confirmation page first, then the post is gone.
    let (status, _, confirm) = browser.get(&format!("/editor/posts/{id}/delete")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Delete “Hello again”?"), "{confirm}");
    assert!(
        confirm.contains(&format!("action=\"/editor/posts/{id}/delete\"")),
        "{confirm}"
    );
    let (status, headers, _) = browser
        .post(&format!("/editor/posts/{id}/delete"), &[], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/editor?done=deleted");
    let (status, _, _) = browser.get(&edit).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, list) = browser.get("/editor?done=deleted").await;
    assert!(list.contains("Post deleted."), "{list}");
    assert!(!list.contains("Hello again"), "{list}");
}
