//! The route table: every path the application answers, in groups that declare how they
//! behave, and the [`Router`] the web origin hands each request to.
//!
//! A group's properties, in one place instead of spread over prefix tests:
//!
//! - [`Errors`]: whether an error is a page (the site, the editor) or a JSON document (the
//!   API), whatever the path looks like;
//! - [`Caching`]: whether anonymous `GET`s may be kept by the page cache (`app::pagecache`);
//! - `database`: whether it needs the database (then it answers 503 at once while the database
//!   is known to be down, instead of waiting for `app.request_timeout`).
//!
//! Every group also gets the request deadline, and its successful writes end the page cache's
//! generation. One layer per group applies all of it ([`layer`]); outermost first: errors
//! rendered, the deadline, the database check, the write watch, the page cache, the handler.
//!
//! Whatever the table does not route goes to the fallback the caller gives (the web origin's
//! static files), untouched: one lookup in a radix tree (matchit, the one axum routes with)
//! and no allocation on that path. A 404 from the fallback is replaced by the site's own 404
//! page, so every page, static or dynamic, shares one layout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};

use super::error::{self, AppError};
use super::state::State;
use super::{auth, feeds, images, pagecache, posts, settings};

/// How a group's errors read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// An HTML page in the site's layout (a missing session: a redirect to sign in).
    Page,
    /// The API's JSON document, `{"error": {"status", "message", "fields"}}`.
    Json,
}

/// What caches may keep of a group's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Anonymous `GET`s are the same for everyone: the page cache keeps them.
    Public,
    /// Per visitor (forms with CSRF tokens, the editor): never kept.
    Private,
    /// Content-addressed (images named by their hash): browsers keep them for good, so the
    /// page cache does not.
    Immutable,
}

/// One group of routes and how it behaves.
struct Group {
    errors: Errors,
    caching: Caching,
    database: bool,
    routes: Vec<(&'static str, MethodRouter<State>)>,
}

impl Group {
    fn new(errors: Errors, caching: Caching) -> Self {
        Self {
            errors,
            caching,
            database: true,
            routes: Vec::new(),
        }
    }

    fn without_database(mut self) -> Self {
        self.database = false;
        self
    }

    fn route(mut self, path: &'static str, method: MethodRouter<State>) -> Self {
        self.routes.push((path, method));
        self
    }
}

/// The table: every route of the application.
fn table() -> Vec<Group> {
    use posts::{api, editor, pages};
    vec![
        // The public site: its pages and what feed readers and crawlers read.
        Group::new(Errors::Page, Caching::Public)
            .route("/", get(pages::home))
            .route("/blog", get(pages::index))
            .route("/blog/", get(|| redirect("/blog")))
            .route("/blog/{slug}", get(pages::show))
            .route("/feed.xml", get(feeds::atom))
            .route("/sitemap.xml", get(feeds::sitemap)),
        Group::new(Errors::Page, Caching::Public)
            .without_database()
            .route("/robots.txt", get(feeds::robots)),
        // Images in posts, named by the hash of their bytes.
        Group::new(Errors::Page, Caching::Immutable).route("/images/{name}", get(images::show)),
        // The JSON API: public reads, writes by token or session.
        Group::new(Errors::Json, Caching::Public)
            .route("/api/posts", get(api::list).post(api::create))
            .route(
                "/api/posts/{slug}",
                get(api::show).patch(api::update).delete(api::delete),
            )
            .route("/api/images", post(images::upload))
            .route("/api", get(not_found))
            .route("/api/", get(not_found))
            .route("/api/{*rest}", get(not_found)),
        // Signing in and out.
        Group::new(Errors::Page, Caching::Private)
            .route(
                "/signin",
                get(auth::signin::form).post(auth::signin::submit),
            )
            .route("/signout", post(auth::sign_out)),
        // The editor: signed-in users only.
        Group::new(Errors::Page, Caching::Private)
            .route("/editor", get(editor::list))
            .route("/editor/", get(|| redirect("/editor")))
            .route("/editor/new", get(editor::new_form).post(editor::create))
            .route(
                "/editor/posts/{id}",
                get(editor::edit_form).post(editor::save),
            )
            .route("/editor/posts/{id}/publish", post(editor::publish))
            .route("/editor/posts/{id}/unpublish", post(editor::unpublish))
            .route(
                "/editor/posts/{id}/delete",
                get(editor::confirm_delete).post(editor::delete),
            )
            .route("/editor/settings", get(settings::show).post(settings::save))
            .route(
                "/editor/images",
                // The web origin bounds the body (`web.max_body_bytes`), not axum's default.
                get(images::form)
                    .post(images::submit)
                    .layer(axum::extract::DefaultBodyLimit::disable()),
            )
            .route("/editor/{*rest}", get(not_found)),
    ]
}

/// 404 for a path under a group's prefix that names nothing (in the group's error style).
async fn not_found() -> AppError {
    AppError::NotFound
}

/// 301 to `location` (a path without its trailing slash).
async fn redirect(location: &'static str) -> axum::response::Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, location)],
    )
        .into_response()
}

