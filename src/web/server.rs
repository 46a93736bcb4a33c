//! The web service: the site (files, names, headers, certificates) is built before any socket
//! is served; the lifecycle (`cli`) hands in the sockets, bound or inherited, and the new
//! configuration on each reload.
//!
//! Accepting and the connection cap (shared by every HTTP and HTTPS listener) are
//! `ops::accept`'s. A connection task owns one connection: the TLS handshake under a timeout,
//! then hyper-util's auto builder (HTTP/1.1, and HTTP/2 by ALPN or preface), watched for
//! idleness and for the drain. An HTTP/1 connection (plain, or TLS without ALPN `h2`) starts
//! on onebox's own path for GET and HEAD of cached files and `[[web.proxy]]` paths (`fast`),
//! which hands it to hyper at the first request it does not take.
//!
//! A reload builds a new [`Site`] off the hot path and swaps it in; requests already running
//! and open connections are not disturbed. On the drain (SIGTERM, the end of an upgrade) no
//! request is cut and none is refused:
//!
//! - HTTP/2 connections get GOAWAY at once (hyper sends it in two steps, so that streams the
//!   client opened meanwhile are still served); the client opens new streams elsewhere;
//! - HTTP/1.1 responses from then on say `Connection: close`, so that a client sends its next
//!   request on a new connection (to the process that took over the sockets); a connection
//!   that carries nothing for [`DRAIN_IDLE`] is closed;
//! - when `web.shutdown_timeout` passes, whatever is left is closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use http::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::WebError;
use super::cork::cork;
use super::fast::{Ended, Fast, FastPath, Rewind};
use super::handler::{self, ConnInfo};
use super::head_limit::HeadLimit;
use super::idle::{Activity, HeadTimer, Tracked};
use super::inline::InlineFirst;
use super::linger::Lingering;
use super::metrics::{self, WebMetrics};
use super::proxy::ProxyCounters;
use super::site::{Build, Site};
use super::tls::{self, ACME_TLS_ALPN};
use crate::config::{Config, WebConfig};
use crate::ops::Context;
use crate::ops::accept::{Conn, Connections};
use crate::ops::certs::Certificates;
use crate::ops::challenges::Challenges;
use crate::ops::listen::{Bound, Spec, Transport};
use crate::ops::metrics::Registry;
use crate::ops::ready::{Check, Readiness};
use crate::ops::snapshot::Snapshot;

/// While draining, an HTTP/1.1 connection that carries nothing for this long is closed.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// The running web service; shared by the lifecycle and the tasks serving its sockets.
pub struct Web {
    shared: Shared,
    /// The metrics endpoint's connections (its own cap and drain).
    scrapes: Connections,
    tasks: TaskTracker,
    check: Check,
}

/// What the web service shares with the rest of the process.
#[derive(Clone)]
pub struct Handles {
    /// The certificates served: the web service puts its files' in; ACME puts its own.
    pub certificates: Certificates,
    /// ACME challenge answers to serve (HTTP-01, TLS-ALPN-01).
    pub challenges: Challenges,
    /// The application's routes, if the application runs.
    pub app: Option<crate::app::Router>,
}

/// What every connection task shares.
#[derive(Clone)]
struct Shared {
    site: Snapshot<Site>,
    readiness: Readiness,
    certificates: Certificates,
    challenges: Challenges,
    app: Option<crate::app::Router>,
    connections: Connections,
    /// The port of the first HTTPS listener, named in redirects from plain HTTP (0: none).
    https_port: Arc<AtomicU16>,
    metrics: WebMetrics,
    /// The proxy upstreams' counters, across reloads.
    proxy_counters: ProxyCounters,
}

impl Web {
    /// The sockets `[web]` wants: one TCP listener per `web.http_listen` and
    /// `web.https_listen` address.
    pub fn sockets(config: &WebConfig) -> Vec<Spec> {
        let plain = config.http_listen.iter().map(|&addr| Spec {
            name: "http",
            key: "web.http_listen",
            transport: Transport::Tcp,
            addr,
            index: 0,
        });
        let secure = config.https_listen.iter().map(|&addr| Spec {
            name: "https",
            key: "web.https_listen",
            transport: Transport::Tcp,
            addr,
            index: 0,
        });
        plain.chain(secure).collect()
    }

