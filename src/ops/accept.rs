//! The one accept loop, shared by every TCP service (DNS over TCP, the web origin).
//!
//! A listener owns accept and back-pressure; a handler owns one connection (mini-redis'
//! split). [`Connections`] is one service's set of connections: its cap, its drain and its
//! deadline, shared by all of that service's listeners. Per listener, [`Connections::serve`]
//! loops:
//!
//! 1. wait until a connection is pending on the listening socket (without accepting it);
//! 2. take a permit of the cap: at the cap, the connection stays in the kernel's backlog and
//!    costs nothing here (the permit is taken *before* accept, and held only across a
//!    non-blocking accept, so several listeners never starve one another of the last one);
//! 3. accept, and spawn the service's handler with a [`Conn`] that holds the permit (released
//!    when the handler returns, unless the connection was handed to another task with a
//!    [`Hold`]: a WebSocket spliced to its upstream still counts) and the drain signals;
//! 4. a failed accept is classified once, here: errors about that one connection (reset before
//!    it was taken, and the network errors `accept(2)` says to treat like EAGAIN) are retried
//!    at once; anything else (out of descriptors, out of memory) backs off, from 10 ms doubling
//!    to 1 s, with one warning per pause, so that a starved process cannot spin a core.
//!
//! Stopping has two stages. [`Connections::drain`] stops every listener and tells each
//! connection it is draining ([`Conn::draining`]): it finishes politely in its protocol's way
//! (HTTP/1.1: the next response closes; HTTP/2: GOAWAY; DNS: served until the client is done
//! or idles). When the deadline passes, [`Conn::closing`] fires and whatever is left is closed.
//! A listener removed by a reload stops on its own token, and its connections carry on.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// First pause after a failed accept that is not about one connection; doubled up to
/// [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause after failed accepts.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One service's connections: cap, drain, deadline. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// For logs: "dns tcp", "web".
    name: &'static str,
    permits: Arc<Semaphore>,
    /// The cap in force (permits may be owed while it shrinks).
    cap: AtomicUsize,
    /// The connections: a token each, held by its `Conn` and any `Hold` of it.
    tracker: TaskTracker,
    /// The accept loops (a token each while it runs).
    loops: TaskTracker,
    draining: CancellationToken,
    closing: CancellationToken,
}

/// What a connection's handler gets beside its stream.
#[derive(Debug)]
pub struct Conn {
    hold: Hold,
    /// Cancelled when the service drains: take no new request, finish the ones under way.
    pub draining: CancellationToken,
    /// Cancelled when the drain deadline passes: close now.
    pub closing: CancellationToken,
}

/// Keeps a connection counted while a clone lives, after its handler has returned: its
/// permit of the cap, and its place among the open connections ([`Connections::open`]) the
/// drain waits for. For a connection handed over to another task (a WebSocket spliced to its
/// upstream), which ends at the latest when [`Hold::closing`] fires.
#[derive(Debug, Clone)]
pub struct Hold {
    _slot: Arc<Slot>,
    /// Cancelled when the drain deadline passes: close now.
    pub closing: CancellationToken,
}

/// A connection's place, held while its handler runs and while any [`Hold`] of it lives.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    _open: TaskTrackerToken,
}

impl Conn {
    /// A hold on this connection's place (see [`Hold`]).
    pub fn hold(&self) -> Hold {
        self.hold.clone()
    }
}

/// How a failed `accept` is handled.
#[derive(Debug, PartialEq, Eq)]
enum AcceptError {
    /// About one connection only: accept again at once.
    Connection,
    /// About the process or system (descriptors, memory): pause before the next accept.
    Resources,
}

