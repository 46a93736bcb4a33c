//! The answer for a found file: which representation, which status, which headers.
//!
//! [`plan`] is pure (entry + request headers in, decision out) so that each HTTP caching rule
//! is a unit test; [`respond`] turns a plan into a response. The rules, in RFC 9110 order:
//!
//! 1. representation: with a `Range` header the file as it is (ranges are of the identity
//!    body); otherwise brotli, then gzip, then identity, as `Accept-Encoding` allows;
//! 2. `If-None-Match` (weak comparison, `*`) → 304; without it, `If-Modified-Since` → 304
//!    when the file is not newer;
//! 3. `Range` on GET: one `bytes=` range → 206 with `Content-Range`, unsatisfiable → 416;
//!    several ranges, bad syntax, or an `If-Range` that does not match → the whole file, 200.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use tokio::io::AsyncSeekExt;

use super::resolve::{Content, Entry, Variant};
use crate::web::body::Body;

/// What to send for one request of a file.
#[derive(Debug)]
pub(crate) struct Plan<'e> {
    /// 200, 206, 304 or 416.
    pub status: StatusCode,
    /// The representation sent (or validated).
    pub variant: &'e Variant,
    /// Its `Content-Encoding`, if compressed.
    pub encoding: Option<&'static str>,
    /// The byte range sent (first, last; inclusive) for a 206.
    pub range: Option<(u64, u64)>,
}

/// Decides status and representation for a GET or HEAD of `entry`.
pub(crate) fn plan<'e>(entry: &'e Entry, method: &Method, headers: &HeaderMap) -> Plan<'e> {
    let range = headers.get(header::RANGE).filter(|_| method == Method::GET);
    let (variant, encoding) = match range {
        Some(_) => (&entry.identity, None),
        None => choose_encoding(entry, headers),
    };
    let mut plan = Plan {
        status: StatusCode::OK,
        variant,
        encoding,
        range: None,
    };
    if not_modified(entry, variant, headers) {
        plan.status = StatusCode::NOT_MODIFIED;
        return plan;
    }
    let Some(range) = range else {
        return plan;
    };
    if !if_range_matches(entry, headers) {
        return plan;
    }
    match parse_range(range.as_bytes(), variant.len) {
        RangeSpec::Ignore => {}
        RangeSpec::Satisfiable(first, last) => {
            plan.status = StatusCode::PARTIAL_CONTENT;
            plan.range = Some((first, last));
        }
        RangeSpec::Unsatisfiable => plan.status = StatusCode::RANGE_NOT_SATISFIABLE,
    }
    plan
}

fn choose_encoding<'e>(
    entry: &'e Entry,
    headers: &HeaderMap,
) -> (&'e Variant, Option<&'static str>) {
    let values = headers.get_all(header::ACCEPT_ENCODING);
    choose_encoding_of(entry, values.iter().map(HeaderValue::as_bytes))
}

/// The representation `Accept-Encoding` (its field values, as they came) picks.
pub(crate) fn choose_encoding_of<'e, 'v>(
    entry: &'e Entry,
    accept_encoding: impl Iterator<Item = &'v [u8]>,
) -> (&'e Variant, Option<&'static str>) {
    if entry.gzip.is_none() && entry.brotli.is_none() {
        return (&entry.identity, None);
    }
    let accepted = Accepted::parse(accept_encoding);
    if let Some(brotli) = entry.brotli.as_ref().filter(|_| accepted.brotli) {
        return (brotli, Some("br"));
    }
    if let Some(gzip) = entry.gzip.as_ref().filter(|_| accepted.gzip) {
        return (gzip, Some("gzip"));
    }
    (&entry.identity, None)
}

/// The codings a client accepts (RFC 9110 §12.5.3): listed with q > 0, or by `*`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Accepted {
    brotli: bool,
    gzip: bool,
}