/// The canonical origin of the site, `https://www.foobar.com` (with the port when not 443),
/// for absolute links (canonical, Open Graph, the feed, the sitemap).
#[derive(Debug, Clone)]
pub struct Origin(pub Arc<str>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        // Set by [`Router::serve`] on every request it routes; without it, addresses are
        // relative to the site (tests that call the routes directly).
        Ok(parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self(Arc::from(""))))
    }
}

/// What the web origin knows of a request besides the request itself.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The client's address (sign-in throttling, logs).
    pub peer: SocketAddr,
    /// The site's canonical name (`www.foobar.com`).
    pub canonical: &'a str,
    /// The HTTPS port, when it is not 443.
    pub https_port: Option<u16>,
}

impl Client<'_> {
    /// `https://canonical[:port]`.
    fn origin(&self) -> Origin {
        let origin = match self.https_port {
            Some(port) => format!("https://{}:{port}", self.canonical),
            None => format!("https://{}", self.canonical),
        };
        Origin(origin.into())
    }
}

/// Where a request went.
#[derive(Debug)]
pub enum Routed<R> {
    /// The application answered (a route, or the site's 404 page for what the fallback did not
    /// have).
    App(Response<axum::body::Body>),
    /// The fallback answered.
    Fallback(Response<R>),
}

/// The application's routes, with a fallback for everything else; cheap to clone.
#[derive(Clone)]
pub struct Router {
    paths: Arc<matchit::Router<()>>,
    routes: axum::Router,
    state: State,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// The table's routes over `state`.
    pub fn new(state: State) -> Self {
        let timeout = state.config.request_timeout;
        let mut paths = matchit::Router::new();
        let mut routes = axum::Router::new();
        for group in table() {
            let mut router = axum::Router::new();
            for (path, method) in group.routes {
                if let Err(error) = paths.insert(path, ()) {
                    // The table is a constant: a conflict is a bug found by the first test.
                    panic!("route table: {path}: {error}");
                }
                router = router.route(path, method);
            }
            let rules = Rules {
                errors: group.errors,
                caching: group.caching,
                database: group.database,
                timeout,
            };
            router = router.route_layer(middleware::from_fn_with_state(
                (state.clone(), rules),
                layer,
            ));
            routes = routes.merge(router);
        }
        Self {
            paths: Arc::new(paths),
            routes: routes.with_state(state.clone()),
            state,
        }
    }

    /// Whether the table has a route for `path` (the reverse proxy leaves those to it).
    pub fn routes(&self, path: &str) -> bool {
        self.paths.at(path).is_ok()
    }

    /// Answers `request` with the route the table has for its path, or else with `fallback`.
    /// The fallback gets the request as it came (same body type, nothing allocated); a 404 it
    /// answers is replaced by the site's 404 page.
    pub async fn serve<B, R, F, Fut>(
        &self,
        mut request: Request<B>,
        client: Client<'_>,
        fallback: F,
    ) -> Routed<R>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
        F: FnOnce(Request<B>) -> Fut,
        Fut: Future<Output = Response<R>>,
    {
        if self.paths.at(request.uri().path()).is_err() {
            let head = request.method() == Method::HEAD;
            let response = fallback(request).await;
            if response.status() != StatusCode::NOT_FOUND {
                return Routed::Fallback(response);
            }
            return Routed::App(self.not_found_page(head));
        }
        let extensions = request.extensions_mut();
        extensions.insert(client.peer);
        // Built here, for the application's requests only: the static path allocates nothing.
        extensions.insert(client.origin());
        let request = request.map(axum::body::Body::new);
        // Boxed, so that the static files' path does not carry the router's future in its own.
        let Ok(response) = Box::pin(tower::ServiceExt::oneshot(self.routes.clone(), request)).await;
        Routed::App(response)
    }

