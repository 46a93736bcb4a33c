//! FastCGI upstreams (`fastcgi://host:port`, PHP-FPM and any other responder), as nginx's
//! `fastcgi_pass` speaks it: the record layer of the FastCGI 1.0 specification, one request per
//! connection (nginx's default, `fastcgi_keep_conn off`: PHP-FPM binds a worker to each open
//! connection, so idle pooled connections would starve it).
//!
//! 1. the script: the path up to its first `.php` segment end (the rest is `PATH_INFO`); a
//!    path ending in `/` runs its `fastcgi_index`; any other path runs the entry's
//!    front controller (`path` + `fastcgi_index`). `SCRIPT_FILENAME` is `fastcgi_root` joined
//!    with it; a path with a `..` segment or a NUL is refused (400);
//! 2. `BEGIN_REQUEST` (responder), the CGI/1.1 variables (RFC 3875) and the request's fields
//!    as `HTTP_*` (not `Proxy`: httpoxy) in `PARAMS`, then the body as `STDIN` records while
//!    it arrives, concurrently with reading the answer;
//! 3. `STDOUT` up to the end of the CGI head (64 KiB at most) is the response head (`Status`,
//!    `Location` alone is 302); the rest streams to the client through a bounded channel
//!    (back-pressure reaches the upstream's socket); `STDERR` is logged, naming the upstream.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::body::Body;
use super::proxy::{Failure, UpBody, remove_hop_by_hop};

const VERSION: u8 = 1;
const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;
const RESPONDER: u16 = 1;
/// The one request of each connection.
const REQUEST_ID: u16 = 1;
/// The largest record content.
const MAX_CONTENT: usize = 65_535;
/// The largest CGI response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Chunks of the response body in flight between the upstream's socket and the client.
const IN_FLIGHT: usize = 4;

/// One `fastcgi://host:port` upstream.
#[derive(Debug)]
pub(crate) struct FastCgi {
    /// `host:port`.
    addr: String,
    /// `fastcgi_root`.
    root: PathBuf,
    /// `fastcgi_index`.
    index: String,
    connect_timeout: Duration,
}

/// What the CGI variables say of the client and the request's name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    pub peer: SocketAddr,
    pub secure: bool,
    /// The name (and port) the client asked for.
    pub host: &'a str,
    /// The `[[web.proxy]]` path the request matched.
    pub prefix: &'a str,
}

impl FastCgi {
    pub fn new(addr: &str, root: PathBuf, index: &str, connect_timeout: Duration) -> Self {
        Self {
            addr: addr.to_owned(),
            root,
            index: index.to_owned(),
            connect_timeout,
        }
    }

