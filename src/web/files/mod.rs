//! Static files from `web.site_dir`, the way nginx serves them.
//!
//! A request for a file goes through four steps:
//!
//! 1. [`guard`]: the URL path is decoded once and refused if it could leave the root or names
//!    a hidden file;
//! 2. the cache: a file served before is found by path; [`watch`] (inotify) clears the cache
//!    on any change to the directories of cached files, so edits and symlink changes show on
//!    the next request without a `stat` per request (where the kernel gives no watch, the
//!    entry is checked with one `stat` against the file: device, inode, size, mtime);
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
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use rustc_hash::FxHashMap;

use crate::web::body::Body;
pub(crate) use guard::{Refused, SitePath};
use resolve::{Entry, Found, Options};
use watch::Watch;

/// At most this many entries are cached (missing files are never cached).
const MAX_ENTRIES: usize = 16_384;

/// The static files of one site snapshot, with their cache.
#[derive(Debug)]
pub(crate) struct Files {
    options: Options,
    cache_total: usize,
    cache: RwLock<Cache>,
    /// Change notification; `None`: entries are checked by `stat`.
    watch: Option<Arc<Watch>>,
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
    /// Headers on every response of the site, kept in prebuilt file heads.
    pub common: HeaderMap,
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
                cache_control_html: config.cache_control_html,
                cache_control: config.cache_control,
                common: config.common,
            },
            cache_total: usize::try_from(config.cache_total).unwrap_or(usize::MAX),
            cache: RwLock::new(Cache::default()),
            watch: Watch::new().map(Arc::new),
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.options.root
    }

    /// Whether a file of the site answers `path` (`try_files` of the reverse proxy).
    pub async fn has_file(&self, path: &str) -> bool {
        if self.cached(path).is_some() {
            return true;
        }
        match guard::check(path) {
            Ok(site_path) => matches!(self.lookup(path, &site_path).await, Ok(Found::File(_))),
            Err(_) => false,
        }
    }

    /// The whole of the file cached under `path`, if a GET of it with `accept_encoding` (the
    /// request's field values) and no conditional or range fields is a plain 200 from memory:
    /// its head as HTTP/1.1 writes it ([`resolve::Variant::wire`]) and its body. `None`: the
    /// request needs [`Files::serve`] (not cached, on disk, a changed sibling).
    pub fn whole<'v>(
        &self,
        path: &str,
        accept_encoding: impl Iterator<Item = &'v [u8]>,
    ) -> Option<(bytes::Bytes, bytes::Bytes)> {
        let entry = self.cached(path)?;
        let (variant, _) = reply::choose_encoding_of(&entry, accept_encoding);
        if !entry.watched
            && variant
                .sibling
                .as_ref()
                .is_some_and(|(p, key)| !key.matches(p))
        {
            return None;
        }
        let resolve::Content::Memory(body) = &variant.content else {
            return None;
        };
        Some((variant.wire.clone(), body.clone()))
    }

    /// Answers a GET or HEAD for `uri`.
    pub async fn serve(&self, uri: &Uri, method: &Method, headers: &HeaderMap) -> Response<Body> {
        let head = method == Method::HEAD;
        // The cache is keyed by the path as the client wrote it: a path served before was
        // checked by the guard then, and the guard's answer depends on the path alone.
        let key = uri.path();
        let found = match self.cached(key) {
            Some(entry) => Ok(Found::File(entry)),
            None => match guard::check(key) {
                Ok(path) => self.lookup(key, &path).await,
                Err(Refused::Hidden) => return self.not_found(headers, head).await,
                Err(Refused::BadRequest) => {
                    return plain(StatusCode::BAD_REQUEST, "bad request path\n");
                }
            },
        };
        match found {
            Ok(Found::File(entry)) => self.file(key, entry, method, headers).await,
            Ok(Found::Directory(location)) => redirect_to_directory(&location, uri.query()),
            Ok(Found::Missing) => self.not_found(headers, head).await,
            Err(error) => {
                tracing::error!(path = key, %error, "cannot read file");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }

    async fn file(
        &self,
        key: &str,
        mut entry: Arc<Entry>,
        method: &Method,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let head = method == Method::HEAD;
        let mut plan = reply::plan(&entry, method, headers);
        if !entry.watched
            && plan
                .variant
                .sibling
                .as_ref()
                .is_some_and(|(p, key)| !key.matches(p))
        {
            // A .br/.gz sibling changed: start over from the disk.
            self.forget(key);
            let found = match guard::check(key) {
                Ok(path) => self.lookup(key, &path).await,
                Err(_) => Ok(Found::Missing),
            };
            entry = match found {
                Ok(Found::File(entry)) => entry,
                _ => return self.not_found(headers, head).await,
            };
            plan = reply::plan(&entry, method, headers);
        }
        if let Some(response) = reply::full(&plan, head) {
            return response;
        }
        let cache_control = if entry.is_html {
            self.options.cache_control_html.as_ref()
        } else {
            self.options.cache_control.as_ref()
        };
        match reply::respond(&entry, &plan, cache_control, head).await {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(path = key, %error, "cannot open file");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }

    /// `site_dir/404.html` (or a line of text) with status 404.
    async fn not_found(&self, headers: &HeaderMap, head: bool) -> Response<Body> {
        const KEY: &str = "/404.html";
        let entry = match self.cached(KEY) {
            Some(entry) => entry,
            None => {
                let page = SitePath {
                    relative: "404.html".to_owned(),
                    trailing_slash: false,
                };
                let Ok(Found::File(entry)) = self.lookup(KEY, &page).await else {
                    return plain(StatusCode::NOT_FOUND, "not found\n");
                };
                entry
            }
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

    /// The cached entry under `key`, if it still stands for the file on disk.
    fn cached(&self, key: &str) -> Option<Arc<Entry>> {
        if let Some(watch) = &self.watch
            && watch.changed()
        {
            self.clear();
        }
        let entry = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .get(key)
            .cloned()?;
        (entry.watched || entry.key.matches(&entry.stat_path)).then_some(entry)
    }

    /// The entry for `path` from the disk, kept under `key` when it is a file.
    async fn lookup(&self, key: &str, path: &SitePath) -> std::io::Result<Found> {
        let generation = self.watch.as_ref().map(|w| w.generation());
        let options = self.options.clone();
        let watch = self.watch.clone();
        let path_for_resolve = path.clone();
        let found = tokio::task::spawn_blocking(move || {
            resolve_watched(&path_for_resolve, &options, watch.as_deref())
        })
        .await
        .map_err(std::io::Error::other)??;
        match &found {
            Found::File(entry) => self.remember(key.to_owned(), entry.clone(), generation),
            _ => self.forget(key),
        }
        Ok(found)
    }

    /// Keeps `entry`, unless a change was seen since `generation` (when it was watched).
    fn remember(&self, key: String, entry: Arc<Entry>, generation: Option<u64>) {
        let size = entry.memory();
        if size > self.cache_total {
            return;
        }
        if let (Some(watch), Some(generation)) = (&self.watch, generation)
            && watch.generation() != generation
        {
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

    fn clear(&self) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.entries.clear();
        cache.bytes = 0;
    }

    fn forget(&self, key: &str) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = cache.entries.remove(key) {
            cache.bytes = cache.bytes.saturating_sub(old.memory());
        }
    }
}

/// [`resolve::resolve`] with the directories watched: those on the way asked for before the
/// file is read, those its symlinks lead to after, then one `stat` to make sure the file did
/// not change before the second watches. The entry is `watched` if all of that held.
fn resolve_watched(
    path: &SitePath,
    options: &Options,
    watch: Option<&Watch>,
) -> std::io::Result<Found> {
    let Some(watch) = watch else {
        return resolve::resolve(path, options);
    };
    let root = &options.root;
    let mut asked = root.join(&path.relative);
    if path.trailing_slash {
        asked.push("index.html");
    }
    let covered = watch.cover(root, &asked);
    let mut found = resolve::resolve(path, options)?;
    if let Found::File(entry) = &mut found
        && let Some(entry) = Arc::get_mut(entry)
    {
        entry.watched = covered
            && std::fs::canonicalize(&entry.stat_path).is_ok_and(|real| watch.cover(root, &real))
            && entry.key.matches(&entry.stat_path);
    }
    Ok(found)
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
