//! A micro-cache of the public reads (the route groups the table marks `Caching::Public`: the
//! site's pages, the feed, the posts API) as anonymous visitors get them, the way nginx
//! operators put `proxy_cache_valid 200 1s` in front of an application.
//!
//! Every page of the blog would otherwise cost a database round trip per request; the cache
//! keeps each rendered 200 response for at most `app.page_cache_ttl` (1 s), so a burst of
//! readers costs one query per page per second. It is never stale for writes made through this
//! process: any successful non-GET request (a post created, edited, published or deleted, a
//! setting saved) starts a new generation, and entries of an older one are never served. The
//! TTL bounds staleness for writes made by another box sharing the database.
//!
//! Only anonymous requests are cached or served from the cache: a request with the session
//! cookie or an `Authorization` header always reaches the handler (it may see drafts, and its
//! pages carry the viewer's name). Entries are an immutable map swapped whole on insert
//! (arc-swap): a hit takes no lock. At most [`MAX_ENTRIES`] are kept; beyond, the map starts
//! afresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::SESSION_COOKIE;
use super::metrics::Count;
use super::state::State;

/// The most responses kept at once.
pub const MAX_ENTRIES: usize = 1024;

/// The largest response body kept.
const MAX_BODY: usize = 1024 * 1024;

/// The cached public reads; cheap to share.
#[derive(Debug)]
pub struct PageCache {
    ttl: Duration,
    generation: AtomicU64,
    entries: ArcSwap<HashMap<String, Arc<Entry>>>,
}

/// One stored response.
#[derive(Debug)]
struct Entry {
    generation: u64,
    stored: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl PageCache {
    /// A cache keeping responses for `ttl` (zero: nothing is cached).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Forgets everything (a write happened).
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let entry = self.entries.load().get(key).cloned()?;
        let fresh = entry.generation == self.generation.load(Ordering::Acquire)
            && entry.stored.elapsed() < self.ttl;
        fresh.then_some(entry)
    }

    fn put(&self, key: String, entry: Entry) {
        let entry = Arc::new(entry);
        self.entries.rcu(|entries| {
            let mut next = if entries.len() >= MAX_ENTRIES {
                HashMap::new()
            } else {
                HashMap::clone(entries)
            };
            next.insert(key.clone(), entry.clone());
            next
        });
    }
}

/// The layer on every route group: a successful write (any method but GET and HEAD: a post
/// created, edited, published or deleted, a setting saved) starts a new generation.
pub(super) async fn writes(
    axum::extract::State(state): axum::extract::State<State>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    if method == Method::GET || method == Method::HEAD {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if response.status().is_success() || response.status().is_redirection() {
        state.pages.invalidate();
    }
    response
}

/// The layer on the public route groups: serves anonymous reads from the cache and stores
/// what the handler answers.
pub(super) async fn layer(
    axum::extract::State(state): axum::extract::State<State>,
    request: Request,
    next: Next,
) -> Response {
    let cache = &state.pages;
    if cache.ttl.is_zero() || request.method() != Method::GET || !cacheable(&request) {
        return next.run(request).await;
    }
    let key = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |pq| pq.as_str().to_owned());
    if let Some(entry) = cache.get(&key) {
        state.metrics.inc(Count::CacheHit);
        return entry.answer(request.headers());
    }
    state.metrics.inc(Count::CacheMiss);
    // A write while the handler runs makes this response stale: it is stored under the
    // generation it started in, and never served.
    let generation = cache.generation.load(Ordering::Acquire);
    let response = next.run(request).await;
    let public = response
        .headers()
        .get(header::CACHE_CONTROL)
        .is_some_and(|v| v == "no-cache");
    if response.status() != StatusCode::OK || !public {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    cache.put(
        key,
        Entry {
            generation,
            stored: Instant::now(),
            headers: parts.headers.clone(),
            body: body.clone(),
        },
    );
    Response::from_parts(parts, Body::from(body))
}

/// An anonymous read (the layer only sits on public routes).
fn cacheable(request: &Request) -> bool {
    // Only the queries the routes take (`?page=N`): arbitrary query strings would fill the map
    // with copies of one page and push the real ones out.
    let query_ok = request.uri().query().is_none_or(|query| {
        query
            .strip_prefix("page=")
            .is_some_and(|n| !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()))
    });
    let headers = request.headers();
    query_ok
        && !headers.contains_key(header::AUTHORIZATION)
        && super::auth::cookie(headers, SESSION_COOKIE).is_none()
}

impl Entry {
    /// The stored response, or 304 when the request already has it.
    fn answer(&self, request: &HeaderMap) -> Response {
        let tag = self.headers.get(header::ETAG).and_then(|v| v.to_str().ok());
        let mut response = if tag.is_some_and(|tag| super::cache::matches(request, tag)) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            Response::new(Body::from(self.body.clone()))
        };
        for (name, value) in &self.headers {
            if response.status() == StatusCode::NOT_MODIFIED && name == header::CONTENT_TYPE {
                continue;
            }
            response.headers_mut().insert(name, value.clone());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cache: &PageCache, body: &'static str) -> Entry {
        Entry {
            generation: cache.generation.load(Ordering::Acquire),
            stored: Instant::now(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn entries_live_for_the_ttl_and_die_with_their_generation() {
        let cache = PageCache::new(Duration::from_millis(200));
        cache.put("/blog".to_owned(), entry(&cache, "a"));
        assert_eq!(cache.get("/blog").expect("fresh").body, "a");
        assert!(cache.get("/blog?page=2").is_none());
        cache.invalidate();
        assert!(cache.get("/blog").is_none(), "a write ends the generation");
        cache.put("/blog".to_owned(), entry(&cache, "b"));
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("/blog").is_none(), "older than the TTL");
    }

    #[test]
    fn only_anonymous_reads_of_public_pages_are_kept() {
        let request = |uri: &str, header: Option<(&str, &str)>| {
            let mut builder = Request::builder().uri(uri);
            if let Some((name, value)) = header {
                builder = builder.header(name, value);
            }
            builder.body(Body::empty()).expect("request")
        };
        for uri in [
            "/blog",
            "/blog?page=2",
            "/blog/hello",
            "/api/posts",
            "/api/posts/x",
        ] {
            assert!(cacheable(&request(uri, None)), "{uri}");
        }
        for uri in ["/blog?page=2&x=1", "/blog?utm=1", "/blog?page="] {
            assert!(!cacheable(&request(uri, None)), "{uri}");
        }
        let session = ("cookie", "a=b; __Host-onebox_session=t");
        assert!(!cacheable(&request("/blog", Some(session))));
        assert!(!cacheable(&request(
            "/api/posts",
            Some(("authorization", "Bearer t"))
        )));
    }

    #[test]
    fn the_map_never_grows_past_its_bound() {
        let cache = PageCache::new(Duration::from_secs(60));
        for n in 0..=MAX_ENTRIES {
            cache.put(format!("/blog?page={n}"), entry(&cache, "x"));
        }
        assert!(cache.entries.load().len() <= MAX_ENTRIES);
        assert!(cache.get(&format!("/blog?page={MAX_ENTRIES}")).is_some());
    }
}
