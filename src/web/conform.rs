//! What RFC 9110, 9112 and 9113 tell a server to refuse that hyper and h2 let through.
//!
//! hyper's HTTP/1 parser already refuses, with 400 and a closed connection: whitespace
//! between a field name and its colon, obsolete line folding, bare CR, control characters in
//! field values, invalid field names, a bad request line (method token, target, version,
//! extra spaces), differing `Content-Length` values or a list of them, a `Transfer-Encoding`
//! whose final coding is not `chunked`, and `Transfer-Encoding` in HTTP/1.0 (RFC 9112 §2.2,
//! §5, §6); `Content-Length` beside `Transfer-Encoding` is dropped and the connection closed
//! after the response (§6.3). The h2 crate resets the stream of a malformed HTTP/2 request:
//! missing, repeated, unknown or misplaced pseudo-header fields, connection-specific fields,
//! `TE` other than `trailers`, upper-case field names, `:protocol` outside extended CONNECT,
//! and a body that disagrees with `content-length` (RFC 9113 §8.1.1–§8.3). `tests/web/conform.rs`
//! checks each of those against the running server.
//!
//! Left to [`check`], once per request before anything else:
//!
//! 1. `Host` (RFC 9112 §3.2, RFC 9110 §7.2): an HTTP/1.1 request without one, or any request
//!    with more than one or an invalid one (RFC 3986 `host [":" port]`, not empty) is 400;
//! 2. the target's authority (absolute-form in HTTP/1, `:authority` in HTTP/2): userinfo is
//!    400 (RFC 9110 §4.2.4), so is a scheme other than `http` or `https`; in HTTP/1 it wins over
//!    `Host` (RFC 9112 §3.2.2), in HTTP/2 a `Host` naming another authority is 400
//!    (RFC 9113 §8.3.1);
//! 3. HTTP/2 field values that start or end with whitespace are 400 (RFC 9113 §8.2.1); a
//!    `:path` longer than the head limit is 414, a header list longer than it 431 (the limit
//!    hyper applies to an HTTP/1 head; h2 itself is given room for twice as much so that the
//!    two cases can be told apart);
//! 4. a transfer coding other than `chunked` is 501 (RFC 9112 §6.1), `chunked` twice is 400;
//! 5. an `Expect` other than `100-continue` is 417 (RFC 9110 §10.1.1).
//!
//! The result is the authority the request is for, checked, to route by.

use http::header::{self, HeaderMap};
use http::{Request, StatusCode, Uri, Version};

/// A request refused, with its status and a line of text for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// 400, 414, 417, 431 or 501.
    pub status: StatusCode,
    /// The response body.
    pub text: &'static str,
}

const fn refuse(status: StatusCode, text: &'static str) -> Refusal {
    Refusal { status, text }
}

const BAD_HOST: Refusal = refuse(StatusCode::BAD_REQUEST, "bad Host header\n");

/// Checks `request`; returns the authority it is for (`None`: an HTTP/1.0 request without
/// one). `max_head` is `web.max_header_bytes`.
pub(crate) fn check<B>(request: &Request<B>, max_head: usize) -> Result<Option<&str>, Refusal> {
    let headers = request.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "more than one Host header\n",
        ));
    }
    let host = match host {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|h| valid_authority(h))
                .ok_or(BAD_HOST)?,
        ),
        None => None,
    };
    let target = target_authority(request.uri())?;
    let authority = match request.version() {
        Version::HTTP_2 => {
            if let (Some(target), Some(host)) = (target, host)
                && !target.eq_ignore_ascii_case(host)
            {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "Host differs from :authority\n",
                ));
            }
            http2_fields(request, max_head)?;
            target.or(host)
        }
        version => {
            if host.is_none() && version != Version::HTTP_10 {
                return Err(refuse(StatusCode::BAD_REQUEST, "missing Host header\n"));
            }
            transfer_codings(headers)?;
            target.or(host)
        }
    };
    if let Some(expect) = headers.get(header::EXPECT)
        && !expect.as_bytes().eq_ignore_ascii_case(b"100-continue")
    {
        return Err(refuse(
            StatusCode::EXPECTATION_FAILED,
            "only 100-continue is expected\n",
        ));
    }
    Ok(authority)
}

