//! The guard between a URL path and the file system: what may be asked for at all.
//!
//! The path is percent-decoded exactly once, then split into segments. Refused with 400:
//! invalid escapes, bytes that are not UTF-8 (overlong encodings of `.` and `/` included), NUL
//! and other control characters, backslashes, and any `.` or `..` segment whatever its encoding
//! (`..`, `%2e%2e`, `.%2E`, `%2e%2e%2f` all decode to a `..` segment). Refused with 404: any
//! segment starting with a dot (dotfiles, `.git/`), except a first segment `.well-known`
//! (RFC 8615). What passes is a relative path with no way up; `resolve` then makes sure no
//! symlink leads out of the root either.

/// A request path that may be looked up under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SitePath {
    /// The decoded segments joined with `/`, without leading or trailing slash ("" = the root).
    pub relative: String,
    /// The URL path ended with `/` (a directory was asked for).
    pub trailing_slash: bool,
}

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Malformed or an attempt to leave the root: 400.
    BadRequest,
    /// A hidden file: 404, as if it did not exist.
    Hidden,
}

/// Checks and decodes the path of a request URI.
pub(crate) fn check(uri_path: &str) -> Result<SitePath, Refused> {
    let Some(path) = uri_path.strip_prefix('/') else {
        return Err(Refused::BadRequest);
    };
    let decoded = percent_decode(path.as_bytes()).ok_or(Refused::BadRequest)?;
    let decoded = String::from_utf8(decoded).map_err(|_| Refused::BadRequest)?;
    if decoded.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Refused::BadRequest);
    }
    let mut relative = String::with_capacity(decoded.len());
    let mut hidden = false;
    for (index, segment) in decoded.split('/').filter(|s| !s.is_empty()).enumerate() {
        if segment == "." || segment == ".." {
            return Err(Refused::BadRequest);
        }
        if segment.starts_with('.') && !(index == 0 && segment == ".well-known") {
            hidden = true;
        }
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(segment);
    }
    if hidden {
        return Err(Refused::Hidden);
    }
    Ok(SitePath {
        trailing_slash: decoded.is_empty() || decoded.ends_with('/'),
        relative,
    })
}

/// Whether a relative path (of a file found on disk) has a hidden segment.
pub(crate) fn is_hidden(relative: &std::path::Path) -> bool {
    relative.components().enumerate().any(|(index, component)| {
        let name = component.as_os_str().as_encoded_bytes();
        name.starts_with(b".") && !(index == 0 && name == b".well-known")
    })
}

/// Decodes `%XX` escapes once; `None` for a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let high = hex(*bytes.next()?)?;
            let low = hex(*bytes.next()?)?;
            out.push(high << 4 | low);
        } else {
            out.push(byte);
        }
    }
    Some(out)
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> (String, bool) {
        let checked = check(path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        (checked.relative, checked.trailing_slash)
    }

    #[test]
    fn ordinary_paths_pass() {
        assert_eq!(ok("/"), (String::new(), true));
        assert_eq!(ok("/index.html"), ("index.html".into(), false));
        assert_eq!(ok("/a//b/"), ("a/b".into(), true));
        assert_eq!(ok("/caf%C3%A9%20menu.txt"), ("café menu.txt".into(), false));
        assert_eq!(ok("/a..b/c...txt"), ("a..b/c...txt".into(), false));
        assert_eq!(
            ok("/.well-known/acme-challenge/tok"),
            (".well-known/acme-challenge/tok".into(), false)
        );
        // Decoded once only: a double-encoded dot is a literal file name.
        assert_eq!(ok("/%252e%252e/x"), ("%2e%2e/x".into(), false));
    }

    #[test]
    fn every_encoding_of_dot_dot_is_refused() {
        for path in [
            "/..",
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/.%2e/x",
            "/%2e./x",
            "/a/%2e%2e%2f%2e%2e%2fetc/passwd",
            "/a%2f..%2fb",
            "/./x",
            "/a/.",
            "/%2e",
        ] {
            assert_eq!(check(path), Err(Refused::BadRequest), "{path}");
        }
    }

    #[test]
    fn malformed_paths_are_bad_requests() {
        for path in [
            "",
            "x",
            "/%",
            "/%2",
            "/%zz",
            "/a%00b",
            "/%c0%ae%c0%ae/x",
            "/%ff",
            "/a\\b",
            "/a%5c..%5cb",
            "/%0a",
        ] {
            assert_eq!(check(path), Err(Refused::BadRequest), "{path:?}");
        }
    }

    #[test]
    fn dotfiles_are_hidden() {
        for path in [
            "/.git/config",
            "/.env",
            "/a/.htpasswd",
            "/%2egit/HEAD",
            "/a/.well-known/x",
            "/.well-known/.x",
        ] {
            assert_eq!(check(path), Err(Refused::Hidden), "{path}");
        }
        assert!(is_hidden(std::path::Path::new("a/.secret")));
        assert!(!is_hidden(std::path::Path::new(".well-known/x")));
        assert!(!is_hidden(std::path::Path::new("a/b.txt")));
    }
}
