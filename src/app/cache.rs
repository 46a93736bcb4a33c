//! HTTP caching of the application's public reads (`/blog`, `/api/posts`): what browsers and
//! proxies may keep, and the cheap "not modified" answer.
//!
//! A post can change at any moment and must show at once, so nothing is kept without asking:
//! an anonymous reader's response is `Cache-Control: no-cache` with a strong `ETag` (a hash of
//! the body), and a request whose `If-None-Match` matches gets `304` without the body. A
//! signed-in viewer's page carries their name and CSRF token: `private, no-store`. Both vary
//! on `Cookie`, so a shared cache never hands one viewer's page to another.

use std::hash::Hasher;

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

/// The response for `body` (of `content_type`) to a request with `request` headers.
pub fn respond(
    request: &HeaderMap,
    audience: Audience,
    content_type: &'static str,
    body: String,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
    if audience == Audience::Private {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return (headers, body).into_response();
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
    (headers, body).into_response()
}

/// A strong validator for `body`: its length and a 64-bit hash, quoted. The hash is
/// rustc-hash's (a multiply-mix over 16 bytes at a time): it only tells versions of one page
/// apart, needs no resistance to chosen input, and runs over every uncached page.
fn etag(body: &str) -> String {
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(body.as_bytes());
    format!("\"{:x}-{:016x}\"", body.len(), hasher.finish())
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
        let first = respond(&request(None), Audience::Public, "text/html", "a".into());
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
            let again = respond(
                &request(Some(&header)),
                Audience::Public,
                "text/html",
                "a".into(),
            );
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{header}");
        }
        let changed = respond(
            &request(Some(&tag)),
            Audience::Public,
            "text/html",
            "b".into(),
        );
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()[header::ETAG], tag.as_str());
    }

    #[test]
    fn private_responses_are_never_stored() {
        let response = respond(
            &request(Some("*")),
            Audience::Private,
            "text/html",
            "a".into(),
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "private, no-store"
        );
        assert!(response.headers().get(header::ETAG).is_none());
        assert_eq!(response.headers()[header::VARY], "Cookie");
    }
}
