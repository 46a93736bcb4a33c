//! [`State`]: what every handler of the application shares; cheap to clone (one reference
//! count).

use std::path::Path;
use std::sync::Arc;

use minijinja::Value;
use serde::Serialize;

use super::auth::{KnownSessions, Throttle};
use super::error::AppError;
use super::health::Health;
use super::metrics::AppMetrics;
use super::pagecache::PageCache;
use super::render::{SiteInfo, TemplateError, Templates, Viewer};
use crate::config::AppConfig;
use crate::db::Db;
use crate::ops::snapshot::{RebuildError, Snapshot};

/// The application's shared state: one allocation shared by every request, so a clone (each
/// middleware layer and handler takes one per request) is a single reference count.
#[derive(Debug, Clone)]
pub struct State(Arc<Shared>);

impl std::ops::Deref for State {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`State`] holds.
#[derive(Debug)]
pub struct Shared {
    /// The database pool.
    pub db: Db,
    /// `[app]` settings.
    pub config: Arc<AppConfig>,
    /// Whether the database answered the watcher's last check.
    pub health: Health,
    /// The compiled page templates (rebuilt by [`State::reload_templates`]).
    pub templates: Snapshot<Templates>,
    /// The site's settings as pages show them (swapped whole when an admin changes them).
    pub site: Snapshot<SiteInfo>,
    /// Failed sign-ins, per client and per e-mail address.
    pub throttle: Arc<Throttle>,
    /// The anonymous public reads, kept for `app.page_cache_ttl`.
    pub pages: Arc<PageCache>,
    /// Sessions found in the database, kept for `app.page_cache_ttl`.
    pub sessions: KnownSessions,
    /// Page-cache and sign-in counters.
    pub metrics: AppMetrics,
}

impl State {
    /// The state for `db` with these settings; `health` is shared with [`super::supervise`].
    /// Compiles the templates: the built-in ones, and the site's own in `templates_dir`.
    pub fn new(
        db: Db,
        config: AppConfig,
        templates_dir: Option<&std::path::Path>,
        health: Health,
    ) -> Result<Self, TemplateError> {
        let (templates, overridden) = Templates::load(templates_dir)?;
        match templates_dir {
            Some(dir) => tracing::info!(
                dir = %dir.display(),
                ?overridden,
                "page templates: built in, and the site's own"
            ),
            None => tracing::info!("page templates: built in"),
        }
        let throttle = Throttle::new(config.signin_max_failures, config.signin_window);
        Ok(Self(Arc::new(Shared {
            db,
            pages: Arc::new(PageCache::new(config.page_cache_ttl)),
            sessions: KnownSessions::new(config.page_cache_ttl),
            config: Arc::new(config),
            health,
            templates: Snapshot::new("templates", templates),
            site: Snapshot::new("settings", SiteInfo::default()),
            throttle: Arc::new(throttle),
            metrics: AppMetrics::default(),
        })))
    }

    /// Compiles the templates again (the built-in ones, and the site's own in `dir`) and swaps
    /// them in (a reload); on error the previous ones stay.
    pub async fn reload_templates(
        &self,
        dir: Option<&Path>,
    ) -> Result<(), RebuildError<TemplateError>> {
        let dir = dir.map(Path::to_owned);
        self.templates
            .rebuild(move |_| Templates::load(dir.as_deref()).map(|(templates, _)| templates))
            .await
            .map(drop)
    }

    /// Renders the page `name` for `viewer` (with the CSRF token its forms carry).
    pub fn page(
        &self,
        name: &str,
        viewer: Option<&Viewer>,
        csrf: Option<&str>,
        data: impl Serialize,
    ) -> Result<String, AppError> {
        self.templates
            .load()
            .page(name, &self.site.load(), viewer, csrf, data)
    }

    /// Renders the page `name` for `viewer` from `data` that is already a template value, as
    /// the page's bytes (see [`Templates::render`]).
    pub fn render(
        &self,
        name: &str,
        viewer: Option<&Viewer>,
        csrf: Option<&str>,
        data: Value,
    ) -> Result<Vec<u8>, AppError> {
        self.templates
            .load()
            .render(name, &self.site.load(), viewer, csrf, data)
    }

    /// The HTML page for an error (`error.html`; plain text if even that fails).
    pub fn error_page(&self, error: &AppError) -> String {
        let status = error.status();
        let data = serde_json::json!({
            "status": status.as_u16(),
            "reason": status.canonical_reason().unwrap_or(""),
            "message": match error {
                AppError::NotFound => "The page you asked for does not exist, or has moved.".to_owned(),
                other => other.to_string(),
            },
        });
        self.page("error.html", None, None, data)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "app: the error page itself failed");
                format!(
                    "{} {}\n",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
            })
    }
}