impl Accepted {
    fn parse<'v>(values: impl Iterator<Item = &'v [u8]>) -> Self {
        let (mut brotli, mut gzip, mut star) = (None, None, None);
        for value in values {
            // What `HeaderValue::to_str` takes: visible ASCII and tabs.
            if !value.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
                continue;
            }
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or_default().trim();
                let q_positive = parts
                    .filter_map(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .or_else(|| p.trim().strip_prefix("Q="))
                    })
                    .next_back()
                    .is_none_or(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
                if coding.eq_ignore_ascii_case("br") {
                    brotli = Some(q_positive);
                } else if coding.eq_ignore_ascii_case("gzip")
                    || coding.eq_ignore_ascii_case("x-gzip")
                {
                    gzip = Some(q_positive);
                } else if coding == "*" {
                    star = Some(q_positive);
                }
            }
        }
        let star = star.unwrap_or(false);
        Self {
            brotli: brotli.unwrap_or(star),
            gzip: gzip.unwrap_or(star),
        }
    }
}

fn not_modified(entry: &Entry, variant: &Variant, headers: &HeaderMap) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH) {
        return tags.to_str().is_ok_and(|tags| {
            tags.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || weak_eq(tag, variant.etag.to_str().unwrap_or_default()))
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| entry.modified <= since)
}

/// Weak comparison: the opaque tags are equal, `W/` prefixes aside.
fn weak_eq(a: &str, b: &str) -> bool {
    let strip = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_owned();
    strip(a) == strip(b)
}

/// `If-Range` absent, or equal (strongly) to the identity's ETag or exact `Last-Modified`.
fn if_range_matches(entry: &Entry, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return entry.identity.etag == value;
    }
    if value.starts_with("W/") {
        return false;
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == entry.modified)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// Not a single valid byte range: serve the whole body.
    Ignore,
    /// First and last byte, inclusive.
    Satisfiable(u64, u64),
    /// Valid syntax, but outside the body.
    Unsatisfiable,
}

fn parse_range(value: &[u8], len: u64) -> RangeSpec {
    let Ok(value) = std::str::from_utf8(value) else {
        return RangeSpec::Ignore;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => RangeSpec::Ignore,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if len == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Satisfiable(len.saturating_sub(n), len - 1),
        },
        (first, last) => {
            let Some(first) = number(first) else {
                return RangeSpec::Ignore;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(last) if last >= first => last,
                    _ => return RangeSpec::Ignore,
                }
            };
            if first >= len {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Satisfiable(first, last.min(len - 1))
            }
        }
    }
}