impl Connections {
    /// A set of at most `cap` connections (at least 1) named `name` in logs. `shutdown`
    /// starts the drain when cancelled.
    pub fn new(name: &'static str, cap: usize, shutdown: &CancellationToken) -> Self {
        let cap = cap.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(Inner {
                name,
                permits: Arc::new(Semaphore::new(cap)),
                cap: AtomicUsize::new(cap),
                tracker: TaskTracker::new(),
                loops: TaskTracker::new(),
                draining: shutdown.child_token(),
                closing: CancellationToken::new(),
            }),
        }
    }

    /// Changes the cap (a reload): raising it frees waiting clients at once; lowering it takes
    /// effect as connections close (none is cut).
    pub fn set_cap(&self, cap: usize) {
        let cap = cap.clamp(1, Semaphore::MAX_PERMITS);
        let old = self.inner.cap.swap(cap, Ordering::AcqRel);
        if cap > old {
            self.inner.permits.add_permits(cap - old);
        } else if cap < old {
            let owed = old - cap;
            let forgotten = self.inner.permits.forget_permits(owed);
            if forgotten < owed {
                // The rest are in use: take them back as their connections end.
                let permits = self.inner.permits.clone();
                let rest = u32::try_from(owed - forgotten).unwrap_or(u32::MAX);
                tokio::spawn(async move {
                    if let Ok(permits) = permits.acquire_many_owned(rest).await {
                        permits.forget();
                    }
                });
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Accepts on `listener` (non-blocking) until `stop` or the drain, and runs
    /// `handle(stream, peer, conn)` for each connection under the cap. The listening socket is
    /// closed (this process's descriptor of it) when this returns.
    pub async fn serve<H, F>(&self, listener: TcpListener, stop: CancellationToken, handle: H)
    where
        H: Fn(TcpStream, SocketAddr, Conn) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let inner = &self.inner;
        let _running = inner.loops.token();
        let name = inner.name;
        // SAFETY: a `TcpListener` owns its descriptor: `as_raw_fd` always returns that one, and
        // it stays open until the listener is dropped, which only the `AsyncFd` can do.
        let registered = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) };
        let listener = match registered {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(service = name, %error, "cannot watch a listening socket");
                return;
            }
        };
        let mut backoff = BACKOFF_MIN;
        loop {
            let mut ready = tokio::select! {
                () = stop.cancelled() => break,
                () = inner.draining.cancelled() => break,
                ready = listener.readable() => match ready {
                    Ok(ready) => ready,
                    Err(error) => {
                        tracing::error!(service = name, %error, "listening socket failed");
                        break;
                    }
                },
            };
            let permit = tokio::select! {
                () = stop.cancelled() => break,
                () = inner.draining.cancelled() => break,
                permit = inner.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
            };
            let accepted = match ready.try_io(|listener| listener.get_ref().accept()) {
                Ok(accepted) => accepted,
                Err(_would_block) => continue, // another process or listener took it
            };
            let error = match accepted.and_then(|(stream, peer)| {
                stream.set_nonblocking(true)?;
                Ok((TcpStream::from_std(stream)?, peer))
            }) {
                Ok((stream, peer)) => {
                    backoff = BACKOFF_MIN;
                    let slot = Arc::new(Slot {
                        _permit: permit,
                        _open: inner.tracker.token(),
                    });
                    let conn = Conn {
                        hold: Hold {
                            _slot: slot.clone(),
                            closing: inner.closing.clone(),
                        },
                        draining: inner.draining.clone(),
                        closing: inner.closing.clone(),
                    };
                    let handler = handle(stream, peer, conn);
                    // Counted while the handler runs (whatever of its `Conn` it keeps), and
                    // while a `Hold` taken of it lives.
                    tokio::spawn(async move {
                        handler.await;
                        drop(slot);
                    });
                    continue;
                }
                Err(error) => error,
            };
            drop(permit);
            match classify(&error) {
                AcceptError::Connection => {
                    tracing::debug!(service = name, %error, "accept failed for one connection");
                }
                AcceptError::Resources => {
                    tracing::warn!(service = name, %error, pause = ?backoff, "accept failed; pausing");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = inner.draining.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Drains: stops every listener (and waits until their loops have let go of the sockets),
    /// lets connections finish for up to `deadline`, then closes the rest. Returns once every
    /// connection is gone.
    pub async fn drain(&self, deadline: Duration) {
        let inner = &self.inner;
        inner.draining.cancel();
        inner.loops.close();
        inner.loops.wait().await;
        inner.tracker.close();
        let open = inner.tracker.len();
        if open > 0 {
            tracing::info!(
                service = inner.name,
                connections = open,
                "draining: letting in-flight requests finish"
            );
        }
        if tokio::time::timeout(deadline, inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = inner.name,
                connections = inner.tracker.len(),
                "drain deadline passed; closing the remaining connections"
            );
            inner.closing.cancel();
            inner.tracker.wait().await;
        }
    }
}

/// Sorts accept errors: see the module doc, step 4.
fn classify(error: &io::Error) -> AcceptError {
    let per_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        error.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    );
    if per_connection {
        AcceptError::Connection
    } else {
        AcceptError::Resources
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Generous bound for "eventually".
    const HANG: Duration = Duration::from_secs(10);

    fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    /// Echoes bytes until the client closes.
    async fn echo(mut stream: TcpStream, _peer: SocketAddr, _conn: Conn) {
        let mut byte = [0u8; 1];
        while let Ok(1) = stream.read(&mut byte).await {
            if stream.write_all(&byte).await.is_err() {
                return;
            }
        }
    }

    /// A connection that is answered within a short wait, kept open; `None` if not served.
    async fn answered(addr: SocketAddr, wait: Duration) -> Option<TcpStream> {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"x").await.ok()?;
        let mut byte = [0u8; 1];
        match tokio::time::timeout(wait, stream.read_exact(&mut byte)).await {
            Ok(Ok(_)) => Some(stream),
            _ => None,
        }
    }

    #[test]
    fn accept_errors_are_classified_once() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify(&os(libc::ECONNABORTED)), AcceptError::Connection);
        assert_eq!(classify(&os(libc::EPROTO)), AcceptError::Connection);
        assert_eq!(classify(&os(libc::ENETUNREACH)), AcceptError::Connection);
        assert_eq!(classify(&os(libc::EMFILE)), AcceptError::Resources);
        assert_eq!(classify(&os(libc::ENFILE)), AcceptError::Resources);
        assert_eq!(classify(&os(libc::ENOBUFS)), AcceptError::Resources);
    }

    #[tokio::test]
    async fn the_cap_is_shared_by_listeners_and_none_starves() {
        let shutdown = CancellationToken::new();
        let connections = Connections::new("test", 1, &shutdown);
        let (a, addr_a) = listener();
        let (b, addr_b) = listener();
        for listener in [a, b] {
            let connections = connections.clone();
            let stop = shutdown.child_token();
            tokio::spawn(async move { connections.serve(listener, stop, echo).await });
        }
        let first = answered(addr_b, HANG).await.expect("served");
        let short = Duration::from_millis(300);
        assert!(answered(addr_a, short).await.is_none(), "beyond the cap");
        drop(first);
        assert!(
            answered(addr_a, HANG).await.is_some(),
            "the freed permit serves the other listener"
        );
        connections.set_cap(4);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(
                answered(addr_b, HANG)
                    .await
                    .expect("a raised cap serves more"),
            );
        }
        connections.set_cap(1);
        drop(held);
    }

    #[tokio::test]
    async fn drain_stops_listeners_then_the_deadline_closes_what_is_left() {
        let shutdown = CancellationToken::new();
        let connections = Connections::new("test", 8, &shutdown);
        let (listener, addr) = listener();
        let serving = {
            let connections = connections.clone();
            let stop = shutdown.child_token();
            tokio::spawn(async move {
                connections
                    .serve(listener, stop, |stream, _, conn: Conn| async move {
                        // Ignores draining: only the deadline ends it.
                        conn.closing.cancelled().await;
                        drop(stream);
                    })
                    .await;
            })
        };
        let _held = TcpStream::connect(addr).await.expect("connect");
        tokio::time::timeout(HANG, async {
            while connections.open() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("served");
        shutdown.cancel();
        tokio::time::timeout(HANG, connections.drain(Duration::from_millis(200)))
            .await
            .expect("drained by the deadline");
        tokio::time::timeout(HANG, serving)
            .await
            .expect("listener stopped")
            .expect("task");
        assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    }
}
