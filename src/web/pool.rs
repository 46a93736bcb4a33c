//! Keep-alive connections to one HTTP/1.1 upstream of the reverse proxy (`http://host:port` or
//! `unix:/path`), nginx's `upstream { keepalive N; }`: hyper's HTTP/1.1 client connections
//! (`hyper::client::conn::http1`), each driven by a task of its own, and a stack of the idle
//! ones.
//!
//! - a request takes the idle connection used last (its socket is the warmest), skipping closed
//!   ones, or opens a new one within `connect_timeout`;
//! - the connection comes back when the response body has been read to its end (see
//!   [`UpstreamBody`]): no task per request waits for it. One whose response was cut short, or
//!   that switched protocols (a WebSocket), is never reused;
//! - at most `keepalive` idle connections are kept; one idle past `keepalive_timeout` is closed
//!   (checked as requests come, and by a sweep every `keepalive_timeout` while the pool lives);
//! - a request that a reused connection could not even start (the upstream had closed it) is
//!   sent again on a new connection: it never reached the upstream.
//!
//! A pool is per upstream and per snapshot: a reload builds new ones, and the old connections
//! close as their last responses end.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::proxy::UpBody;

/// Where an upstream listens.
#[derive(Debug)]
pub(crate) enum Address {
    /// `host:port` (a name is resolved at each new connection).
    Tcp(String),
    /// A Unix socket.
    Unix(Arc<Path>),
}

/// One upstream's connections.
#[derive(Debug)]
pub(crate) struct Pool {
    address: Address,
    connect_timeout: Duration,
    /// Most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// `keepalive`: idle connections kept at most.
    max_idle: usize,
    /// `keepalive_timeout`.
    idle_timeout: Duration,
    /// Whether the sweep of idle connections runs.
    sweeping: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<UpBody>,
    since: Instant,
}

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection: refused, unreachable, or not within `connect_timeout` (`TimedOut`).
    Connect(io::Error),
    /// The connection failed or the answer was not HTTP (or the request body failed).
    Http(hyper::Error),
}

impl Pool {
    pub fn new(
        address: Address,
        connect_timeout: Duration,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            address,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            sweeping: AtomicBool::new(false),
        }
    }

    /// What a request's `Host` says when onebox has no name to pass on (health checks).
    pub fn host(&self) -> &str {
        match &self.address {
            Address::Tcp(authority) => authority,
            Address::Unix(_) => "localhost",
        }
    }

    /// Sends `request` (origin-form target, `Host` set) on an idle connection or a new one.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<UpBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    // After 101 the connection belongs to the protocol it switched to.
                    let again = response.status() != StatusCode::SWITCHING_PROTOCOLS;
                    let (parts, body) = response.into_parts();
                    let back = again.then(|| Checkin {
                        pool: self.clone(),
                        sender,
                    });
                    let body = UpstreamBody::new(body, back);
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut error) => match error.take_message() {
                    // Not sent: the upstream had closed this kept connection.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Http(error.into_error())),
                },
            }
        }
    }

    /// The idle connection used last that is ready for a request (older ones past the idle
    /// timeout, and closed ones, are let go).
    fn take(&self) -> Option<SendRequest<UpBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let entry = &idle[i];
            if entry.since.elapsed() >= self.idle_timeout {
                // It and everything below it have idled too long.
                idle.drain(..=i);
                return None;
            }
            if entry.sender.is_ready() {
                return Some(idle.remove(i).sender);
            }
            if entry.sender.is_closed() {
                idle.remove(i);
            }
            // Else its connection's task has not yet seen the end of its last exchange (it
            // runs on another thread): it stays for a later request.
        }
        None
    }

    /// Puts a connection whose exchange has ended back on the stack.
    fn put(self: &Arc<Self>, sender: SendRequest<UpBody>) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= self.max_idle {
            // The oldest goes.
            idle.remove(0);
        }
        idle.push(Idle {
            sender,
            since: Instant::now(),
        });
        drop(idle);
        if !self.sweeping.swap(true, Ordering::Relaxed) {
            tokio::spawn(sweep(Arc::downgrade(self), self.idle_timeout));
        }
    }

    /// A new connection, its task spawned.
    async fn connect(&self) -> Result<SendRequest<UpBody>, SendError> {
        let timeout = self.connect_timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        match &self.address {
            Address::Tcp(authority) => {
                let stream = tokio::time::timeout(timeout, TcpStream::connect(authority.as_str()))
                    .await
                    .map_err(|_| SendError::Connect(timed_out()))?
                    .map_err(SendError::Connect)?;
                let _ = stream.set_nodelay(true);
                handshake(stream).await
            }
            Address::Unix(path) => {
                let stream = tokio::time::timeout(timeout, UnixStream::connect(&**path))
                    .await
                    .map_err(|_| SendError::Connect(timed_out()))?
                    .map_err(SendError::Connect)?;
                handshake(stream).await
            }
        }
    }
}

/// Hyper's HTTP/1.1 client on `stream`, its connection driven by a task of its own (with
/// upgrades: a WebSocket takes it over after 101).
async fn handshake<S>(stream: S) -> Result<SendRequest<UpBody>, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Http)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "proxy: upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// Closes the idle connections of `pool` past `timeout`, every `timeout`, while it lives.
async fn sweep(pool: Weak<Pool>, timeout: Duration) {
    let mut ticks = tokio::time::interval(timeout.max(Duration::from_millis(100)));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|entry| entry.since.elapsed() < timeout && !entry.sender.is_closed());
    }
}

/// A connection to give back once its response has been read.
#[derive(Debug)]
struct Checkin {
    pool: Arc<Pool>,
    sender: SendRequest<UpBody>,
}

/// An upstream's response body, streamed as it arrives; its connection goes back to the pool
/// once the body has ended (never if it is dropped before its end).
#[derive(Debug)]
pub struct UpstreamBody {
    body: Incoming,
    back: Option<Checkin>,
}

impl UpstreamBody {
    fn new(body: Incoming, back: Option<Checkin>) -> Self {
        let mut this = Self { body, back };
        if http_body::Body::is_end_stream(&this.body) {
            this.check_in();
        }
        this
    }

    fn check_in(&mut self) {
        if let Some(Checkin { pool, sender }) = self.back.take() {
            pool.put(sender);
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.check_in(),
            Some(Ok(_)) if this.body.is_end_stream() => this.check_in(),
            Some(Ok(_)) => {}
            // Broken: the connection is not reused.
            Some(Err(_)) => this.back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