    /// Builds the site (files, names, headers, certificates) off the async workers, and puts
    /// its certificates in `handles.certificates`. Every request will go to `handles.app`'s
    /// router when there is one (the site's files are its fallback); without, every path is a
    /// file.
    pub async fn build(
        config: &Config,
        handles: Handles,
        context: &Context,
    ) -> Result<Self, WebError> {
        let proxy_counters = ProxyCounters::default();
        let site = build_site(config, &handles, &proxy_counters).await?;
        tracing::info!(site_dir = %site.files.root().display(), canonical = %site.canonical, aliases = ?site.aliases, "web site loaded");
        tls::install(&site.tls, &handles.certificates);
        let check = context.readiness.register("web");
        check.set(true);
        let connections = Connections::new("web", config.web.max_connections, &context.shutdown);
        let metrics = WebMetrics::new();
        let site = Snapshot::new("site", site);
        let (counted, open, sites) = (metrics.clone(), connections.clone(), site.clone());
        context
            .metrics
            .register(move |out: &mut crate::ops::metrics::Encoder| {
                counted.collect(out, &open);
                sites.get().proxies.collect(out);
            });
        Ok(Self {
            scrapes: Connections::new("metrics", metrics::MAX_CONNECTIONS, &context.shutdown),
            shared: Shared {
                site,
                readiness: context.readiness.clone(),
                certificates: handles.certificates,
                challenges: handles.challenges,
                app: handles.app,
                connections,
                https_port: Arc::new(AtomicU16::new(0)),
                metrics,
                proxy_counters,
            },
            tasks: TaskTracker::new(),
            check,
        })
    }

    /// Serves `socket` until its stop token (a reload removed it, or the process stops).
    pub fn serve(&self, socket: &Bound) -> Result<(), WebError> {
        let addr = socket.local_addr();
        let listener = socket
            .tcp()
            .map_err(|source| WebError::Bind { addr, source })?;
        let secure = socket.spec().name == "https";
        let shared = self.shared.clone();
        let stop = socket.stop();
        self.tasks.spawn(async move {
            let connections = shared.connections.clone();
            connections
                .serve(listener, stop, move |stream, peer, conn| {
                    connection(stream, peer, secure, conn, shared.clone())
                })
                .await;
        });
        let scheme = if secure { "https" } else { "http" };
        tracing::info!(addr = %addr, %scheme, "web listening");
        Ok(())
    }

    /// Serves the metrics endpoint on `socket` (`metrics.listen`): `registry` rendered for
    /// every `GET /metrics`.
    pub fn serve_metrics(&self, socket: &Bound, registry: &Registry) -> Result<(), WebError> {
        let addr = socket.local_addr();
        let listener = socket
            .tcp()
            .map_err(|source| WebError::Bind { addr, source })?;
        let (scrapes, registry, stop) = (self.scrapes.clone(), registry.clone(), socket.stop());
        self.tasks.spawn(async move {
            scrapes
                .serve(listener, stop, move |stream, peer, conn| {
                    metrics::connection(stream, peer, conn, registry.clone())
                })
                .await;
        });
        tracing::info!(addr = %addr, "metrics listening");
        Ok(())
    }

