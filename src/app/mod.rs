//! The application: dynamic pages and the JSON API of foobar.com, over the data layer.
//!
//! Its public face is small: [`router`] builds an `axum::Router` (plain `http` types, no
//! server: the web origin serves it for the paths in [`PATHS`]), and [`supervise`] watches the
//! database, applies migrations when it can, and reports readiness.
//!
//! - `state`: what every handler shares ([`State`]): the pool, settings, templates;
//! - `error`: [`AppError`], the one way a handler fails, rendered as an HTML page or as JSON;
//! - `auth`: users, sessions, CSRF and sign-in;
//! - `users`: the rules for adding users and issuing API tokens (`onebox user`);
//! - `settings`: the site's title and tagline, edited by an admin, shown on every page;
//! - `health`: the database watcher behind `/readyz` and the fast 503;
//! - `render`: pages from the templates in `site/.templates/`;
//! - `posts`: the blog's pages, the posts API and the editor; `markdown` renders and
//!   sanitises their bodies, `cache` sets what browsers may keep of public reads, and
//!   `pagecache` keeps anonymous public reads for a second (invalidated by every write).
//!
//! The application uses `db` and `config`; it never touches sockets, TLS or DNS.

pub mod auth;
mod cache;
mod error;
mod health;
mod json;
mod markdown;
mod pagecache;
mod posts;
mod render;
mod settings;
mod state;
pub mod users;

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use error::AppError;
pub use health::{Health, supervise};
pub use render::{SiteInfo, TemplateError, Viewer};
pub use state::State;

/// Compiles the page templates (the built-in ones, and the site's own in `dir`) as `serve`
/// would, for `onebox check`.
pub fn check_templates(dir: Option<&std::path::Path>) -> Result<(), TemplateError> {
    render::Templates::load(dir).map(drop)
}

/// The paths the application answers, each with everything below it. Everything else is the
/// web origin's static files.
pub const PATHS: &[&str] = &["/blog", "/api", "/signin", "/signout", "/editor"];

/// Whether `path` belongs to the application.
pub fn owns(path: &str) -> bool {
    PATHS.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The application's routes. In front of them, outermost first: errors rendered (JSON under
/// `/api/`, a page elsewhere), the request deadline, the database check, the micro-cache of
/// public reads.
pub fn router(state: State) -> Router {
    let timeout = state.config.request_timeout;
    Router::new()
        .merge(auth::routes())
        .merge(settings::routes())
        .merge(posts::routes())
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pagecache::layer,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), available))
        .layer(middleware::from_fn(move |request, next| {
            deadline(timeout, request, next)
        }))
        .layer(middleware::from_fn_with_state(state.clone(), error::render))
        .with_state(state)
}

/// 503 at once while the database is known to be down (the watcher checks every second).
async fn available(
    axum::extract::State(state): axum::extract::State<State>,
    request: Request,
    next: Next,
) -> Response {
    if !state.health.is_up() {
        return AppError::Unavailable.into_response();
    }
    next.run(request).await
}

/// 503 for a request not answered within `app.request_timeout` (a slow or vanishing database).
async fn deadline(timeout: Duration, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                path,
                timeout_ms = timeout.as_millis(),
                "app: request timed out"
            );
            AppError::Unavailable.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_paths() {
        for path in [
            "/blog",
            "/blog/",
            "/blog/hello",
            "/api/posts",
            "/api",
            "/signin",
            "/editor/",
        ] {
            assert!(owns(path), "{path}");
        }
        for path in [
            "/",
            "/index.html",
            "/blogs",
            "/style.css",
            "/apis",
            "/signinx",
        ] {
            assert!(!owns(path), "{path}");
        }
    }
}
