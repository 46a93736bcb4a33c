//! WebSockets through the reverse proxy over TLS: Debian's python3-websockets as the echo
//! upstream, tokio-tungstenite as the client, over an HTTP/1.1 Upgrade and over HTTP/2
//! extended CONNECT (RFC 8441, the client is hyper's HTTP/2 client).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{WebSocketStream, client_async};

use super::{Proto, WWW, tls_config};
use crate::harness::Onebox;

/// The echo upstream: it first says what it saw (path, subprotocol, X-Forwarded-*), then
/// sends back every message.
const ECHO_PY: &str = r#"
import asyncio, sys, websockets

async def echo(ws, path=None):
    request = getattr(ws, "request", None)
    path = request.path if request is not None else ws.path
    headers = request.headers if request is not None else ws.request_headers
    await ws.send("path=%s proto=%s xff=%s xfp=%s" % (path, ws.subprotocol,
        headers.get("X-Forwarded-For"), headers.get("X-Forwarded-Proto")))
    async for message in ws:
        await ws.send(message)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, subprotocols=["chat"],
                                max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

/// The echo server; killed when dropped.
struct Echo {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Echo {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("echo.py");
        std::fs::write(&script, ECHO_PY).expect("write echo.py");
        // Debian's interpreter, which has python3-websockets (not whatever python3 is first
        // on the PATH).
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (package python3-websockets)");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .map(|_| line)
        })
        .await
        .expect("join")
        .expect("echo server's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("echo server did not start: {line:?}"));
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS connection to the server's HTTPS listener for `proto`.
async fn tls(
    server: &Onebox,
    proto: Proto,
) -> impl AsyncRead + AsyncWrite + Unpin + Send + 'static {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&server.ca(), proto)));
    let tcp = tokio::net::TcpStream::connect(server.https)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from(WWW).expect("name");
    connector.connect(name, tcp).await.expect("TLS")
}

/// Checks the greeting, then echoes text and a large binary message.
async fn exchange<S>(mut ws: WebSocketStream<S>, proto: Proto)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let greeting = ws.next().await.expect("greeting").expect("greeting frame");
    assert_eq!(
        greeting,
        Message::text("path=/ws/echo?room=1 proto=chat xff=127.0.0.1 xfp=https"),
        "{proto:?}"
    );
    ws.send(Message::text("hello")).await.expect("send text");
    let echoed = ws.next().await.expect("echo").expect("echo frame");
    assert_eq!(echoed, Message::text("hello"), "{proto:?}");
    let large: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    ws.send(Message::binary(large.clone()))
        .await
        .expect("send binary");
    let echoed = ws.next().await.expect("echo").expect("echo frame");
    assert_eq!(echoed, Message::binary(large), "{proto:?}");
    ws.close(None).await.expect("close");
}

#[tokio::test]
async fn websockets_pass_through_over_http1_upgrade_and_http2_extended_connect() {
    let echo = Echo::start().await;
    let server = Onebox::builder()
        .shipped_zones()
        .toml(&format!(
            "[[web.proxy]]\npath = \"/ws/\"\nupstreams = [\"http://127.0.0.1:{}\"]\n",
            echo.port
        ))
        .start();
    let port = server.https.port();

    // HTTP/1.1: the Upgrade passes through, 101 and Sec-WebSocket-Accept come from upstream.
    let mut request = format!("wss://{WWW}:{port}/ws/echo?room=1")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat".parse().expect("value"));
    let (ws, response) = client_async(request, tls(&server, Proto::H1).await)
        .await
        .expect("WebSocket over HTTP/1.1 through onebox");
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    exchange(ws, Proto::H1).await;

    // HTTP/2: extended CONNECT with :protocol = websocket, answered 200.
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tls(&server, Proto::H2).await),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    // One ordinary request first: by its answer the server's SETTINGS (with
    // SETTINGS_ENABLE_CONNECT_PROTOCOL) have arrived.
    let health = hyper::Request::get(format!("https://{WWW}:{port}/healthz"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let health = sender.send_request(health).await.expect("healthz");
    assert_eq!(health.status(), 200);
    let mut connect = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .uri(format!("https://{WWW}:{port}/ws/echo?room=1"))
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat")
        .body(Empty::<Bytes>::new())
        .expect("request");
    connect
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let response = sender
        .send_request(connect)
        .await
        .expect("extended CONNECT through onebox");
    assert_eq!(response.status(), 200, "RFC 8441 §5: 200, not 101");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(!response.headers().contains_key("sec-websocket-accept"));
    let tunnel = hyper::upgrade::on(response).await.expect("HTTP/2 tunnel");
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(tunnel), Role::Client, None).await;
    exchange(ws, Proto::H2).await;

    // The same connection carries ordinary requests beside the tunnel.
    let again = hyper::Request::get(format!("https://{WWW}:{port}/healthz"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    assert_eq!(
        sender.send_request(again).await.expect("healthz").status(),
        200
    );
    drop(echo);
}

/// A WebSocket keeps its client connection counted once onebox has handed it over to the
/// splice: `onebox_http_connections` says 1, and with `web.max_connections = 1` a second
/// client is not served until the WebSocket closes.
#[tokio::test]
async fn an_open_websocket_counts_in_web_max_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let echo = Echo::start().await;
    let server = Onebox::builder()
        .shipped_zones()
        .web("max_connections = 1")
        .toml(&format!(
            "[[web.proxy]]\npath = \"/ws/\"\nupstreams = [\"http://127.0.0.1:{}\"]\n",
            echo.port
        ))
        .start();
    let port = server.https.port();
    let request = format!("wss://{WWW}:{port}/ws/echo?room=1")
        .into_client_request()
        .expect("request");
    let (mut ws, response) = client_async(request, tls(&server, Proto::H1).await)
        .await
        .expect("WebSocket over HTTP/1.1 through onebox");
    assert_eq!(response.status(), 101);
    let greeting = ws.next().await.expect("greeting").expect("greeting frame");
    assert!(
        greeting
            .to_text()
            .is_ok_and(|t| t.starts_with("path=/ws/echo"))
    );

    let open = crate::metrics::value(&server.scrape(), "onebox_http_connections");
    assert_eq!(open, 1.0, "the upgraded connection is still counted");

    // A second client: the kernel takes the connection, onebox does not serve it yet.
    let second = tokio::spawn({
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(tls_config(&server.ca(), Proto::H1)));
        let addr = server.https;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from(WWW).expect("name");
            let mut tls = connector.connect(name, tcp).await.expect("TLS");
            tls.write_all(
                format!("GET /healthz HTTP/1.1\r\nHost: {WWW}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("request");
            let mut answer = String::new();
            let _ = tls.read_to_string(&mut answer).await;
            answer
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(
        !second.is_finished(),
        "a second connection was served past web.max_connections = 1 with a WebSocket open"
    );
    // The WebSocket still works, and closing it frees the place.
    ws.send(Message::text("still here")).await.expect("send");
    let echoed = ws.next().await.expect("echo").expect("echo frame");
    assert_eq!(echoed, Message::text("still here"));
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = ws.next().await {}
    drop(ws);
    let answer = tokio::time::timeout(crate::harness::DEADLINE, second)
        .await
        .expect("the second client served once the WebSocket closed")
        .expect("task");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(echo);
}