    /// Runs the script for `parts` with `body` as its input; the response streams back.
    pub async fn send(
        &self,
        parts: &Parts,
        body: UpBody,
        client: Client<'_>,
    ) -> Result<Response<Body>, Failure> {
        let script = Script::of(parts.uri.path(), client.prefix, &self.index)
            .ok_or(Failure::BadRequest("bad request target\n"))?;
        let mut head = Vec::with_capacity(1024);
        record_header(&mut head, BEGIN_REQUEST, 8);
        head.extend_from_slice(&RESPONDER.to_be_bytes());
        head.extend_from_slice(&[0; 6]); // flags (close after the request), reserved
        let params = self.params(parts, client, &script);
        for chunk in params.chunks(MAX_CONTENT) {
            record_header(&mut head, PARAMS, chunk.len());
            head.extend_from_slice(chunk);
        }
        record_header(&mut head, PARAMS, 0);
        let stream = match tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(&self.addr),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) => return Err(Failure::Connect),
            Err(_) => return Err(Failure::Timeout),
        };
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        write.write_all(&head).await.map_err(|_| Failure::Connect)?;
        let mut stdin = AbortOnDrop(tokio::spawn(write_stdin(write, body)));
        let mut reader = BufReader::with_capacity(64 * 1024, read);
        let mut stdin_done = false;
        let (response, rest) = {
            let read_head = read_head(&mut reader, &self.addr);
            tokio::pin!(read_head);
            loop {
                tokio::select! {
                    written = &mut stdin.0, if !stdin_done => {
                        stdin_done = true;
                        match written {
                            Ok(Err(StdinError::TooLarge)) => return Err(Failure::TooLarge),
                            Ok(Err(StdinError::Client)) => {
                                return Err(Failure::BadRequest("incomplete request body\n"));
                            }
                            // The upstream stopped reading: its answer (or its end) says why.
                            Ok(Err(StdinError::Upstream) | Ok(())) | Err(_) => {}
                        }
                    }
                    head = &mut read_head => break head?,
                }
            }
        };
        let (sender, receiver) = mpsc::channel(IN_FLIGHT);
        let addr = self.addr.clone();
        tokio::spawn(async move {
            // The input is no use once the answer is complete: the task ends with the socket.
            let _stdin = stdin;
            if !rest.is_empty() && sender.send(Ok(rest)).await.is_err() {
                return;
            }
            stream_stdout(reader, sender, &addr).await;
        });
        let (parts, ()) = response.into_parts();
        Ok(Response::from_parts(parts, Body::Stream(receiver)))
    }

    /// A connection, within the connect timeout.
    pub async fn connect(&self) -> std::io::Result<TcpStream> {
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.addr)).await {
            Ok(stream) => stream,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            )),
        }
    }

    /// The CGI/1.1 variables (RFC 3875 §4.1) and the request's fields, name-value encoded.
    fn params(&self, parts: &Parts, client: Client<'_>, script: &Script) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let root = self.root.to_string_lossy();
        let root = root.trim_end_matches('/');
        let (server_name, port) = match client.host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(']') || name.starts_with('[') => {
                (name, port.to_owned())
            }
            _ => (
                client.host,
                if client.secure { "443" } else { "80" }.to_owned(),
            ),
        };
        let query = parts.uri.query().unwrap_or("");
        let request_uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let protocol = match parts.version {
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let peer_ip = client.peer.ip().to_canonical().to_string();
        let peer_port = client.peer.port().to_string();
        let filename = format!("{root}{}", script.name);
        let mut pair = |name: &[u8], value: &[u8]| name_value(&mut out, name, value);
        pair(b"GATEWAY_INTERFACE", b"CGI/1.1");
        pair(b"SERVER_SOFTWARE", b"onebox");
        pair(b"SERVER_PROTOCOL", protocol.as_bytes());
        pair(b"SERVER_NAME", server_name.as_bytes());
        pair(b"SERVER_PORT", port.as_bytes());
        pair(b"REQUEST_METHOD", parts.method.as_str().as_bytes());
        pair(b"REQUEST_URI", request_uri.as_bytes());
        pair(b"QUERY_STRING", query.as_bytes());
        pair(b"DOCUMENT_ROOT", root.as_bytes());
        pair(b"DOCUMENT_URI", script.name.as_bytes());
        pair(b"SCRIPT_NAME", script.name.as_bytes());
        pair(b"SCRIPT_FILENAME", filename.as_bytes());
        if !script.path_info.is_empty() {
            let translated = format!("{root}{}", script.path_info);
            pair(b"PATH_INFO", script.path_info.as_bytes());
            pair(b"PATH_TRANSLATED", translated.as_bytes());
        }
        pair(b"REMOTE_ADDR", peer_ip.as_bytes());
        pair(b"REMOTE_PORT", peer_port.as_bytes());
        pair(
            b"REQUEST_SCHEME",
            if client.secure { b"https" } else { b"http" },
        );
        if client.secure {
            pair(b"HTTPS", b"on");
        }
        // PHP reads `$_SERVER['REDIRECT_STATUS']` to know it runs behind a web server.
        pair(b"REDIRECT_STATUS", b"200");
        for (key, name) in [
            (header::CONTENT_TYPE, b"CONTENT_TYPE".as_slice()),
            (header::CONTENT_LENGTH, b"CONTENT_LENGTH".as_slice()),
        ] {
            if let Some(value) = parts.headers.get(key) {
                pair(name, value.as_bytes());
            }
        }
        let mut name = Vec::with_capacity(64);
        for key in parts.headers.keys() {
            if key == header::CONTENT_TYPE || key == header::CONTENT_LENGTH || key == "proxy" {
                continue;
            }
            name.clear();
            name.extend_from_slice(b"HTTP_");
            name.extend(key.as_str().bytes().map(|b| match b {
                b'-' => b'_',
                b => b.to_ascii_uppercase(),
            }));
            let separator: &[u8] = if key == header::COOKIE { b"; " } else { b", " };
            let mut value = Vec::new();
            for (i, v) in parts.headers.get_all(key).iter().enumerate() {
                if i > 0 {
                    value.extend_from_slice(separator);
                }
                value.extend_from_slice(v.as_bytes());
            }
            pair(&name, &value);
        }
        out
    }
}