/// Builds each variant's `head`: what a whole 200 response of it carries, so that serving
/// it is a clone rather than a dozen insertions.
pub(crate) fn prebuild(entry: &mut Entry, cache_control: Option<&HeaderValue>, common: &HeaderMap) {
    let head = |variant: &Variant, encoding: Option<&'static str>| {
        let mut headers = common.clone();
        headers.reserve(8);
        headers.insert(header::ETAG, variant.etag.clone());
        headers.insert(header::LAST_MODIFIED, entry.last_modified.clone());
        if let Some(cache_control) = cache_control {
            headers.insert(header::CACHE_CONTROL, cache_control.clone());
        }
        if entry.vary {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        headers.insert(header::CONTENT_TYPE, entry.content_type.clone());
        match encoding {
            Some(encoding) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            None => {
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(variant.len));
        let wire = wire(&headers);
        (headers, wire)
    };
    let identity = head(&entry.identity, None);
    let gzip = entry.gzip.as_ref().map(|v| head(v, Some("gzip")));
    let brotli = entry.brotli.as_ref().map(|v| head(v, Some("br")));
    (entry.identity.head, entry.identity.wire) = identity;
    if let (Some(variant), Some(head)) = (entry.gzip.as_mut(), gzip) {
        (variant.head, variant.wire) = head;
    }
    if let (Some(variant), Some(head)) = (entry.brotli.as_mut(), brotli) {
        (variant.head, variant.wire) = head;
    }
}

/// A 200's status line and `headers` as hyper writes them over HTTP/1.1: lower-case names, in
/// the map's order, each line ending in CRLF (its `date` and the blank line come after).
fn wire(headers: &HeaderMap) -> Bytes {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Bytes::from(out)
}

/// The whole variant with its prebuilt head, if the plan is a plain 200 of bytes in memory.
pub(crate) fn full(plan: &Plan<'_>, head: bool) -> Option<Response<Body>> {
    let Content::Memory(bytes) = &plan.variant.content else {
        return None;
    };
    if plan.status != StatusCode::OK || plan.range.is_some() {
        return None;
    }
    let body = if head {
        Body::Empty
    } else {
        Body::bytes(bytes.clone())
    };
    let mut response = Response::new(body);
    *response.headers_mut() = plan.variant.head.clone();
    Some(response)
}

/// Turns a plan into a response (opens the file for a body on disk).
pub(crate) async fn respond(
    entry: &Entry,
    plan: &Plan<'_>,
    cache_control: Option<&HeaderValue>,
    head: bool,
) -> std::io::Result<Response<Body>> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = plan.status;
    // Room for these and the security headers, so that the map never grows.
    *response.headers_mut() = HeaderMap::with_capacity(16);
    let headers = response.headers_mut();
    headers.insert(header::ETAG, plan.variant.etag.clone());
    headers.insert(header::LAST_MODIFIED, entry.last_modified.clone());
    if let Some(cache_control) = cache_control {
        headers.insert(header::CACHE_CONTROL, cache_control.clone());
    }
    if entry.vary {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if plan.status == StatusCode::NOT_MODIFIED {
        return Ok(response);
    }
    headers.insert(header::CONTENT_TYPE, entry.content_type.clone());
    if let Some(encoding) = plan.encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    } else {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let full = plan.variant.len;
    if plan.status == StatusCode::RANGE_NOT_SATISFIABLE {
        headers.insert(
            header::CONTENT_RANGE,
            header_value(format!("bytes */{full}")),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        return Ok(response);
    }
    let (start, len) = match plan.range {
        Some((first, last)) => {
            headers.insert(
                header::CONTENT_RANGE,
                header_value(format!("bytes {first}-{last}/{full}")),
            );
            (first, last - first + 1)
        }
        None => (0, full),
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if head {
        return Ok(response);
    }
    *response.body_mut() = match &plan.variant.content {
        Content::Memory(bytes) => {
            let end = usize::try_from(start + len)
                .unwrap_or(bytes.len())
                .min(bytes.len());
            let begin = usize::try_from(start).unwrap_or(end).min(end);
            Body::bytes(bytes.slice(begin..end))
        }
        Content::Disk(path) => {
            let mut file = tokio::fs::File::open(path).await?;
            if start > 0 {
                file.seek(std::io::SeekFrom::Start(start)).await?;
            }
            Body::File {
                file,
                remaining: len,
            }
        }
    };
    Ok(response)
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::files::resolve::FileKey;
    use bytes::Bytes;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry() -> Entry {
        let variant = |tag: &'static str, body: &'static [u8]| Variant {
            etag: HeaderValue::from_static(tag),
            len: body.len() as u64,
            content: Content::Memory(Bytes::from_static(body)),
            sibling: None,
            head: HeaderMap::new(),
            wire: Bytes::new(),
        };
        let meta = std::fs::metadata(".").expect("cwd");
        Entry {
            stat_path: ".".into(),
            key: FileKey::of(&meta),
            content_type: HeaderValue::from_static("text/plain; charset=utf-8"),
            is_html: false,
            modified: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            last_modified: HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"),
            identity: variant("\"id\"", b"0123456789"),
            gzip: Some(variant("\"id-gz\"", b"gz")),
            brotli: Some(variant("\"br\"", b"br")),
            vary: true,
            watched: false,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn get(
        pairs: &[(&'static str, &'static str)],
    ) -> (StatusCode, Option<&'static str>, Option<(u64, u64)>) {
        let entry = Box::leak(Box::new(entry()));
        let plan = plan(entry, &Method::GET, &headers(pairs));
        (plan.status, plan.encoding, plan.range)
    }

    #[test]
    fn encoding_follows_accept_encoding() {
        assert_eq!(get(&[]).1, None);
        assert_eq!(
            get(&[("accept-encoding", "gzip, deflate, br")]).1,
            Some("br")
        );
        assert_eq!(get(&[("accept-encoding", "gzip")]).1, Some("gzip"));
        assert_eq!(
            get(&[("accept-encoding", "br;q=0, gzip;q=0.5")]).1,
            Some("gzip")
        );
        assert_eq!(get(&[("accept-encoding", "gzip;q=0")]).1, None);
        assert_eq!(get(&[("accept-encoding", "*")]).1, Some("br"));
        assert_eq!(get(&[("accept-encoding", "*, br;q=0")]).1, Some("gzip"));
        assert_eq!(get(&[("accept-encoding", "identity")]).1, None);
        // A range is of the identity body.
        assert_eq!(
            get(&[("accept-encoding", "gzip"), ("range", "bytes=0-1")]).1,
            None
        );
    }

    #[test]
    fn conditional_requests() {
        assert_eq!(
            get(&[("if-none-match", "\"id\"")]).0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&[("if-none-match", "W/\"id\"")]).0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&[("if-none-match", "\"x\", \"id\"")]).0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(get(&[("if-none-match", "*")]).0, StatusCode::NOT_MODIFIED);
        assert_eq!(get(&[("if-none-match", "\"other\"")]).0, StatusCode::OK);
        // The tag is per representation.
        assert_eq!(
            get(&[("if-none-match", "\"id\""), ("accept-encoding", "gzip")]).0,
            StatusCode::OK
        );
        assert_eq!(
            get(&[("if-none-match", "\"id-gz\""), ("accept-encoding", "gzip")]).0,
            StatusCode::NOT_MODIFIED
        );
        let same = "Tue, 14 Nov 2023 22:13:20 GMT";
        assert_eq!(
            get(&[("if-modified-since", same)]).0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&[("if-modified-since", "Wed, 15 Nov 2023 00:00:00 GMT")]).0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&[("if-modified-since", "Mon, 13 Nov 2023 00:00:00 GMT")]).0,
            StatusCode::OK
        );
        assert_eq!(get(&[("if-modified-since", "garbage")]).0, StatusCode::OK);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            get(&[("if-none-match", "\"other\""), ("if-modified-since", same)]).0,
            StatusCode::OK
        );
    }

    #[test]
    fn ranges() {
        let partial = StatusCode::PARTIAL_CONTENT;
        assert_eq!(
            get(&[("range", "bytes=0-3")]),
            (partial, None, Some((0, 3)))
        );
        assert_eq!(get(&[("range", "bytes=5-")]), (partial, None, Some((5, 9))));
        assert_eq!(get(&[("range", "bytes=-4")]), (partial, None, Some((6, 9))));
        assert_eq!(
            get(&[("range", "bytes=-40")]),
            (partial, None, Some((0, 9)))
        );
        assert_eq!(
            get(&[("range", "bytes=8-100")]),
            (partial, None, Some((8, 9)))
        );
        assert_eq!(
            get(&[("range", "bytes=10-")]).0,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            get(&[("range", "bytes=-0")]).0,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        for ignored in [
            "bytes=0-1,3-4",
            "bytes=3-1",
            "bytes=x-1",
            "items=0-1",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(
                get(&[("range", ignored)]),
                (StatusCode::OK, None, None),
                "{ignored}"
            );
        }
        assert_eq!(
            get(&[("range", "bytes=0-1"), ("if-range", "\"id\"")]).0,
            partial
        );
        assert_eq!(
            get(&[("range", "bytes=0-1"), ("if-range", "\"old\"")]).0,
            StatusCode::OK
        );
        assert_eq!(
            get(&[("range", "bytes=0-1"), ("if-range", "W/\"id\"")]).0,
            StatusCode::OK
        );
        assert_eq!(
            get(&[
                ("range", "bytes=0-1"),
                ("if-range", "Tue, 14 Nov 2023 22:13:20 GMT")
            ])
            .0,
            partial
        );
        assert_eq!(
            get(&[
                ("range", "bytes=0-1"),
                ("if-range", "Mon, 13 Nov 2023 00:00:00 GMT")
            ])
            .0,
            StatusCode::OK
        );
    }

    #[test]
    fn head_ignores_range() {
        let entry = entry();
        let plan = plan(&entry, &Method::HEAD, &headers(&[("range", "bytes=0-1")]));
        assert_eq!(plan.status, StatusCode::OK);
    }
}
