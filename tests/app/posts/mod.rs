//! Posts (issue 4), end to end: the real binary on SQLite and on MariaDB, reqwest over HTTPS
//! with the development CA, as a reader, an API client and an editor's browser.
//!
//! Every test here runs twice, once per database ([`both!`]): on SQLite and on a fresh database
//! of the suite's MariaDB, started by [`support::App`]. Users are made with the real command
//! line (`onebox user add`, `onebox user token`) and sign in through `/signin`; posts are
//! written through the API, as a client would.
//!
//! - `data`: the posts queries (`onebox::db::posts`) against each database, without a server;
//! - `api`: `/api/posts`, reads and writes, errors and their JSON;
//! - `pages`: `/blog`, `/blog/{slug}`: pagination, drafts, sanitised Markdown, caching;
//! - `editor`: `/editor`, its forms, CSRF and redirects;
//! - `images`: images uploaded for posts, through the API and the editor, and served.

mod api;
mod data;
mod editor;
pub(crate) mod images;
mod pages;

use onebox::app::auth::SESSION_COOKIE;
use onebox::db::Db;
use reqwest::StatusCode;
use serde_json::Value;

use super::support::{self, Backend, both};
use crate::web::{Proto, WWW, client};

/// onebox's data layer on `url`, with the schema applied.
pub async fn connect(url: &str) -> Db {
    let mut config = onebox::config::Config::default();
    config.database.url = url.to_owned();
    let db = Db::connect(&config).await.expect("connect");
    db.migrate_up(None).await.expect("migrate");
    db
}

/// A running onebox on one database, and that database through onebox's data layer.
pub struct App {
    /// The server, its database and its command line.
    pub app: support::App,
    /// The same database, through onebox's data layer.
    pub db: Db,
}

/// A user the test added, with credentials for both doors.
pub struct User {
    /// The API token (`Authorization: Bearer`), from `onebox user token`.
    pub token: String,
    /// The session cookie's token, from signing in.
    pub session: String,
    /// The session's CSRF token, from a page's form.
    pub csrf: String,
}

impl App {
    /// Starts onebox on a fresh database of `backend`, ready (database reachable, schema
    /// applied by onebox itself).
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// As [`App::start`], with these `[app]` lines.
    pub async fn start_with(backend: Backend, settings: &[&str]) -> Self {
        let app = support::App::start(backend, settings);
        let db = connect(&app.url).await;
        Self { app, db }
    }

    /// An anonymous HTTPS client (HTTP/1.1, no redirects followed).
    pub fn client(&self) -> reqwest::Client {
        client(&self.app.server, Proto::H1)
    }

    /// `https://www.foobar.com:port{path}`.
    pub fn url(&self, path: &str) -> String {
        crate::web::url(&self.app.server, WWW, path)
    }

    /// Adds a user (`role`: `editor` or `admin`) with `onebox user add`, issues their API
    /// token with `onebox user token`, and signs them in.
    pub async fn user(&self, name: &str, role: &str) -> User {
        let email = format!("{}@foobar.com", name.to_lowercase());
        let mut extra = vec!["--name", name];
        if role == "admin" {
            extra.push("--admin");
        }
        self.app.user_add(&email, &extra);
        let issued = self.app.cli(&["user", "token", "--email", &email], "");
        assert!(
            issued.status.success(),
            "onebox user token: {}",
            String::from_utf8_lossy(&issued.stderr)
        );
        let token = String::from_utf8_lossy(&issued.stdout).trim().to_owned();
        let browser = self.app.visitor();
        browser.sign_in(&email).await;
        let session = browser.cookie(SESSION_COOKIE).expect("a session cookie");
        let csrf = browser.session_csrf("/editor").await;
        User {
            token,
            session,
            csrf,
        }
    }

    /// Sends `method path` with an optional JSON `body` and the user's API token; returns the
    /// status, headers and body parsed as JSON (`Value::Null` for an empty body).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&User>,
        body: Option<&Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client().request(method, self.url(path));
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        json_of(response).await
    }

    /// Creates a post through the API as `user`; panics unless it is 201.
    pub async fn post(
        &self,
        user: &User,
        slug: &str,
        title: &str,
        body: &str,
        status: &str,
    ) -> Value {
        let document = serde_json::json!({
            "slug": slug, "title": title, "body_markdown": body, "status": status,
        });
        let (code, _, post) = self
            .api(
                reqwest::Method::POST,
                "/api/posts",
                Some(user),
                Some(&document),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{post}");
        post
    }

    /// `GET path` as an anonymous reader: status, headers, body as text.
    pub async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self.client().get(self.url(path)).send().await.expect("get");
        text_of(response).await
    }
}

/// Status, headers and the body as JSON (`Null` if empty); panics if it is not JSON.
pub async fn json_of(
    response: reqwest::Response,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{status}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, headers, body)
}

/// Status, headers and the body as text.
pub async fn text_of(
    response: reqwest::Response,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    (status, headers, body)
}

/// The error document's parts: status and the fields' messages.
pub fn error_of(body: &Value) -> (u64, serde_json::Map<String, Value>) {
    let status = body["error"]["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("not an error document: {body}"));
    let fields = body["error"]["fields"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    (status, fields)
}
