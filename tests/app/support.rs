//! What the application tests share: onebox started on either backend ([`App`]), users made
//! with the real command line ([`App::user_add`]), a visitor with a cookie jar speaking HTTPS
//! with the development CA ([`Visitor`]), and a look at the database ([`App::rows`]).
//!
//! Every scenario runs twice, on SQLite and on the suite's MariaDB: [`both!`] turns each
//! `async fn name(backend: Backend)` into `sqlite::name` and `mariadb::name`.

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::CookieStore;
use reqwest::header::{HeaderMap, SET_COOKIE};

use crate::harness::Onebox;
use crate::harness::mariadb::shared;
use crate::web::{Proto, WWW, tls_config};

/// Where the data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A database of its own on the suite's MariaDB.
    MariaDb,
}

/// Runs each listed scenario on both backends: `sqlite::NAME` and `mariadb::NAME`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::app::support::Backend::Sqlite).await;
                }
            )*
        }
        mod mariadb {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::app::support::Backend::MariaDb).await;
                }
            )*
        }
    };
}
pub(crate) use both;

/// The password every test user gets unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery";

/// A running onebox and its database.
pub struct App {
    /// The server.
    pub server: Onebox,
    /// `database.url`.
    pub url: String,
    /// Holds the SQLite file (and outlives a restart).
    dir: Arc<tempfile::TempDir>,
    app: Vec<String>,
}

impl App {
    /// onebox on `backend` with these `[app]` lines, once its database is available.
    pub fn start(backend: Backend, app: &[&str]) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("app.db").display()),
            Backend::MariaDb => shared().create_database(),
        };
        let app = app.iter().map(|line| (*line).to_owned()).collect();
        Self::on(url, dir, app)
    }

    /// Another onebox on the database at `url` (a second box sharing it), default settings.
    pub fn start_on(url: &str) -> Self {
        Self::start_on_with(url, &[])
    }

    /// Another onebox on the database at `url`, with these `[app]` lines.
    pub fn start_on_with(url: &str, app: &[&str]) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let app = app.iter().map(|line| (*line).to_owned()).collect();
        Self::on(url.to_owned(), dir, app)
    }

    fn on(url: String, dir: Arc<tempfile::TempDir>, app: Vec<String>) -> Self {
        let mut builder = Onebox::builder().shipped_zones().database(&url);
        for line in &app {
            builder = builder.app(line);
        }
        let server = builder.start();
        server.wait_database();
        Self {
            server,
            url,
            dir,
            app,
        }
    }

    /// Stops this onebox and starts another on the same database and settings.
    pub fn restart(self) -> Self {
        let Self {
            mut server,
            url,
            dir,
            app,
        } = self;
        server.terminate();
        drop(server);
        Self::on(url, dir, app)
    }

    /// Runs `onebox ARGS` with this server's config, `stdin` as standard input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        crate::harness::onebox::cli(&self.server.config, self.dir.path(), args, stdin)
    }

    /// Runs `onebox ARGS` on a terminal of its own (`script` makes one), `typed` as what is
    /// typed on it. Returns its exit status and the terminal's text.
    pub fn cli_on_terminal(&self, args: &[&str], typed: &str) -> (Option<i32>, String) {
        let command = std::iter::once(env!("CARGO_BIN_EXE_onebox").to_owned())
            .chain([
                "--config".to_owned(),
                self.server.config.display().to_string(),
            ])
            .chain(args.iter().map(|a| (*a).to_owned()))
            .map(|word| format!("'{word}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = std::process::Command::new("script");
        script
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .current_dir(self.dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ONEBOX_") {
                script.env_remove(key);
            }
        }
        let mut child = script
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script (util-linux)");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(typed.as_bytes()).expect("type");
        }
        let out = child.wait_with_output().expect("script exits");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `onebox user add --email EMAIL EXTRA...` with [`PASSWORD`] piped in; asserts success.
    pub fn user_add(&self, email: &str, extra: &[&str]) {
        let mut args = vec!["user", "add", "--email", email];
        args.extend_from_slice(extra);
        let out = self.cli(&args, &format!("{PASSWORD}\n"));
        assert!(
            out.status.success(),
            "onebox user add {email}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An admin (`admin@foobar.com`) and an editor (`editor@foobar.com`).
    pub fn with_users(self) -> Self {
        self.user_add("admin@foobar.com", &["--admin", "--name", "Ada Admin"]);
        self.user_add("editor@foobar.com", &["--name", "Ed Editor"]);
        self
    }

    /// A new visitor (empty cookie jar).
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.server)
    }

    /// The single text column of every row `query` returns (quote identifiers with backticks:
    /// both SQLite and MariaDB read them).
    pub async fn rows(&self, query: &str) -> Vec<String> {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect(&self.url)
            .await
            .expect("open the database");
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                query.to_owned(),
            ))
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let values = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("a text column"))
            .collect();
        db.close().await.expect("close");
        values
    }

    /// Runs `statement` on the database.
    pub async fn execute(&self, statement: &str) {
        use sea_orm::{ConnectionTrait, Database};
        let db = Database::connect(&self.url)
            .await
            .expect("open the database");
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        db.close().await.expect("close");
    }
}

