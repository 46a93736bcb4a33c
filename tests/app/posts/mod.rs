//! Posts (issue 4), end to end: the real binary on SQLite and on MariaDB, reqwest over HTTPS
//! with the development CA, as a reader, an API client and an editor's browser.
//!
//! Every test here runs twice, once per database ([`on_both!`]): on SQLite (the file in the
//! test's own state directory) and on a fresh database of the suite's MariaDB
//! ([`crate::harness::mariadb::shared`]).
//!
//! Users and their sessions are written straight into the database through onebox's own data
//! layer (the sign-in form is not what these tests are about); posts are written through the
//! API, as a client would.
//!
//! - `data`: the posts queries (`onebox::db::posts`) against each database, without a server;
//! - `api`: `/api/posts`, reads and writes, errors and their JSON;
//! - `pages`: `/blog`, `/blog/{slug}`: pagination, drafts, sanitised Markdown, caching;
//! - `editor`: `/editor`, its forms, CSRF and redirects.

mod api;
mod data;
mod editor;
mod pages;

use onebox::db::Db;
use onebox::db::entity::{session, user};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue};
use serde_json::Value;

use crate::harness::{Onebox, mariadb};
use crate::web::{Proto, WWW, client};

/// Runs each named `async fn(Backend)` as two tests, `sqlite::name` and `mariadb::name`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::app::posts::Backend::Sqlite).await
                }
            )*
        }
        mod mariadb {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::app::posts::Backend::Mariadb).await
                }
            )*
        }
    };
}
pub(crate) use on_both;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// onebox's default: a SQLite file in its state directory.
    Sqlite,
    /// A fresh database on the suite's MariaDB.
    Mariadb,
}

/// onebox's data layer on `url`, with the schema applied.
pub async fn connect(url: &str) -> Db {
    let mut config = onebox::config::Config::default();
    config.database.url = url.to_owned();
    let db = Db::connect(&config).await.expect("connect");
    db.migrate_up(None).await.expect("migrate");
    db
}

/// A running onebox on one database, with the handle the test uses to add users.
pub struct App {
    /// The server.
    pub server: Onebox,
    /// The same database, through onebox's data layer.
    pub db: Db,
}

/// A user the test added, with credentials for both doors.
pub struct User {
    /// The API token (`Authorization: Bearer`).
    pub token: String,
    /// The session cookie's token.
    pub session: String,
    /// The session's CSRF token.
    pub csrf: String,
}

impl App {
    /// Starts onebox on a fresh database of `backend` and waits until it is ready (the
    /// database reachable, its schema applied by onebox itself).
    pub async fn start(backend: Backend) -> Self {
        let mut builder = Onebox::builder().shipped_zones();
        let mariadb = match backend {
            Backend::Sqlite => None,
            Backend::Mariadb => Some(mariadb::shared().create_database()),
        };
        if let Some(url) = &mariadb {
            builder = builder.database(url);
        }
        let server = builder.start();
        let database = mariadb.unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                server.dir.path().join("state/onebox.db").display()
            )
        });
        server.wait_database();
        let db = connect(&database).await;
        Self { server, db }
    }

    /// An anonymous HTTPS client (HTTP/1.1, no redirects followed).
    pub fn client(&self) -> reqwest::Client {
        client(&self.server, Proto::H1)
    }

    /// `https://www.foobar.com:port{path}`.
    pub fn url(&self, path: &str) -> String {
        crate::web::url(&self.server, WWW, path)
    }

    /// Adds a user (`role`: `editor` or `admin`) with an API token and a live session.
    pub async fn user(&self, name: &str, role: &str) -> User {
        let now = chrono::Utc::now().naive_utc();
        let token = format!("api-{name}-{}", std::process::id());
        let added = user::ActiveModel {
            id: ActiveValue::NotSet,
            email: ActiveValue::Set(format!("{}@foobar.com", name.to_lowercase())),
            display_name: ActiveValue::Set(name.to_owned()),
            password_hash: ActiveValue::Set("!".to_owned()),
            role: ActiveValue::Set(role.to_owned()),
            api_token_hash: ActiveValue::Set(Some(onebox::app::auth::token::digest(&token))),
            created_at: ActiveValue::Set(now),
            updated_at: ActiveValue::Set(now),
        }
        .insert(self.db.conn())
        .await
        .expect("insert user");
        let session = format!("session-{name}-{}", std::process::id());
        let csrf = format!("csrf-{name}");
        session::ActiveModel {
            id: ActiveValue::Set(onebox::app::auth::token::digest(&session)),
            user_id: ActiveValue::Set(added.id),
            csrf_token: ActiveValue::Set(csrf.clone()),
            created_at: ActiveValue::Set(now),
            expires_at: ActiveValue::Set(now + chrono::Duration::hours(1)),
        }
        .insert(self.db.conn())
        .await
        .expect("insert session");
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
