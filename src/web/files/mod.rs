//! Static files from `web.site_dir`, the way nginx serves them.
//!
//! A request for a file goes through four steps:
//!
//! 1. [`guard`]: the URL path is decoded once and refused if it could leave the root or names
//!    a hidden file;
//! 2. the cache: a file served before is found by path and checked with one `stat` against
//!    the file on disk (device, inode, size, mtime), so edits and symlink changes show at once;
//! 3. [`resolve`] (on a miss, on a blocking thread): symlinks followed and held inside the root,
//!    `index.html` for directories, small files read into memory, text gzipped once,
//!    precompressed `.br`/`.gz` siblings found;
//! 4. [`reply`]: representation, conditional requests and ranges decided, response built.
//!
//! Not found, hidden and refused paths get `site_dir/404.html` with status 404.

mod guard;
mod mime;
mod reply;
mod resolve;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use rustc_hash::FxHashMap;

use crate::web::body::Body;
pub(crate) use guard::{Refused, SitePath};
use resolve::{Entry, Found, Options};

/// At most this many entries are cached (missing files are never cached).
const MAX_ENTRIES: usize = 16_384;

/// The static files of one site snapshot, with their cache.
#[derive(Debug)]
pub(crate) struct Files {
    options: Options,
    cache_total: usize,
    cache_control_html: Option<HeaderValue>,
    cache_control: Option<HeaderValue>,
    cache: RwLock<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    entries: FxHashMap<String, Arc<Entry>>,
    bytes: usize,
}

/// How the file cache and headers are set up.
#[derive(Debug, Clone)]
pub(crate) struct FilesConfig {
    /// The web root (canonicalized here).
    pub root: PathBuf,
    /// Compress text on the fly.
    pub compress: bool,
    /// Files up to this size are kept in memory.
    pub max_in_memory: u64,
    /// Memory for all cached bodies.
    pub cache_total: u64,
    /// `Cache-Control` of HTML pages.
    pub cache_control_html: Option<HeaderValue>,
    /// `Cache-Control` of everything else.
    pub cache_control: Option<HeaderValue>,
}

impl Files {
    /// Sets up serving from `config.root`, which must be a directory.
    pub fn new(config: FilesConfig) -> std::io::Result<Self> {
        let root = std::fs::canonicalize(&config.root)?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Self {
            options: Options {
                root,
                compress: config.compress,
                max_in_memory: config.max_in_memory,
            },
            cache_total: usize::try_from(config.cache_total).unwrap_or(usize::MAX),
            cache_control_html: config.cache_control_html,
            cache_control: config.cache_control,
            cache: RwLock::new(Cache::default()),
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.options.root
    }

    /// Answers a GET or HEAD for `uri`.
    pub async fn serve(&self, uri: &Uri, method: &Method, headers: &HeaderMap) -> Response<Body> {
        let head = method == Method::HEAD;
        let path = match guard::check(uri.path()) {
            Ok(path) => path,
            Err(Refused::Hidden) => return self.not_found(headers, head).await,
            Err(Refused::BadRequest) => {
                return plain(StatusCode::BAD_REQUEST, "bad request path\n");
            }
        };
        match self.lookup(&path).await {
            Ok(Found::File(entry)) => self.file(&path, entry, method, headers).await,
            Ok(Found::Directory(location)) => redirect_to_directory(&location, uri.query()),
            Ok(Found::Missing) => self.not_found(headers, head).await,
            Err(error) => {
                tracing::error!(path = %path.relative, %error, "cannot read file");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }

    async fn file(
        &self,
        path: &SitePath,
        mut entry: Arc<Entry>,
        method: &Method,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let head = method == Method::HEAD;
        let mut plan = reply::plan(&entry, method, headers);
        if plan
            .variant
            .sibling
            .as_ref()
            .is_some_and(|(p, key)| !key.matches(p))
        {
            // A .br/.gz sibling changed: start over from the disk.
            self.forget(path);
            entry = match self.lookup(path).await {
                Ok(Found::File(entry)) => entry,
                _ => return self.not_found(headers, head).await,
            };
            plan = reply::plan(&entry, method, headers);
        }
        let cache_control = if entry.is_html {
            self.cache_control_html.as_ref()
        } else {
            self.cache_control.as_ref()
        };
        match reply::respond(&entry, &plan, cache_control, head).await {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(path = %path.relative, %error, "cannot open file");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }

    /// `site_dir/404.html` (or a line of text) with status 404.
    async fn not_found(&self, headers: &HeaderMap, head: bool) -> Response<Body> {
        let page = SitePath {
            relative: "404.html".to_owned(),
            trailing_slash: false,
        };
        let Ok(Found::File(entry)) = self.lookup(&page).await else {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        };
        // Only the coding is negotiated: the page is never a 304 or a range.
        let plan = reply::plan(&entry, &Method::HEAD, &only_accept_encoding(headers));
        let no_store = HeaderValue::from_static("no-store");
        match reply::respond(&entry, &plan, Some(&no_store), head).await {
            Ok(mut response) => {
                *response.status_mut() = StatusCode::NOT_FOUND;
                response.headers_mut().remove(header::ETAG);
                response.headers_mut().remove(header::LAST_MODIFIED);
                response.headers_mut().remove(header::ACCEPT_RANGES);
                response
            }
            Err(_) => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// The entry for `path`: from the cache if the file is unchanged, else from the disk.
    async fn lookup(&self, path: &SitePath) -> std::io::Result<Found> {
        let key = cache_key(path);
        let cached = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .get(&key)
            .cloned();
        if let Some(entry) = cached
            && entry.key.matches(&entry.stat_path)
        {
            return Ok(Found::File(entry));
        }
        let options = self.options.clone();
        let path_for_resolve = path.clone();
        let found =
            tokio::task::spawn_blocking(move || resolve::resolve(&path_for_resolve, &options))
                .await
                .map_err(std::io::Error::other)??;
        match &found {
            Found::File(entry) => self.remember(key, entry.clone()),
            _ => self.forget(path),
        }
        Ok(found)
    }

    fn remember(&self, key: String, entry: Arc<Entry>) {
        let size = entry.memory();
        if size > self.cache_total {
            return;
        }
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.bytes + size > self.cache_total || cache.entries.len() >= MAX_ENTRIES {
            // Crude but bounded: start afresh rather than track recency on every hit.
            cache.entries.clear();
            cache.bytes = 0;
        }
        if let Some(old) = cache.entries.insert(key, entry) {
            cache.bytes = cache.bytes.saturating_sub(old.memory());
        }
        cache.bytes += size;
    }

    fn forget(&self, path: &SitePath) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = cache.entries.remove(&cache_key(path)) {
            cache.bytes = cache.bytes.saturating_sub(old.memory());
        }
    }
}

fn cache_key(path: &SitePath) -> String {
    let mut key = path.relative.clone();
    if path.trailing_slash {
        key.push('/');
    }
    key
}

fn only_accept_encoding(headers: &HeaderMap) -> HeaderMap {
    let mut only = HeaderMap::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        only.append(header::ACCEPT_ENCODING, value.clone());
    }
    only
}

/// 301 to the directory's path with its slash, keeping the query (as nginx does).
fn redirect_to_directory(location: &str, query: Option<&str>) -> Response<Body> {
    let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
    let mut location = encode_path(location);
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Percent-encodes what may not stand in a `Location` path.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A short plain-text response.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::bytes(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    response
}
