//! [`State`]: what every handler of the application shares; cheap to clone.

use std::sync::Arc;

use super::error::AppError;
use super::health::Health;
use crate::config::AppConfig;
use crate::db::Db;

/// The application's shared state.
#[derive(Debug, Clone)]
pub struct State {
    /// The database pool.
    pub db: Db,
    /// `[app]` settings.
    pub config: Arc<AppConfig>,
    /// Whether the database answered the watcher's last check.
    pub health: Health,
}

impl State {
    /// The state for `db` with these settings; `health` is shared with [`super::supervise`].
    pub fn new(db: Db, config: AppConfig, health: Health) -> Self {
        Self {
            db,
            config: Arc::new(config),
            health,
        }
    }

    /// The HTML page for an error.
    pub fn error_page(&self, error: &AppError) -> String {
        let status = error.status();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {reason}</title>\
             <link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><main><h1>{code} {reason}</h1>\
             <p>{message}</p><p><a href=\"/\">Home</a></p></main></body></html>\n",
            code = status.as_u16(),
            reason = status.canonical_reason().unwrap_or(""),
            message = escape(&error.to_string()),
        )
    }
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