/// A browser, more or less: a cookie jar, no redirects followed, HTTPS trusting the dev CA.
pub struct Visitor {
    /// The client (with the jar).
    pub client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    base: String,
}

impl Visitor {
    fn new(server: &Onebox) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&server.ca(), Proto::H1))
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .no_proxy()
            .resolve(WWW, server.https)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            client,
            jar,
            base: format!("https://{WWW}:{}", server.https.port()),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GET `path` and its body; asserts the status.
    pub async fn page(&self, path: &str, status: u16) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        response.text().await.expect("body")
    }

    /// POST the form `fields` to `path`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = serde_urlencoded::to_string(fields).expect("form");
        self.client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// The sign-in form's CSRF token, from `GET /signin?next=…`.
    pub async fn signin_csrf(&self, next: &str) -> String {
        let page = self
            .page(&format!("/signin?next={}", encode(next)), 200)
            .await;
        let form = page
            .split("action=\"/signin\"")
            .nth(1)
            .expect("a sign-in form");
        field(form, "csrf")
    }

    /// Fetches the form, then posts `email` and `password` with its CSRF token and `next`.
    pub async fn sign_in_to(&self, email: &str, password: &str, next: &str) -> reqwest::Response {
        let csrf = self.signin_csrf(next).await;
        self.post(
            "/signin",
            &[
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
                ("next", next),
            ],
        )
        .await
    }

    /// Signs in with [`PASSWORD`]; asserts the 303.
    pub async fn sign_in(&self, email: &str) {
        let response = self.sign_in_to(email, PASSWORD, "/editor").await;
        assert_eq!(response.status().as_u16(), 303, "sign in as {email}");
    }

    /// The value of cookie `name` in the jar (for the site), if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.url("/").parse().expect("url");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().ok()?.to_owned();
        header
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }

    /// The CSRF token of the signed-in visitor's forms (from the page at `path`).
    pub async fn session_csrf(&self, path: &str) -> String {
        field(&self.page(path, 200).await, "csrf")
    }
}

/// The value of the first `<input name="NAME" value="…">` in `html`.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .expect("encode")
        .trim_start_matches('=')
        .to_owned()
}

/// Every `Set-Cookie` header of a response whose cookie is `name`.
pub fn set_cookies(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect()
}

/// A client with no cookie jar, for requests that carry exactly the cookie a test gives.
pub fn bare_client(app: &App) -> reqwest::Client {
    crate::web::client(&app.server, Proto::H1)
}

/// The SHA-256 of `text`, hex (what the database keeps of a token).
pub fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
