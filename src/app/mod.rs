//! The application: the site's pages, the blog, its editor and the JSON API, over the data
//! layer.
//!
//! Its public face is small: [`router`] builds the [`Router`] the web origin hands every
//! request to (what the route table does not hold goes back to the web origin's static files,
//! as the router's fallback), and [`supervise`] watches the database, applies migrations when
//! it can, and reports readiness.
//!
//! - `routes`: the route table — each group of routes with its properties (errors as a page or
//!   as JSON, publicly cacheable or not, needs the database) — and the [`Router`];
//! - `state`: what every handler shares ([`State`]): the pool, settings, templates;
//! - `error`: [`AppError`], the one way a handler fails, rendered as its group says;
//! - `auth`: users, sessions, CSRF and sign-in;
//! - `users`: the rules for adding users and issuing API tokens (`onebox user`);
//! - `settings`: the site's title and tagline, edited by an admin, shown on every page;
//! - `health`: the database watcher behind `/readyz` and the fast 503;
//! - `render`: pages from the templates (built in, or the site's own);
//! - `posts`: the home page, the blog's pages, the posts API and the editor; `markdown`
//!   renders and sanitises their bodies, `cache` sets what browsers may keep of public reads,
//!   and `pagecache` keeps anonymous public reads until a write (on another box sharing the
//!   database: seen within `app.page_cache_ttl`, through the pages' generation in it);
//! - `feeds`: what machines read: the Atom feed, `sitemap.xml`, `robots.txt`;
//! - `images`: images in posts, uploaded by editors, stored in the database, served for good;
//! - `metrics`: page-cache and sign-in counters, the pool and the database's availability, for
//!   the process's metrics endpoint ([`collect_metrics`]).
//!
//! The application uses `db` and `config`; it never touches sockets, TLS or DNS.

pub mod auth;
mod cache;
mod error;
mod feeds;
mod health;
mod images;
mod json;
mod markdown;
mod metrics;
mod pagecache;
mod posts;
mod render;
mod routes;
mod settings;
mod state;
pub mod users;

pub use error::AppError;
pub use health::{Health, supervise};
pub use metrics::{AppMetrics, collect as collect_metrics};
pub use render::{SiteInfo, TemplateError, Viewer};
pub use routes::{Client, Routed, Router};
pub use state::State;

/// Compiles the page templates (the built-in ones, and the site's own in `dir`) as `serve`
/// would, for `onebox check`.
pub fn check_templates(dir: Option<&std::path::Path>) -> Result<(), TemplateError> {
    render::Templates::load(dir).map(drop)
}

/// The application's routes over `state` (see `routes`).
pub fn router(state: State) -> Router {
    Router::new(state)
}
