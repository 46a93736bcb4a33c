//! A micro-cache of the public reads (the route groups the table marks `Caching::Public`: the
//! site's pages, the feed, the posts API) as anonymous visitors get them, the way nginx
//! operators put `proxy_cache_valid 200 1s` in front of an application.
//!
//! Every page of the blog would otherwise cost a database round trip per request; the cache
//! keeps each rendered 200 response while nothing is written, so a burst of readers costs one
//! query per page. It is never stale for writes made through this process: any successful
//! non-GET request (a post created, edited, published or deleted, a setting saved) starts a new
//! generation, and entries of an older one are never served.
//!
//! Several boxes share the database: each write also bumps the pages' generation in the
//! database (`counters`, row `page_cache`), and a box reads it at most once per
//! `app.page_cache_ttl` (1 s), on the first cacheable request after the TTL: when it changed,
//! every entry of the box ends (and the site's settings are read again, as an admin may have
//! changed them). A write on one box thus ends the cached pages of every box within the TTL.
//! Until the generation is confirmed for the current TTL (the database down, or not read yet),
//! the cache is passed by. An entry lives [`MAX_AGE`] at most (or the TTL, if longer), which
//! bounds what a change made outside onebox (SQL by hand) leaves stale.
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
use crate::db::shared;

/// The most responses kept at once.
pub const MAX_ENTRIES: usize = 1024;

/// The largest response body kept.
const MAX_BODY: usize = 1024 * 1024;

/// The longest an entry is served, generation unchanged (unless `app.page_cache_ttl` is longer).
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// The row of `counters` that holds the pages' generation.
pub const GENERATION: &str = "page_cache";

/// The cached public reads; cheap to share.
#[derive(Debug)]
pub struct PageCache {
    ttl: Duration,
    max_age: Duration,
    generation: AtomicU64,
    entries: ArcSwap<HashMap<String, Arc<Entry>>>,
    /// When the database's generation was last read (milliseconds after `epoch`; 0: never).
    confirmed_ms: AtomicU64,
    epoch: Instant,
    /// One reader of the database's generation at a time; the value it last read.
    seen: tokio::sync::Mutex<Option<i64>>,
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
        Self::with_max_age(ttl, ttl.max(MAX_AGE))
    }

    fn with_max_age(ttl: Duration, max_age: Duration) -> Self {
        Self {
            ttl,
            max_age,
            generation: AtomicU64::new(0),
            entries: ArcSwap::from_pointee(HashMap::new()),
            confirmed_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            seen: tokio::sync::Mutex::new(None),
        }
    }

    fn since_epoch_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Whether the database's generation was read within the TTL.
    fn confirmed(&self) -> bool {
        let at = self.confirmed_ms.load(Ordering::Acquire);
        at != 0
            && self.since_epoch_ms().saturating_sub(at)
                < u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes the database's generation `value`, read now: a change ends every entry. Returns
    /// whether it changed (not counting the first read).
    fn observed(&self, seen: &mut Option<i64>, value: i64) -> bool {
        let changed = seen.is_some_and(|old| old != value);
        if changed {
            self.invalidate();
        }
        *seen = Some(value);
        self.confirmed_ms
            .store(self.since_epoch_ms(), Ordering::Release);
        changed
    }

    /// Forgets everything (a write happened).
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let entry = self.entries.load().get(key).cloned()?;
        let fresh = entry.generation == self.generation.load(Ordering::Acquire)
            && entry.stored.elapsed() < self.max_age;
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

/// After a write (any method but GET and HEAD: a post created, edited, published or deleted, a
/// setting saved) on any route group: if it succeeded, a new generation starts.
pub(super) async fn written(state: &State, status: StatusCode) {
    if status.is_success() || status.is_redirection() {
        state.pages.invalidate();
        // The other boxes see it within their TTL.
        if !state.pages.ttl.is_zero()
            && let Err(error) = shared::bump(&state.db, GENERATION).await
        {
            tracing::warn!(
                error = %crate::ops::chain(&error),
                "page cache: cannot bump the pages' generation in the database; other boxes may serve older pages for up to a minute"
            );
        }
    }
}

/// Whether the cache may be used now: the database's generation was read within the TTL, or
/// is read now (one request reads it, others arriving meanwhile wait for that read). `false`
/// while the database is down.
async fn confirm(state: &State) -> bool {
    let cache = &state.pages;
    if cache.confirmed() {
        return true;
    }
    if !state.health.is_up() {
        return false;
    }
    let mut seen = cache.seen.lock().await;
    if cache.confirmed() {
        return true;
    }
    let read = tokio::time::timeout(
        state.config.request_timeout,
        shared::counter(&state.db, GENERATION),
    )
    .await;
    match read {
        Ok(Ok(value)) => {
            if cache.observed(&mut seen, value) {
                // Another box wrote: the pages it changed may show the site's settings too.
                if let Err(error) = super::settings::refresh(state).await {
                    tracing::warn!(error = %crate::ops::chain(&error), "page cache: reading the site's settings failed");
                }
            }
            true
        }
        Ok(Err(error)) => {
            tracing::debug!(error = %crate::ops::chain(&error), "page cache: cannot read the pages' generation; not caching");
            false
        }
        Err(_) => false,
    }
}

/// On the public route groups: serves anonymous reads from the cache, and stores what the
/// handler (`next`) answers.
pub(super) async fn through(state: &State, request: Request, next: Next) -> Response {
    let cache = &state.pages;
    if cache.ttl.is_zero() || request.method() != Method::GET || !cacheable(&request) {
        return next.run(request).await;
    }
    let key = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |pq| pq.as_str().to_owned());
    if !confirm(state).await {
        return next.run(request).await;
    }
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

/// An anonymous read (only public route groups ask).
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
    fn entries_live_until_their_generation_ends_or_their_max_age() {
        let cache = PageCache::with_max_age(Duration::from_millis(50), Duration::from_millis(300));
        cache.put("/blog".to_owned(), entry(&cache, "a"));
        assert_eq!(cache.get("/blog").expect("fresh").body, "a");
        assert!(cache.get("/blog?page=2").is_none());
        cache.invalidate();
        assert!(cache.get("/blog").is_none(), "a write ends the generation");
        cache.put("/blog".to_owned(), entry(&cache, "b"));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            cache.get("/blog").is_some(),
            "past the TTL, the generation unchanged"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("/blog").is_none(), "older than the max age");
    }

    #[test]
    fn a_change_of_the_database_generation_ends_every_entry() {
        let cache = PageCache::with_max_age(Duration::from_millis(100), Duration::from_secs(60));
        assert!(!cache.confirmed(), "never read");
        let mut seen = None;
        assert!(
            !cache.observed(&mut seen, 7),
            "the first read changes nothing"
        );
        assert!(cache.confirmed());
        cache.put("/blog".to_owned(), entry(&cache, "a"));
        assert!(!cache.observed(&mut seen, 7));
        assert!(cache.get("/blog").is_some(), "same generation");
        assert!(cache.observed(&mut seen, 8), "another box wrote");
        assert!(cache.get("/blog").is_none());
        // Any change counts, backwards too (a restored database).
        cache.put("/blog".to_owned(), entry(&cache, "b"));
        assert!(cache.observed(&mut seen, 3));
        assert!(cache.get("/blog").is_none());
        std::thread::sleep(Duration::from_millis(150));
        assert!(!cache.confirmed(), "read again once per TTL");
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