    /// Notes which sockets are in service now: redirects name the first HTTPS port.
    pub fn listening<'a>(&self, sockets: impl IntoIterator<Item = &'a Bound>) {
        let port = sockets
            .into_iter()
            .find(|b| b.spec().name == "https")
            .map_or(0, |b| b.local_addr().port());
        self.shared.https_port.store(port, Ordering::Relaxed);
    }

    /// Logs the address to open in a browser, and the CA to trust first when the certificate
    /// is the development one (at start, once the sockets are served).
    pub fn announce(&self, config: &Config) {
        let web = &config.web;
        let site = self.shared.site.get();
        let https_port = self.shared.https_port.load(Ordering::Relaxed);
        let https = https_port != 0;
        let (scheme, listen) = if https {
            ("https", web.https_listen.first())
        } else {
            ("http", web.http_listen.first())
        };
        // On this machine's loopback, the name this machine resolves; else the canonical one.
        let here = listen.is_some_and(|a| a.ip().is_loopback() || a.ip().is_unspecified());
        let host = match site.local_names.first() {
            Some(name) if here => handler::bracketed(name),
            _ => site.canonical.clone(),
        };
        let port = match (https, listen) {
            (true, _) if https_port != 443 => format!(":{https_port}"),
            (false, Some(addr)) if addr.port() != 80 => format!(":{}", addr.port()),
            _ => String::new(),
        };
        let url = format!("{scheme}://{host}{port}/");
        if https && web.tls.certs.is_empty() {
            let ca = super::dev_ca_certificate(&config.state_dir);
            tracing::info!(
                %url,
                ca = %ca.display(),
                "the site is at {url} once the browser trusts the development CA {} (README: Try it)",
                ca.display()
            );
        } else {
            tracing::info!(%url, "the site is at {url}");
        }
    }

    /// Applies a new configuration: the connection cap at once, then the site rebuilt off the
    /// hot path and swapped in (on error the previous one stays).
    pub async fn reconfigure(&self, config: &Config) {
        self.shared.connections.set_cap(config.web.max_connections);
        let config = config.clone();
        let (certificates, challenges, counters) = (
            self.shared.certificates.clone(),
            self.shared.challenges.clone(),
            self.shared.proxy_counters.clone(),
        );
        let rebuilt = self
            .shared
            .site
            .rebuild(move |_| {
                let site = Site::build(
                    &config.web,
                    &config.state_dir,
                    Build::Serve,
                    &certificates,
                    &challenges,
                    &counters,
                )?;
                // Its certificates serve from the next handshake, as the snapshot does.
                tls::install(&site.tls, &certificates);
                Ok::<_, WebError>(site)
            })
            .await;
        if rebuilt.is_ok() {
            tracing::info!("web site and certificates reloaded");
        }
    }

    /// After the process's shutdown: lets connections finish within `deadline`, closes the
    /// rest, and waits for every listener to stop.
    pub async fn stop(&self, deadline: Duration) {
        self.check.set(false);
        tokio::join!(
            self.shared.connections.drain(deadline),
            self.scrapes.drain(deadline)
        );
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Builds the site as `serve` does, on a blocking thread (certificates, the development CA).
async fn build_site(
    config: &Config,
    handles: &Handles,
    counters: &ProxyCounters,
) -> Result<Site, WebError> {
    let config = config.clone();
    let (certificates, challenges) = (handles.certificates.clone(), handles.challenges.clone());
    let counters = counters.clone();
    tokio::task::spawn_blocking(move || {
        Site::build(
            &config.web,
            &config.state_dir,
            Build::Serve,
            &certificates,
            &challenges,
            &counters,
        )
    })
    .await
    .map_err(|e| WebError::Reload(e.to_string()))?
}

/// One connection, from handshake to close.
async fn connection(stream: TcpStream, peer: SocketAddr, secure: bool, conn: Conn, shared: Shared) {
    let _ = stream.set_nodelay(true);
    let stream = Lingering::new(stream);
    let snapshot = shared.site.get();
    let activity = Activity::new();
    let https_port = match shared.https_port.load(Ordering::Relaxed) {
        0 | 443 => None,
        port => Some(port),
    };
    let info = Arc::new(ConnInfo {
        peer,
        secure,
        https_port,
        readiness: shared.readiness.clone(),
        challenges: shared.challenges.clone(),
        app: shared.app.clone(),
        metrics: shared.metrics.clone(),
        hold: conn.hold(),
        draining: conn.draining.clone(),
        proxy_peer: std::sync::OnceLock::new(),
    });
    let sites = shared.site.clone();
    let fast = FastPath {
        sites: sites.clone(),
        info: info.clone(),
        head_timeout: snapshot.header_read_timeout,
        max_head: snapshot.max_head,
    };
    // Each request keeps the connection busy (not idle) until its response head is made.
    let service_activity = activity.clone();
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let site = sites.get();
        let info = info.clone();
        let busy = service_activity.busy();
        async move {
            let http1 = request.version() < http::Version::HTTP_2;
            let mut response = handler::handle(request, site, &info).await;
            drop(busy);
            if http1 && info.draining.is_cancelled() {
                // The client's next request goes to a new connection (the next process).
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    if !secure {
        let io = Tracked::new(HeadLimit::new(stream, snapshot.max_head), activity.clone());
        drive(
            &snapshot.http,
            io,
            service,
            no_flush,
            &activity,
            &snapshot,
            &conn,
            Some(fast),
        )
        .await;
        return;
    }
    let acceptor = TlsAcceptor::from(snapshot.tls.config.clone());
    let handshake = tokio::time::timeout(snapshot.tls_handshake_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => {
                shared.metrics.handshake_ok();
                stream
            }
            Ok(Err(error)) => {
                shared.metrics.handshake_failed(false);
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                shared.metrics.handshake_failed(true);
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = conn.closing.cancelled() => return,
    };
    if stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
        // A CA validating TLS-ALPN-01: the handshake was the whole answer (RFC 8737 §3).
        tracing::debug!(%peer, "acme-tls/1 handshake answered");
        let mut stream = stream;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        return;
    }
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        // HTTP/2: frames gathered over each turn of this task, written at its end (`cork`).
        let (stream, uncork) = cork(stream);
        let io = Tracked::new(HeadLimit::off(stream), activity.clone());
        let flush = |cx: &mut std::task::Context<'_>| uncork.poll_flush(cx);
        drive(
            &snapshot.http,
            io,
            service,
            flush,
            &activity,
            &snapshot,
            &conn,
            None,
        )
        .await;
        return;
    }
    let io = Tracked::new(HeadLimit::new(stream, snapshot.max_head), activity.clone());
    drive(
        &snapshot.http,
        io,
        service,
        no_flush,
        &activity,
        &snapshot,
        &conn,
        Some(fast),
    )
    .await;
}

/// For connections whose writes are not held back.
fn no_flush(_: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
    std::task::Poll::Ready(Ok(()))
}

/// Serves HTTP on `io` until the client leaves, it idles out, or the drain ends it. `flush`
/// writes out what `io` held back; it is called each time the connection yields. `fast`: an
/// HTTP/1 connection, served by onebox's own path (`fast`) until a request needs hyper;
/// `None`: the client chose HTTP/2 by ALPN (GOAWAY at once when draining; otherwise the
/// connection is let go once it idles).
///
/// One future polls the connection and then its watch ([`Watch`]): the drain, the close and
/// the connection's one timer (idle, drain idle, request head), each looked at with an atomic
/// load on every wake-up rather than polled.
#[allow(clippy::too_many_arguments)]
async fn drive<I, S, F>(
    builder: &auto::Builder<InlineFirst>,
    io: I,
    service: S,
    mut flush: F,
    activity: &Activity,
    site: &Site,
    conn: &Conn,
    fast: Option<FastPath>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<super::body::Body>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    F: FnMut(&mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>>,
{
    use std::task::Poll;
    // hyper's HTTP/1 header timeout on the connection's own timer (see `idle`).
    let mut builder = builder.clone();
    builder.http1().timer(HeadTimer(activity.clone()));
    let http2 = fast.is_none();
    // With upgrades: a WebSocket through the reverse proxy takes the connection over.
    let hyper =
        |io, service| Box::pin(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    let (mut phase, mut service) = match fast {
        Some(fast) => (
            Phase::Fast(Fast::new(io, fast, activity.clone())),
            Some(service),
        ),
        None => (Phase::Hyper(hyper(Rewind::new(io), service)), None),
    };
    // The drain's graceful shutdown was asked for (hyper is told when it takes over).
    let mut shutdown = false;
    let mut watch = Watch {
        activity,
        idle: site.idle_timeout,
        http2,
        draining: false,
        closing: false,
        drain_signal: std::pin::pin!(conn.draining.cancelled()),
        close_signal: std::pin::pin!(conn.closing.cancelled()),
        conn,
        timer: std::pin::pin!(tokio::time::sleep(site.idle_timeout)),
        armed: false,
        waker: None,
    };
    std::future::poll_fn(|cx| {
        // The head deadline is handed to hyper once per wake-up (it may be stale: hyper is
        // not reading a head just now).
        let mut head_due = false;
        loop {
            match &mut phase {
                Phase::Fast(fast) => match fast.poll(cx, head_due, shutdown) {
                    Poll::Ready(Ended::Closed) => return Poll::Ready(()),
                    Poll::Ready(Ended::Handover) => {
                        let Phase::Fast(fast) = std::mem::replace(&mut phase, Phase::Gone) else {
                            return Poll::Ready(());
                        };
                        let Some(service) = service.take() else {
                            return Poll::Ready(());
                        };
                        let mut connection = hyper(fast.into_hyper(), service);
                        if shutdown {
                            connection.as_mut().graceful_shutdown();
                        }
                        phase = Phase::Hyper(connection);
                        continue;
                    }
                    Poll::Pending => {}
                },
                Phase::Hyper(connection) => {
                    if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                        if let Err(error) = result {
                            tracing::debug!(%error, "web connection ended with an error");
                        }
                        return Poll::Ready(());
                    }
                }
                Phase::Gone => return Poll::Ready(()),
            }
            if let Poll::Ready(Err(error)) = flush(cx) {
                tracing::debug!(%error, "web connection ended with an error");
                return Poll::Ready(());
            }
            match watch.poll(cx, !head_due) {
                Next::Wait => return Poll::Pending,
                Next::Close => return Poll::Ready(()),
                Next::Shutdown => {
                    shutdown = true;
                    if let Phase::Hyper(connection) = &mut phase {
                        connection.as_mut().graceful_shutdown();
                    }
                }
                Next::HeadDue => head_due = true,
            }
        }
    })
    .await;
}

/// Who serves a connection: onebox's own HTTP/1.1 path, then (or from the start) hyper.
/// One per connection, in place in its task: the fast path's state is not boxed.
#[allow(clippy::large_enum_variant)]
enum Phase<I, C> {
    Fast(Fast<I>),
    Hyper(std::pin::Pin<Box<C>>),
    /// Between the two (never polled).
    Gone,
}

/// What the connection does next, by its [`Watch`].
enum Next {
    /// Nothing: wait for a wake-up.
    Wait,
    /// Close it now.
    Close,
    /// Let it finish politely (HTTP/2 GOAWAY; HTTP/1.1 closes after the response in flight).
    Shutdown,
    /// The request head's deadline passed: poll hyper, whose header timer is now ready.
    HeadDue,
}

/// A connection's drain and close signals, and its one timer: idle (`web.idle_timeout`), idle
/// while draining ([`DRAIN_IDLE`]) and the request head's deadline (hyper's header timeout,
/// see `idle::HeadTimer`), whichever comes first.
struct Watch<'a, D, C> {
    activity: &'a Activity,
    idle: Duration,
    http2: bool,
    /// The drain has begun.
    draining: bool,
    /// The connection was asked to finish.
    closing: bool,
    drain_signal: std::pin::Pin<&'a mut D>,
    close_signal: std::pin::Pin<&'a mut C>,
    conn: &'a Conn,
    timer: std::pin::Pin<&'a mut tokio::time::Sleep>,
    /// The timer is set and registered with the waker.
    armed: bool,
    /// The waker the signals and the timer were registered with.
    waker: Option<std::task::Waker>,
}

impl<D: Future<Output = ()>, C: Future<Output = ()>> Watch<'_, D, C> {
    /// Looks at the signals and the timer; `head`: a head deadline that passed is news.
    fn poll(&mut self, cx: &mut std::task::Context<'_>, head: bool) -> Next {
        // The task's waker stays the same: registered once, the signals and the timer wake it,
        // and each is then read with an atomic load.
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
            let _ = self.drain_signal.as_mut().poll(cx);
            let _ = self.close_signal.as_mut().poll(cx);
            self.armed = false;
        }
        if self.conn.closing.is_cancelled() {
            return Next::Close;
        }
        if !self.draining && self.conn.draining.is_cancelled() {
            self.draining = true;
            self.armed = false;
            if self.http2 && !self.closing {
                self.closing = true;
                return Next::Shutdown;
            }
        }
        let head_deadline = self.activity.head_deadline();
        let earlier_head = head_deadline.is_some_and(|h| h < self.timer.deadline());
        if self.armed && !earlier_head && !self.timer.is_elapsed() {
            return Next::Wait;
        }
        let now = tokio::time::Instant::now();
        if head && head_deadline.is_some_and(|h| h <= now) {
            return Next::HeadDue;
        }
        if self.activity.is_busy() {
            // A response is being made: not idle (the stamp moves on while it is).
            self.activity.touch();
        }
        let idle_at = self.activity.idle_deadline(self.idle);
        if idle_at <= now {
            if self.closing {
                return Next::Close;
            }
            self.closing = true;
            self.activity.touch();
            self.armed = false;
            return Next::Shutdown;
        }
        let mut next = idle_at;
        if self.draining && !self.closing {
            let drain_at = self.activity.idle_deadline(DRAIN_IDLE);
            if drain_at <= now {
                self.closing = true;
                self.armed = false;
                return Next::Shutdown;
            }
            next = next.min(drain_at);
        }
        if let Some(head) = head_deadline.filter(|&h| h > now) {
            next = next.min(head);
        }
        self.timer.as_mut().reset(next);
        // Registers it; if it is already due, the next wake-up looks again.
        if self.timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        self.armed = true;
        Next::Wait
    }
}
