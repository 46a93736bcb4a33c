//! From a checked [`SitePath`] to an [`Entry`]: the file on disk, its metadata, and its bodies.
//!
//! Runs on a blocking thread (it reads files). The steps:
//!
//! 1. join the path to the root and `stat` it (following symlinks); a directory asked for
//!    without a trailing slash is redirected to one, with one it serves its `index.html`;
//!    anything but a regular file is not found;
//! 2. canonicalize it: a symlink whose target lies outside the root, or on a hidden file, makes
//!    it not found;
//! 3. read it into memory when it is small enough (the cache keeps it), and gzip it when it is
//!    text and compression is on;
//! 4. look for precompressed `x.br` and `x.gz` siblings, held to the same rules.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::guard::{self, SitePath};
use super::{mime, reply};

/// Bodies smaller than this are not worth compressing on the fly.
const MIN_COMPRESS: u64 = 256;

/// What identifies one version of a file: if any of it changes, the cache entry is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileKey {
    /// The key of a file's metadata.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// Whether `path` (symlinks followed) is still exactly this file.
    pub fn matches(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|meta| Self::of(&meta) == *self)
    }
}

/// Where a representation's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// In memory.
    Memory(Bytes),
    /// On disk, opened for each request (too large for the cache).
    Disk(PathBuf),
}

/// One representation of a file: as it is, or compressed.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    /// Its strong entity tag.
    pub etag: HeaderValue,
    /// Its length in bytes.
    pub len: u64,
    /// Its bytes.
    pub content: Content,
    /// For a sibling file: its path and key, checked before each use.
    pub sibling: Option<(PathBuf, FileKey)>,
    /// The head of a whole 200 response of it, built once (see `reply::prebuild`).
    pub head: HeaderMap,
    /// `head` as HTTP/1.1 writes it: the status line and the fields, each ending in CRLF,
    /// without `date` and the blank line (the fast path's, see `web::fast`).
    pub wire: Bytes,
}

impl Variant {
    /// Bytes of memory this variant holds.
    fn memory(&self) -> usize {
        match &self.content {
            Content::Memory(bytes) => bytes.len(),
            Content::Disk(_) => 0,
        }
    }
}

/// A file ready to be served, as the cache keeps it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The path under the root that was `stat`ed; checked against `key` on every request.
    pub stat_path: PathBuf,
    /// The file's identity when the entry was made.
    pub key: FileKey,
    /// `Content-Type`.
    pub content_type: HeaderValue,
    /// The file is an HTML page (gets `web.cache_control_html`).
    pub is_html: bool,
    /// Modification time, truncated to seconds (as `Last-Modified` carries it).
    pub modified: SystemTime,
    /// `Last-Modified`.
    pub last_modified: HeaderValue,
    /// The file as it is.
    pub identity: Variant,
    /// gzip: a `.gz` sibling, or compressed here.
    pub gzip: Option<Variant>,
    /// brotli: a `.br` sibling.
    pub brotli: Option<Variant>,
    /// Responses depend on `Accept-Encoding`.
    pub vary: bool,
    /// Every directory it depends on is watched: no `stat` is needed to trust it.
    pub watched: bool,
}

impl Entry {
    /// Bytes of memory this entry holds.
    pub fn memory(&self) -> usize {
        self.identity.memory()
            + self.gzip.as_ref().map_or(0, Variant::memory)
            + self.brotli.as_ref().map_or(0, Variant::memory)
    }
}

/// The outcome of a lookup.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    /// A file.
    File(std::sync::Arc<Entry>),
    /// A directory asked for without its trailing slash: redirect to this path.
    Directory(String),
    /// Nothing that may be served.
    Missing,
}

/// What a lookup needs to know besides the path.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The canonical root.
    pub root: PathBuf,
    /// Compress text on the fly.
    pub compress: bool,
    /// Keep files up to this size in memory.
    pub max_in_memory: u64,
    /// `Cache-Control` of HTML pages.
    pub cache_control_html: Option<HeaderValue>,
    /// `Cache-Control` of everything else.
    pub cache_control: Option<HeaderValue>,
    /// Headers on every response of the site (security headers).
    pub common: HeaderMap,
}

