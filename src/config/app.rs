//! `[app]`: the application behind `/blog`, `/api/`, the sign-in and the editor.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[app]`: the application behind `/blog`, `/api/`, the sign-in and the editor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// Run the application (its pages, API and database). Off, onebox is DNS and the static
    /// site alone: no database is opened and every path is the site's files.
    pub enabled: bool,
    /// A dynamic request not answered within this time gets 503 (the database is slow or down).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// The site's own page templates (MiniJinja), each replacing the built-in one of the same
    /// name. Empty: `.templates` in `web.site_dir` if there is one — under the web root, so
    /// the site's look is one code base, but a dot-directory, never served as files.
    pub templates_dir: PathBuf,
    /// Posts per page on `/blog` and in `/api/posts`.
    pub posts_per_page: u64,
    /// A session ends this long after sign-in.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Anonymous reads of the public pages and `/api/posts` are kept in memory until a write:
    /// one through this process invalidates them at once, one through another box sharing the
    /// database within this time (the pages' generation is read from the database at most once
    /// per TTL). Sessions found in the database are kept as long (one ended through another box
    /// shows there within it). `0s` turns both off.
    #[serde(with = "humantime_serde")]
    pub page_cache_ttl: Duration,
    /// Failed sign-ins a client address (IPv6: its /64) or an e-mail address may have within
    /// `signin_window`; beyond, sign-ins for it get 429 until the window ends.
    pub signin_max_failures: u32,
    /// The window over which failed sign-ins are counted, from the first failure; also how
    /// long, at most, a throttled client or address waits.
    #[serde(with = "humantime_serde")]
    pub signin_window: Duration,
    /// The largest image an editor may upload, in bytes (at most 16 MiB, and no more than
    /// `web.max_body_bytes`, which bounds every request body).
    pub image_max_bytes: u64,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            request_timeout: Duration::from_secs(2),
            templates_dir: PathBuf::new(),
            posts_per_page: 10,
            session_ttl: Duration::from_secs(12 * 3600),
            page_cache_ttl: Duration::from_secs(1),
            signin_max_failures: 5,
            signin_window: Duration::from_secs(15 * 60),
            image_max_bytes: 1024 * 1024,
        }
    }
}