/// The authority of an absolute-form target or `:authority`, if any, checked.
fn target_authority(uri: &Uri) -> Result<Option<&str>, Refusal> {
    let Some(authority) = uri.authority() else {
        return Ok(None);
    };
    if !matches!(uri.scheme_str(), None | Some("http" | "https")) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "only http and https are served\n",
        ));
    }
    let authority = authority.as_str();
    if !valid_authority(authority) {
        return Err(refuse(StatusCode::BAD_REQUEST, "bad request authority\n"));
    }
    Ok(Some(authority))
}

/// `host [":" port]` of RFC 3986 §3.2.2–3.2.3 with a non-empty host and no userinfo:
/// `[IPv6]`, or a reg-name (IPv4 addresses are reg-names too), then digits.
pub(crate) fn valid_authority(authority: &str) -> bool {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((literal, rest)) = rest.split_once(']') else {
            return false;
        };
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match rest {
            "" => return true,
            rest => ("x", rest.strip_prefix(':')),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, Some("")),
        }
    };
    let Some(port) = port else { return false };
    !host.is_empty() && reg_name(host.as_bytes()) && port.bytes().all(|b| b.is_ascii_digit())
}

/// A table of the bytes that are ASCII letters and digits, or one of `others`: the URI
/// grammar's classes of bytes that stand for themselves (RFC 3986), built at compile time.
pub(super) const fn byte_set(others: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
}

/// unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2).
fn reg_name(bytes: &[u8]) -> bool {
    /// The bytes that stand for themselves in a reg-name: unreserved and sub-delims.
    const PLAIN: [bool; 256] = byte_set(b"-._~!$&'()*+,;=");
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if PLAIN[usize::from(byte)] {
            i += 1;
        } else if byte == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 3;
        } else {
            return false;
        }
    }
    true
}

/// HTTP/2 fields: no surrounding whitespace in values, and the head limit.
fn http2_fields<B>(request: &Request<B>, max_head: usize) -> Result<(), Refusal> {
    // RFC 9113 §6.5.2: a field's size is its name and value plus 32.
    const OVERHEAD: usize = 32;
    let path = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if path > max_head {
        return Err(refuse(
            StatusCode::URI_TOO_LONG,
            "request target too long\n",
        ));
    }
    let uri = request.uri();
    let pseudo = [
        (":method", request.method().as_str().len()),
        (":scheme", uri.scheme_str().map_or(0, str::len)),
        (
            ":authority",
            uri.authority().map_or(0, |a| a.as_str().len()),
        ),
        (":path", path),
    ];
    let mut size: usize = pseudo
        .iter()
        .map(|(name, len)| name.len() + len + OVERHEAD)
        .sum();
    for (name, value) in request.headers() {
        let value = value.as_bytes();
        if value.first().is_some_and(is_space) || value.last().is_some_and(is_space) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "field value with surrounding whitespace\n",
            ));
        }
        size += name.as_str().len() + value.len() + OVERHEAD;
    }
    if size > max_head {
        return Err(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large\n",
        ));
    }
    Ok(())
}

fn is_space(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t')
}