/// Finds the file for `path` (blocking).
pub(crate) fn resolve(path: &SitePath, options: &Options) -> io::Result<Found> {
    let mut stat_path = options.root.join(&path.relative);
    let mut meta = match fs::metadata(&stat_path) {
        Ok(meta) => meta,
        Err(e) if is_absent(&e) => return Ok(Found::Missing),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        if !path.trailing_slash {
            return Ok(Found::Directory(format!("/{}/", path.relative)));
        }
        stat_path.push("index.html");
        meta = match fs::metadata(&stat_path) {
            Ok(meta) => meta,
            Err(e) if is_absent(&e) => return Ok(Found::Missing),
            Err(e) => return Err(e),
        };
    }
    if !meta.is_file() {
        return Ok(Found::Missing);
    }
    let Some(real) = inside_root(&stat_path, &options.root)? else {
        return Ok(Found::Missing);
    };
    let key = FileKey::of(&meta);
    let extension = stat_path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let content_type = mime::content_type(extension);
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(UNIX_EPOCH, |d| {
            UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs())
        });
    let etag_base = format!(
        "{:x}-{:x}",
        modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        meta.len()
    );
    let identity = Variant {
        etag: quoted(&etag_base),
        len: meta.len(),
        content: read_or_refer(&real, meta.len(), options.max_in_memory)?,
        sibling: None,
        head: HeaderMap::new(),
        wire: Bytes::new(),
    };
    let brotli = sibling(&real, "br", options)?;
    let mut gzip = sibling(&real, "gz", options)?;
    let compressible = mime::compressible(content_type);
    if gzip.is_none()
        && options.compress
        && compressible
        && meta.len() >= MIN_COMPRESS
        && let Content::Memory(bytes) = &identity.content
    {
        gzip = gzipped(bytes)?.map(|compressed| Variant {
            etag: quoted(&format!("{etag_base}-gz")),
            len: compressed.len() as u64,
            content: Content::Memory(compressed),
            sibling: None,
            head: HeaderMap::new(),
            wire: Bytes::new(),
        });
    }
    let vary = gzip.is_some() || brotli.is_some() || (options.compress && compressible);
    let mut entry = Entry {
        stat_path,
        key,
        content_type: HeaderValue::from_static(content_type),
        is_html: content_type.starts_with("text/html"),
        modified,
        last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified))
            .map_err(io::Error::other)?,
        identity,
        gzip,
        brotli,
        vary,
        watched: false,
    };
    let cache_control = if entry.is_html {
        options.cache_control_html.as_ref()
    } else {
        options.cache_control.as_ref()
    };
    reply::prebuild(&mut entry, cache_control, &options.common);
    Ok(Found::File(std::sync::Arc::new(entry)))
}

/// The canonical path of `path` if it lies inside `root` and has no hidden segment.
fn inside_root(path: &Path, root: &Path) -> io::Result<Option<PathBuf>> {
    let real = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    match real.strip_prefix(root) {
        Ok(relative) if !guard::is_hidden(relative) => Ok(Some(real)),
        Ok(_) => {
            tracing::warn!(path = %path.display(), target = %real.display(), "symlink to a hidden file refused");
            Ok(None)
        }
        Err(_) => {
            tracing::warn!(path = %path.display(), target = %real.display(), "symlink out of web.site_dir refused");
            Ok(None)
        }
    }
}

/// A precompressed sibling `real.<ext>`, if there is a regular file inside the root.
fn sibling(real: &Path, ext: &str, options: &Options) -> io::Result<Option<Variant>> {
    let mut name = real.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    let path = PathBuf::from(name);
    let meta = match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(None),
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(real_sibling) = inside_root(&path, &options.root)? else {
        return Ok(None);
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(Some(Variant {
        etag: quoted(&format!("{mtime:x}-{:x}-{ext}", meta.len())),
        len: meta.len(),
        content: read_or_refer(&real_sibling, meta.len(), options.max_in_memory)?,
        sibling: Some((path, FileKey::of(&meta))),
        head: HeaderMap::new(),
        wire: Bytes::new(),
    }))
}

fn read_or_refer(path: &Path, len: u64, max_in_memory: u64) -> io::Result<Content> {
    if len <= max_in_memory {
        Ok(Content::Memory(Bytes::from(fs::read(path)?)))
    } else {
        Ok(Content::Disk(path.to_owned()))
    }
}

/// gzip at the default level; `None` when it does not make the body smaller.
fn gzipped(bytes: &[u8]) -> io::Result<Option<Bytes>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::default(),
    );
    encoder.write_all(bytes)?;
    let compressed = encoder.finish()?;
    Ok((compressed.len() < bytes.len()).then(|| Bytes::from(compressed)))
}

fn quoted(tag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{tag}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::InvalidFilename
            | io::ErrorKind::PermissionDenied
    ) || error.raw_os_error() == Some(libc::ENAMETOOLONG)
        || error.raw_os_error() == Some(libc::ELOOP)
}
