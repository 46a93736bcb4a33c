//! The `mariadb` client as the harness uses it, and server URLs as sqlx reads them: how the
//! harness creates databases and how tests look into one by its URL, over TCP with the URL's
//! credentials, exactly as onebox connects.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{find, search_dirs};

/// What the suite says when the `mariadb` client is missing.
pub const NO_CLIENT: &str =
    "no MariaDB client for the tests: install mariadb-client (apt-get install mariadb-client)";

/// A server URL taken apart, as sqlx reads it: `mysql://user:password@host:port/database?…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `mysql://user:password@host:port` exactly as given (still percent-encoded).
    pub base: String,
    /// The user (decoded; `root` when the URL names none).
    pub user: String,
    /// The password (decoded), if any.
    pub password: Option<String>,
    /// The host (brackets of an IPv6 literal removed).
    pub host: String,
    /// The port (3306 when the URL names none).
    pub port: u16,
    /// The database (empty when the URL names none).
    pub database: String,
    /// `?…` as given, or empty.
    pub query: String,
}

impl ServerUrl {
    /// Parses `url` (`mysql://` or `mariadb://`).
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("not a MySQL URL ({why}): {}", mask(url));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "mysql" && scheme != "mariadb" {
            return Err(bad("scheme is not mysql://"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (decode(user)?, Some(decode(password)?)),
                None => (decode(info)?, None),
            },
            None => ("root".to_owned(), None),
        };
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
                (host, after.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            },
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(port) => port.parse().map_err(|_| bad("bad port"))?,
            None => 3306,
        };
        Ok(Self {
            base: format!("{scheme}://{authority}"),
            user: if user.is_empty() {
                "root".to_owned()
            } else {
                user
            },
            password,
            host: host.to_owned(),
            port,
            database: decode(path.trim_start_matches('/'))?,
            query: query.to_owned(),
        })
    }

    /// The URL of `database` on this server (the query string kept).
    pub fn with_database(&self, database: &str) -> String {
        format!("{}/{database}{}", self.base, self.query)
    }
}

fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("percent-encoding is not UTF-8 in {text:?}"))
}

/// `url` with its password replaced, for messages.
pub(super) fn mask(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => match url[start + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// How the client reaches a server.
#[derive(Debug, Clone)]
pub(super) enum Route {
    /// A throwaway server's socket, as root.
    Socket(PathBuf),
    /// TCP with the credentials of a URL.
    Tcp(ServerUrl),
}

/// Runs `statements` with the client over `route` (in `database` if given). Ok is the output,
/// tab-separated without column names; Err is the client's error message.
pub(super) fn client_sql(
    client: &Path,
    route: &Route,
    database: Option<&str>,
    statements: &str,
) -> Result<String, String> {
    let mut command = Command::new(client);
    command.args([
        "--no-defaults",
        "--batch",
        "--skip-column-names",
        "--connect-timeout=5",
    ]);
    for var in [
        "MYSQL_PWD",
        "MYSQL_HOST",
        "MYSQL_TCP_PORT",
        "MYSQL_UNIX_PORT",
    ] {
        command.env_remove(var);
    }
    match route {
        Route::Socket(socket) => {
            command
                .arg(format!("--socket={}", socket.display()))
                .arg("--user=root");
        }
        Route::Tcp(url) => {
            command
                .arg("--protocol=TCP")
                .arg(format!("--host={}", url.host))
                .arg(format!("--port={}", url.port))
                .arg(format!("--user={}", url.user));
            if let Some(password) = &url.password {
                // Not on the command line, where `ps` would show it.
                command.env("MYSQL_PWD", password);
            }
        }
    }
    if let Some(database) = database.filter(|d| !d.is_empty()) {
        command.arg(format!("--database={database}"));
    }
    let output = command
        .arg("--execute")
        .arg(statements)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e} ({NO_CLIENT})", client.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// The client program, for [`sql`] (found once; panics with [`NO_CLIENT`] without one).
pub(super) fn client() -> &'static Path {
    static CLIENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    CLIENT
        .get_or_init(|| find(&search_dirs(), &["mariadb", "mysql"]))
        .as_deref()
        .unwrap_or_else(|| panic!("{NO_CLIENT}"))
}

/// Runs `statements` (one or more, `;`-separated) in the database of `url`, over TCP with the
/// URL's credentials. Ok is the output (rows as tab-separated lines, no column names).
pub fn try_sql(url: &str, statements: &str) -> Result<String, String> {
    let url = ServerUrl::parse(url)?;
    client_sql(
        client(),
        &Route::Tcp(url.clone()),
        Some(&url.database),
        statements,
    )
}

/// [`try_sql`], panicking on an error.
pub fn sql(url: &str, statements: &str) -> String {
    try_sql(url, statements)
        .unwrap_or_else(|e| panic!("{statements}\nfailed on {}: {e}", mask(url)))
}

/// The database part of `url`.
pub fn database_name(url: &str) -> String {
    ServerUrl::parse(url)
        .map(|u| u.database)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A database name no other test, in this process or another, has taken.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh utf8mb4 database through `route`; returns its name.
pub(super) fn create_database(client: &Path, route: &Route) -> String {
    let name = unique_name();
    client_sql(
        client,
        route,
        None,
        &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
    )
    .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    name
}