/// The script a path runs, and the rest of the path.
#[derive(Debug, PartialEq, Eq)]
struct Script {
    /// `SCRIPT_NAME`, from `/`.
    name: String,
    /// `PATH_INFO` (empty when none).
    path_info: String,
}

impl Script {
    /// The script for `path` (percent-encoded, as requested) under the entry `prefix`;
    /// `None` for a path that would leave the root.
    fn of(path: &str, prefix: &str, index: &str) -> Option<Self> {
        let path = percent_decode(path)?;
        if path.split('/').any(|segment| segment == "..") || path.contains(['\0', '\\']) {
            return None;
        }
        let mut from = 0;
        while let Some(at) = path[from..].find(".php") {
            let end = from + at + 4;
            if end == path.len() || path.as_bytes()[end] == b'/' {
                return Some(Self {
                    name: path[..end].to_owned(),
                    path_info: path[end..].to_owned(),
                });
            }
            from = end;
        }
        let name = if path.ends_with('/') {
            format!("{path}{index}")
        } else {
            let prefix = prefix.trim_end_matches('/');
            format!("{prefix}/{index}")
        };
        Some(Self {
            name,
            path_info: String::new(),
        })
    }
}

/// `%XX` decoded; `None` if the result is not UTF-8 or an escape is malformed.
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The 8-byte record header (FastCGI 1.0 §3.3), without padding.
fn record_header(out: &mut Vec<u8>, kind: u8, len: usize) {
    let len = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    let id = REQUEST_ID.to_be_bytes();
    out.extend_from_slice(&[VERSION, kind, id[0], id[1], len[0], len[1], 0, 0]);
}

/// A name-value pair (FastCGI 1.0 §3.4): lengths under 128 in one byte, else four.
fn name_value(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            let len = u32::try_from(len).unwrap_or(u32::MAX >> 1) | 0x8000_0000;
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Why the request body did not all reach the upstream.
#[derive(Debug)]
enum StdinError {
    /// It went past the entry's limit.
    TooLarge,
    /// The client's body broke off.
    Client,
    /// The upstream's socket closed.
    Upstream,
}

/// Streams `body` as `STDIN` records, then the empty one that ends it.
async fn write_stdin(mut write: OwnedWriteHalf, mut body: UpBody) -> Result<(), StdinError> {
    let mut header = Vec::with_capacity(8);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                StdinError::TooLarge
            } else {
                StdinError::Client
            }
        })?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers: FastCGI has no place for them
        };
        while data.has_remaining() {
            let chunk = data.split_to(data.len().min(MAX_CONTENT));
            header.clear();
            record_header(&mut header, STDIN, chunk.len());
            let mut record = Buf::chain(header.as_slice(), chunk);
            write
                .write_all_buf(&mut record)
                .await
                .map_err(|_| StdinError::Upstream)?;
        }
    }
    header.clear();
    record_header(&mut header, STDIN, 0);
    write
        .write_all(&header)
        .await
        .map_err(|_| StdinError::Upstream)
}

/// One record: its type and content.
async fn read_record(reader: &mut BufReader<OwnedReadHalf>) -> std::io::Result<(u8, Bytes)> {
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).await?;
    if header[0] != VERSION {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a FastCGI record",
        ));
    }
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let padding = usize::from(header[6]);
    let mut content = BytesMut::zeroed(len + padding);
    reader.read_exact(&mut content).await?;
    content.truncate(len);
    Ok((header[1], content.freeze()))
}

/// Reads `STDOUT` up to the end of the CGI head: the response, and what followed the head.
async fn read_head(
    reader: &mut BufReader<OwnedReadHalf>,
    addr: &str,
) -> Result<(Response<()>, Bytes), Failure> {
    let mut head = BytesMut::new();
    loop {
        let (kind, content) = read_record(reader).await.map_err(|_| Failure::Broken)?;
        match kind {
            STDOUT => {
                head.extend_from_slice(&content);
                if let Some((end, skip)) = head_end(&head) {
                    let rest = head.split_off(end + skip).freeze();
                    head.truncate(end);
                    return Ok((parse_head(&head)?, rest));
                }
                if head.len() > MAX_HEAD {
                    return Err(Failure::Broken);
                }
            }
            STDERR => log_stderr(addr, &content),
            END_REQUEST => return Err(Failure::Broken),
            _ => {}
        }
    }
}

