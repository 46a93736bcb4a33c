//! WebSockets through the reverse proxy: the client's opening handshake, over HTTP/1.1 (an
//! `Upgrade: websocket` GET, RFC 6455 §4) or over HTTP/2 (extended CONNECT with
//! `:protocol = websocket`, RFC 8441 §4), always reaches the upstream as an HTTP/1.1 Upgrade;
//! once the upstream answers 101, the two connections are spliced byte for byte.
//!
//! - HTTP/1.1 client: the handshake fields (`Sec-WebSocket-Key`, `-Version`, `-Protocol`,
//!   `-Extensions`) pass as they are, and so does the upstream's 101 with its
//!   `Sec-WebSocket-Accept`: the client checks the upstream's answer to its own key;
//! - HTTP/2 client: there is no key (RFC 8441 §5), so onebox makes one for the upstream and
//!   checks its accept value; the client gets 200 with the chosen subprotocol and extensions;
//! - any other answer (403, a redirect) passes back as an ordinary response.

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::Body;
use crate::ops::accept::Hold;

/// The RFC 6455 §1.3 GUID the accept value is computed with.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A WebSocket opening handshake from the client.
#[derive(Debug)]
pub(crate) struct Handshake {
    over: Over,
    /// The client's side of the connection, once onebox has answered.
    client: OnUpgrade,
}

/// How the client opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Over {
    /// An HTTP/1.1 Upgrade.
    Http1,
    /// An HTTP/2 extended CONNECT; the key onebox sent the upstream in its name.
    Http2 { key: String },
}

impl Handshake {
    /// The handshake `request` opens, if it is one (and takes its upgrade).
    pub fn of<B>(request: &mut Request<B>) -> Option<Self> {
        let over = if request.version() == Version::HTTP_2 {
            let websocket = request.method() == Method::CONNECT
                && request
                    .extensions()
                    .get::<hyper::ext::Protocol>()
                    .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
            if !websocket {
                return None;
            }
            Over::Http2 { key: new_key()? }
        } else {
            let headers = request.headers();
            if request.method() != Method::GET
                || !has_token(headers, header::CONNECTION, "upgrade")
                || !has_token(headers, header::UPGRADE, "websocket")
            {
                return None;
            }
            Over::Http1
        };
        Some(Self {
            over,
            client: hyper::upgrade::on(request),
        })
    }

    /// Turns the request into the upstream's HTTP/1.1 opening handshake, but for its
    /// `Connection: upgrade` and `Upgrade: websocket`, which the proxy writes with its own
    /// fields (the client's are hop-by-hop).
    pub fn upstream_request(&self, parts: &mut Parts) {
        parts.method = Method::GET;
        parts.version = Version::HTTP_11;
        let headers = &mut parts.headers;
        if let Over::Http2 { key } = &self.over {
            if let Ok(key) = HeaderValue::try_from(key.as_str()) {
                headers.insert(header::SEC_WEBSOCKET_KEY, key);
            }
            headers
                .entry(header::SEC_WEBSOCKET_VERSION)
                .or_insert(HeaderValue::from_static("13"));
        }
    }

    /// The upstream's answer to the handshake, for the client. On 101 the two sides are
    /// spliced in a task of their own, which keeps the client's connection counted (`hold`:
    /// `web.max_connections`, the drain) and ends at the drain's deadline; `upstream` names it
    /// in log lines.
    pub fn answer(self, response: Response<Body>, upstream: &str, hold: &Hold) -> Response<Body> {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return response;
        }
        if let Over::Http2 { key } = &self.over {
            let accepted = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
            if accepted.is_none_or(|a| a.as_bytes() != accept(key).as_bytes()) {
                tracing::error!(upstream, "proxy: upstream's WebSocket handshake is wrong");
                return super::files::plain(StatusCode::BAD_GATEWAY, "upstream unavailable\n");
            }
        }
        let (mut parts, body) = response.into_parts();
        let upstream_side = match body {
            Body::Upstream(body) => body.upgrade(),
            _ => None,
        };
        let Some(mut tunnel) = upstream_side else {
            tracing::error!(
                upstream,
                "proxy: upstream's WebSocket connection is not there"
            );
            return super::files::plain(StatusCode::BAD_GATEWAY, "upstream unavailable\n");
        };
        let (client, name, hold) = (self.client, upstream.to_owned(), hold.clone());
        tokio::spawn(async move {
            let client = match client.await {
                Ok(client) => client,
                Err(error) => {
                    tracing::debug!(upstream = name, %error, "proxy: WebSocket not opened");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            tokio::select! {
                copied = tokio::io::copy_bidirectional(&mut client, &mut tunnel) => {
                    if let Err(error) = copied {
                        tracing::debug!(upstream = name, %error, "proxy: WebSocket ended with an error");
                    }
                }
                () = hold.closing.cancelled() => {
                    tracing::debug!(upstream = name, "proxy: WebSocket closed at the drain deadline");
                }
            }
            drop(hold);
        });
        parts.headers.remove(header::CONTENT_LENGTH);
        match self.over {
            Over::Http1 => {
                let headers = &mut parts.headers;
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            Over::Http2 { .. } => {
                parts.status = StatusCode::OK;
                parts.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
            }
        }
        Response::from_parts(parts, Body::Empty)
    }
}

/// Whether a comma-separated field holds `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base 64 (RFC 6455 §4.1).
fn new_key() -> Option<String> {
    let mut key = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).ok()?;
    Some(data_encoding::BASE64.encode(&key))
}

/// The `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
fn accept(key: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key.as_bytes());
    context.update(GUID);
    data_encoding::BASE64.encode(context.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_of_rfc_6455() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