/// hyper makes sure the final coding is `chunked`; anything before it is refused.
fn transfer_codings(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut values = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let codings: Vec<&[u8]> = values
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .collect();
    let Some((_final, before)) = codings.split_last() else {
        return Ok(());
    };
    if before.iter().any(|c| c.eq_ignore_ascii_case(b"chunked")) {
        return Err(refuse(StatusCode::BAD_REQUEST, "chunked applied twice\n"));
    }
    if !before.is_empty() {
        return Err(refuse(
            StatusCode::NOT_IMPLEMENTED,
            "transfer coding not implemented\n",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for good in [
            "www.foobar.com",
            "www.foobar.com.",
            "www.foobar.com:8443",
            "www.foobar.com:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8443",
            "caf%C3%A9.example",
            "a_b.example",
        ] {
            assert!(valid_authority(good), "{good}");
        }
        for bad in [
            "",
            ":80",
            "u@www.foobar.com",
            "www.foobar.com/x",
            "www.foobar.com:abc",
            "www.foobar.com:80:80",
            "www.foo bar.com",
            "[::1",
            "[::1]x",
            "[not-v6]",
            "a%zz.example",
            "a%4",
            "www.foobar.com\\x",
        ] {
            assert!(!valid_authority(bad), "{bad:?}");
        }
    }

    fn request(version: Version, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().version(version).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    fn status(version: Version, uri: &str, headers: &[(&str, &str)]) -> u16 {
        match check(&request(version, uri, headers), 16384) {
            Ok(_) => 200,
            Err(refusal) => refusal.status.as_u16(),
        }
    }

    #[test]
    fn hosts() {
        let h1 = Version::HTTP_11;
        assert_eq!(status(h1, "/", &[("host", "a.example")]), 200);
        assert_eq!(status(h1, "/", &[]), 400);
        assert_eq!(status(Version::HTTP_10, "/", &[]), 200);
        assert_eq!(
            status(h1, "/", &[("host", "a.example"), ("host", "a.example")]),
            400
        );
        assert_eq!(status(h1, "/", &[("host", "")]), 400);
        assert_eq!(
            status(h1, "http://b.example/", &[("host", "a.example")]),
            200
        );
        assert_eq!(status(h1, "http://b.example/", &[]), 400);
        assert_eq!(
            status(h1, "http://u@b.example/", &[("host", "b.example")]),
            400
        );
        assert_eq!(
            status(h1, "ftp://b.example/", &[("host", "b.example")]),
            400
        );
        let authority = |uri| {
            check(&request(h1, uri, &[("host", "a.example")]), 16384)
                .ok()
                .flatten()
                .map(str::to_owned)
        };
        assert_eq!(authority("/").as_deref(), Some("a.example"));
        assert_eq!(
            authority("http://b.example:8/x").as_deref(),
            Some("b.example:8")
        );
    }

    #[test]
    fn http2() {
        let h2 = Version::HTTP_2;
        assert_eq!(status(h2, "https://a.example/", &[]), 200);
        assert_eq!(
            status(h2, "https://a.example/", &[("host", "A.example")]),
            200
        );
        assert_eq!(
            status(h2, "https://a.example/", &[("host", "b.example")]),
            400
        );
        assert_eq!(status(h2, "https://a.example/", &[("x", " v")]), 400);
        assert_eq!(status(h2, "https://a.example/", &[("x", "v\t")]), 400);
        assert_eq!(status(h2, "https://a.example/", &[("x", "a b")]), 200);
        let long_path = format!("https://a.example/{}", "p".repeat(20_000));
        assert_eq!(status(h2, &long_path, &[]), 414);
        let long_value = "v".repeat(20_000);
        assert_eq!(status(h2, "https://a.example/", &[("x", &long_value)]), 431);
    }

    #[test]
    fn codings_and_expectations() {
        let h1 = Version::HTTP_11;
        let host = ("host", "a.example");
        assert_eq!(
            status(h1, "/", &[host, ("transfer-encoding", "chunked")]),
            200
        );
        assert_eq!(
            status(h1, "/", &[host, ("transfer-encoding", "gzip, chunked")]),
            501
        );
        assert_eq!(
            status(
                h1,
                "/",
                &[
                    host,
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            ),
            400
        );
        assert_eq!(status(h1, "/", &[host, ("expect", "100-Continue")]), 200);
        assert_eq!(status(h1, "/", &[host, ("expect", "banana")]), 417);
    }
}