/// Streams the rest of `STDOUT` into `sender` until `END_REQUEST`.
async fn stream_stdout(
    mut reader: BufReader<OwnedReadHalf>,
    sender: mpsc::Sender<std::io::Result<Bytes>>,
    addr: &str,
) {
    loop {
        match read_record(&mut reader).await {
            Ok((STDOUT, content)) if !content.is_empty() => {
                if sender.send(Ok(content)).await.is_err() {
                    return; // the client left
                }
            }
            Ok((STDERR, content)) => log_stderr(addr, &content),
            Ok((END_REQUEST, _)) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(
                    upstream = %format!("fastcgi://{addr}"),
                    %error,
                    "proxy: upstream broke off its response"
                );
                let _ = sender.send(Err(error)).await;
                return;
            }
        }
    }
}

fn log_stderr(addr: &str, content: &[u8]) {
    let text = String::from_utf8_lossy(&content[..content.len().min(2048)]);
    let text = text.trim_end();
    if !text.is_empty() {
        tracing::warn!(upstream = %format!("fastcgi://{addr}"), stderr = %text, "proxy: upstream said");
    }
}

/// Where the blank line ending a CGI head is, and its length.
fn head_end(head: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr::memmem::find(head, b"\r\n\r\n").map(|at| (at, 4));
    let lf = memchr::memmem::find(head, b"\n\n").map(|at| (at, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A CGI response head (RFC 3875 §6.3): `Status`, or 302 with a `Location` alone, else 200.
fn parse_head(head: &[u8]) -> Result<Response<()>, Failure> {
    let mut response = Response::new(());
    let mut status = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Failure::Broken)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"status") {
            let code = value.get(..3).ok_or(Failure::Broken)?;
            status = Some(StatusCode::from_bytes(code).map_err(|_| Failure::Broken)?);
            continue;
        }
        let name = HeaderName::from_bytes(name).map_err(|_| Failure::Broken)?;
        let value = HeaderValue::from_bytes(value).map_err(|_| Failure::Broken)?;
        response.headers_mut().append(name, value);
    }
    *response.status_mut() = match status {
        Some(status) => status,
        None if response.headers().contains_key(header::LOCATION) => StatusCode::FOUND,
        None => StatusCode::OK,
    };
    remove_hop_by_hop(response.headers_mut());
    Ok(response)
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(path: &str) -> Option<(String, String)> {
        Script::of(path, "/app/", "index.php").map(|s| (s.name, s.path_info))
    }

    #[test]
    fn the_script_of_a_path() {
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(script("/app/x.php"), pair("/app/x.php", ""));
        assert_eq!(script("/app/x.php/a/b"), pair("/app/x.php", "/a/b"));
        assert_eq!(script("/app/x.phpz/y.php"), pair("/app/x.phpz/y.php", ""));
        assert_eq!(script("/app/dir/"), pair("/app/dir/index.php", ""));
        assert_eq!(script("/app/pretty/url"), pair("/app/index.php", ""));
        assert_eq!(script("/app/%61.php"), pair("/app/a.php", ""));
        assert_eq!(script("/app/../etc/passwd.php"), None);
        assert_eq!(script("/app/%2e%2e/x.php"), None);
        assert_eq!(script("/app/x%00.php"), None);
    }

    #[test]
    fn name_value_lengths() {
        let mut out = Vec::new();
        name_value(&mut out, b"A", &[b'x'; 200]);
        assert_eq!(&out[..5], &[1, 0x80, 0, 0, 200]);
        assert_eq!(out.len(), 1 + 4 + 1 + 200);
    }

    #[test]
    fn cgi_heads() {
        let response = parse_head(b"Status: 404 Not Found\r\nContent-Type: text/html").unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["content-type"], "text/html");
        let response = parse_head(b"Location: /x").unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert!(parse_head(b"no colon").is_err());
        assert_eq!(head_end(b"A: b\n\nbody"), Some((4, 2)));
        assert_eq!(head_end(b"A: b\r\n\r\nbody\n\n"), Some((4, 4)));
    }
}