    /// The site's 404 page (no database needed: the layout and the settings' snapshot).
    fn not_found_page(&self, head: bool) -> Response<axum::body::Body> {
        let page = self.state.error_page(&AppError::NotFound);
        let mut response = if head {
            Response::new(axum::body::Body::empty())
        } else {
            Response::new(axum::body::Body::from(page))
        };
        *response.status_mut() = StatusCode::NOT_FOUND;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// What a group's layer applies: its properties, and the request deadline.
#[derive(Debug, Clone, Copy)]
struct Rules {
    errors: Errors,
    caching: Caching,
    database: bool,
    /// `app.request_timeout`.
    timeout: std::time::Duration,
}

/// The one layer of every route group: its [`Rules`] around the handler (`next`), in the order
/// the module's documentation gives. One layer rather than one per property: each layer costs
/// every request a clone of the stack beneath it and a boxed future.
async fn layer(
    axum::extract::State((state, rules)): axum::extract::State<(State, Rules)>,
    request: Request,
    next: middleware::Next,
) -> axum::response::Response {
    // For a redirect to sign in and the log line: a reference count, not a copy of the path.
    let uri = request.uri().clone();
    let response =
        match tokio::time::timeout(rules.timeout, handle(&state, rules, request, next)).await {
            Ok(response) => response,
            // A slow or vanishing database.
            Err(_) => {
                tracing::warn!(
                    path = uri.path(),
                    timeout_ms = rules.timeout.as_millis(),
                    "app: request timed out"
                );
                AppError::Unavailable.into_response()
            }
        };
    error::render(&state, rules.errors, &uri, response)
}

/// [`layer`] within the deadline: 503 at once while the database is known to be down (the
/// watcher checks every second; a request that comes before its first outcome waits for it),
/// then the page cache for public groups, and a new cache generation after a successful write.
async fn handle(
    state: &State,
    rules: Rules,
    request: Request,
    next: middleware::Next,
) -> axum::response::Response {
    if rules.database && !state.health.known_up().await {
        return AppError::Unavailable.into_response();
    }
    let write = !matches!(*request.method(), Method::GET | Method::HEAD);
    let response = if rules.caching == Caching::Public {
        pagecache::through(state, request, next).await
    } else {
        next.run(request).await
    };
    if write {
        pagecache::written(state, response.status()).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of the table is distinct and matchit takes it (the table builds), and the
    /// groups own what they should.
    #[test]
    fn the_table_routes_what_it_says() {
        let mut paths = matchit::Router::new();
        for (n, group) in table().into_iter().enumerate() {
            for (path, _) in group.routes {
                paths.insert(path, (n, group.errors)).expect(path);
            }
        }
        let errors = |path: &str| paths.at(path).ok().map(|m| m.value.1);
        for path in [
            "/",
            "/blog",
            "/blog/hello",
            "/feed.xml",
            "/signin",
            "/editor/posts/1",
            "/editor/images",
            "/images/0123.png",
        ] {
            assert_eq!(errors(path), Some(Errors::Page), "{path}");
        }
        for path in [
            "/api",
            "/api/posts",
            "/api/posts/x",
            "/api/images",
            "/api/nothing/here",
        ] {
            assert_eq!(errors(path), Some(Errors::Json), "{path}");
        }
        for path in [
            "/style.css",
            "/blogs",
            "/blog/a/b",
            "/index.html",
            "/apis",
            "/signinx",
            "/images",
            "/images/a/b.png",
        ] {
            assert_eq!(errors(path), None, "{path} is the fallback's");
        }
    }
}
