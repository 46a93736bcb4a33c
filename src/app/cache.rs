//! HTTP caching of the application's public reads (`/blog`, `/api/posts`): what browsers and
//! proxies may keep, and the cheap "not modified" answer.
//!
//! A post can change at any moment and must show at once, so nothing is kept without asking:
//! an anonymous reader's response is `Cache-Control: no-cache` with a strong `ETag` (a hash of
//! the body), and a request whose `If-None-Match` matches gets `304` without the body. A
//! signed-in viewer's page carries their name and CSRF token: `private, no-store`. Both vary
//! on `Cookie`, so a shared cache never hands one viewer's page to another.

use std::hash::Hasher;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Who a response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone: revalidate by ETag.
    Public,
    /// One signed-in viewer: never stored.
    Private,
}

/// The response for `body` (of `content_type`) to a request with `request` headers. The body
/// is handed on as it is (a `String` or the bytes of a rendered page), not copied.
pub fn respond(
    request: &HeaderMap,
    audience: Audience,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let body = body.into();
    let mut headers = HeaderMap::new();
    headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
    if audience == Audience::Private {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return with_body(headers, body);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let tag = etag(&body);
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    if matches(request, &tag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    with_body(headers, body)
}

/// A 200 response of `body` with exactly `headers` (`IntoResponse` for a body would set a
/// `Content-Type` of its own first, for `headers` to replace).
fn with_body(headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response
}

/// A strong validator for `body`: its length and a 64-bit hash, quoted, in hex. The hash is
/// rustc-hash's (a multiply-mix over 16 bytes at a time): it only tells versions of one page
/// apart, needs no resistance to chosen input, and runs over every uncached page.
fn etag(body: &[u8]) -> String {
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(body);
    let mut tag = String::with_capacity(36);
    tag.push('"');
    hex(&mut tag, body.len() as u64, 1);
    tag.push('-');
    hex(&mut tag, hasher.finish(), 16);
    tag.push('"');
    tag
}

/// `n` in lower-case hex, at least `width` digits (zero-padded), as `{:0width$x}` writes it.
fn hex(text: &mut String, n: u64, width: u32) {
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(width);
    for place in (0..digits).rev() {
        let nibble = (n >> (place * 4)) & 0xf;
        text.push(char::from(b"0123456789abcdef"[nibble as usize]));
    }
}

/// Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 asks for it) or is `*`.
pub(super) fn matches(request: &HeaderMap, tag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(if_none_match: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = if_none_match {
            headers.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    #[test]
    fn public_responses_revalidate_by_etag() {
        let first = respond(&request(None), Audience::Public, "text/html", "a");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let tag = first.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_owned();
        for header in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"x\", {tag}"),
            "*".into(),
        ] {
            let again = respond(&request(Some(&header)), Audience::Public, "text/html", "a");
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{header}");
        }
        let changed = respond(&request(Some(&tag)), Audience::Public, "text/html", "b");
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()[header::ETAG], tag.as_str());
    }

    #[test]
    fn etags_are_length_and_hash_in_hex() {
        for body in [&b""[..], b"a", &[b'x'; 4095], &[b'y'; 65536]] {
            let mut hasher = rustc_hash::FxHasher::default();
            hasher.write(body);
            assert_eq!(
                etag(body),
                format!("\"{:x}-{:016x}\"", body.len(), hasher.finish())
            );
        }
        for n in [0, 1, 15, 16, 255, 256, u64::MAX] {
            let mut text = String::new();
            hex(&mut text, n, 1);
            assert_eq!(text, format!("{n:x}"));
            text.clear();
            hex(&mut text, n, 16);
            assert_eq!(text, format!("{n:016x}"));
        }
    }

    #[test]
    fn bodies_keep_their_content_type() {
        for audience in [Audience::Public, Audience::Private] {
            let response = respond(&request(None), audience, "text/html", b"<p>".to_vec());
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html");
            assert_eq!(
                response
                    .headers()
                    .get_all(header::CONTENT_TYPE)
                    .iter()
                    .count(),
                1
            );
        }
    }

    #[test]
    fn private_responses_are_never_stored() {
        let response = respond(&request(Some("*")), Audience::Private, "text/html", "a");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "private, no-store"
        );
        assert!(response.headers().get(header::ETAG).is_none());
        assert_eq!(response.headers()[header::VARY], "Cookie");
    }
}
