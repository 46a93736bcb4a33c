//! The web service's life: bind, accept, handshake, serve HTTP/1.1 and HTTP/2, reload, drain.
//!
//! A listener owns accept and back-pressure: each accepted connection waits for a permit of the
//! connection cap (shared by all listeners) before it is served, and the listener accepts
//! nothing more meanwhile, so excess clients wait in the kernel's backlog; it backs off when
//! accept fails for lack of descriptors or memory. A connection task owns one connection: the TLS handshake
//! under a timeout, then hyper-util's auto builder, watched for idleness and shutdown.
//!
//! SIGHUP builds a new [`Site`] off the hot path and swaps it in; requests already running and
//! open connections are not disturbed. SIGTERM stops the listeners, asks every connection to
//! finish gracefully (HTTP/1: after the current response; HTTP/2: GOAWAY), and after
//! `web.shutdown_timeout` closes whatever is left.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::{self, ConnInfo};
use super::idle::{Activity, Tracked};
use super::site::Site;
use super::{Reconfigure, WebError};
use crate::config::Config;
use crate::ops::listen;
use crate::ops::ready::Readiness;
use crate::ops::signals::ReloadRx;

/// What every connection task shares.
#[derive(Clone)]
struct Shared {
    site: Arc<ArcSwap<Site>>,
    readiness: Readiness,
    app: Option<crate::app::Router>,
    shutdown: CancellationToken,
    /// Cancelled when the drain deadline passes: close at once.
    hard_stop: CancellationToken,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
}

/// Serves HTTP and HTTPS until `shutdown` is cancelled; each new `reload` generation rebuilds
/// the site from `reconfigure()`. Every request goes to `app`'s router when there is one (the
/// site's files are its fallback); without, every path is a file.
pub async fn serve(
    config: Config,
    reconfigure: Reconfigure,
    shutdown: CancellationToken,
    mut reload: ReloadRx,
    readiness: Readiness,
    app: Option<crate::app::Router>,
) -> Result<(), WebError> {
    let web = &config.web;
    let check = readiness.register("web");
    let mut listeners = Vec::new();
    for (addresses, secure) in [(&web.http_listen, false), (&web.https_listen, true)] {
        for &addr in addresses {
            let listener = bind(addr).map_err(|source| WebError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| WebError::Bind { addr, source })?;
            listeners.push((listener, bound, secure));
        }
    }
    let https_port = listeners
        .iter()
        .find(|(_, _, secure)| *secure)
        .map(|(_, bound, _)| bound.port());
    let site = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Site::build(&config.web, &config.state_dir, https_port))
            .await
            .map_err(|e| WebError::Reload(e.to_string()))??
    };
    tracing::info!(site_dir = %site.files.root().display(), canonical = %site.canonical, aliases = ?site.aliases, "web site loaded");
    let shared = Shared {
        site: Arc::new(ArcSwap::from_pointee(site)),
        readiness,
        app,
        shutdown: shutdown.clone(),
        hard_stop: CancellationToken::new(),
        tracker: TaskTracker::new(),
        permits: Arc::new(Semaphore::new(web.max_connections.max(1))),
    };
    let mut accepting = tokio::task::JoinSet::new();
    for (listener, bound, secure) in listeners {
        let scheme = if secure { "https" } else { "http" };
        tracing::info!(addr = %bound, %scheme, "web listening");
        accepting.spawn(accept_loop(listener, secure, shared.clone()));
    }
    check.set(true);
    announce(&config, https_port.is_some(), &shared.site.load());

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = reload.changed() => {
                if changed.is_err() {
                    shutdown.cancelled().await;
                    break;
                }
                reload_site(&config, &reconfigure, https_port, &shared.site).await;
            }
        }
    }
    check.set(false);
    while accepting.join_next().await.is_some() {}
    drain(&shared, web.shutdown_timeout).await;
    Ok(())
}

/// Logs the address to open in a browser, and the CA to trust first when the certificate is
/// the development one.
fn announce(config: &Config, https: bool, site: &Site) {
    let web = &config.web;
    let (scheme, listen, port) = if https {
        ("https", web.https_listen.first(), site.https_port)
    } else {
        ("http", web.http_listen.first(), None)
    };
    // On this machine's loopback, the name this machine resolves; else the canonical one.
    let here = listen.is_some_and(|a| a.ip().is_loopback() || a.ip().is_unspecified());
    let host = match site.local_names.first() {
        Some(name) if here => handler::bracketed(name),
        _ => site.canonical.clone(),
    };
    let port = match (https, port, listen) {
        (true, Some(port), _) => format!(":{port}"),
        (false, _, Some(addr)) if addr.port() != 80 => format!(":{}", addr.port()),
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

/// Waits for open connections to finish, up to `deadline`, then closes the rest.
async fn drain(shared: &Shared, deadline: Duration) {
    shared.tracker.close();
    let open = shared.tracker.len();
    if open > 0 {
        tracing::info!(connections = open, "web: letting in-flight requests finish");
    }
    if tokio::time::timeout(deadline, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = shared.tracker.len(),
            "web: shutdown deadline passed; closing the remaining connections"
        );
        shared.hard_stop.cancel();
        shared.tracker.wait().await;
    }
}

/// Re-reads the configuration and rebuilds the site; on any error the previous one stays.
async fn reload_site(
    started: &Config,
    reconfigure: &Reconfigure,
    https_port: Option<u16>,
    site: &ArcSwap<Site>,
) {
    let reconfigure = reconfigure.clone();
    let started_web = started.web.clone();
    let built = tokio::task::spawn_blocking(move || {
        let config = reconfigure().map_err(|e| WebError::Reload(e.to_string()))?;
        if config.web.http_listen != started_web.http_listen
            || config.web.https_listen != started_web.https_listen
            || config.web.max_connections != started_web.max_connections
        {
            tracing::warn!(
                "web.http_listen, web.https_listen and web.max_connections change only on restart"
            );
        }
        Site::build(&config.web, &config.state_dir, https_port)
    })
    .await;
    match built {
        Ok(Ok(new_site)) => {
            site.store(Arc::new(new_site));
            tracing::info!("web site and certificates reloaded");
        }
        Ok(Err(error)) => {
            tracing::error!(error = %crate::ops::chain(&error), "web reload failed; still serving the previous site");
        }
        Err(error) => {
            tracing::error!(%error, "web reload task failed; still serving the previous site");
        }
    }
}

async fn accept_loop(listener: TcpListener, secure: bool, shared: Shared) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                // At the cap, this connection waits here and later ones in the backlog.
                let permit = tokio::select! {
                    permit = shared.permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    () = shared.shutdown.cancelled() => return,
                };
                shared
                    .tracker
                    .spawn(connection(stream, peer, secure, permit, shared.clone()));
            }
            Err(error) if is_resource_exhaustion(&error) => {
                tracing::warn!(%error, backoff_ms = backoff.as_millis(), "web: accept failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shared.shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(error) => tracing::debug!(%error, "web: accept failed"),
        }
    }
}

fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One connection, from handshake to close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    secure: bool,
    permit: OwnedSemaphorePermit,
    shared: Shared,
) {
    let _permit = permit;
    let _ = stream.set_nodelay(true);
    let snapshot = shared.site.load_full();
    let activity = Activity::new();
    let info = Arc::new(ConnInfo {
        peer,
        secure,
        readiness: shared.readiness.clone(),
        app: shared.app.clone(),
    });
    let sites = shared.site.clone();
    let service = service_fn(move |request| {
        let site = sites.load_full();
        let info = info.clone();
        async move { Ok::<_, Infallible>(handler::handle(request, site, &info).await) }
    });
    if !secure {
        let io = Tracked::new(stream, activity.clone());
        drive(&snapshot.http, io, service, &activity, &snapshot, &shared).await;
        return;
    }
    let acceptor = TlsAcceptor::from(snapshot.tls.config.clone());
    let handshake = tokio::time::timeout(snapshot.tls_handshake_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = shared.shutdown.cancelled() => return,
    };
    let io = Tracked::new(stream, activity.clone());
    drive(&snapshot.http, io, service, &activity, &snapshot, &shared).await;
}

/// Serves HTTP on `io` until the client leaves, it idles out, or shutdown ends it.
async fn drive<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    activity: &Activity,
    site: &Site,
    shared: &Shared,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<super::body::Body>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "web connection ended with an error");
                }
                return;
            }
            () = shared.shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = activity.idle_for(site.idle_timeout) => {
                if closing {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
                activity.touch();
            }
            () = shared.hard_stop.cancelled() => return,
        }
    }
}

/// A listening TCP socket; port 0 picks a free port.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::from_std(listen::tcp(addr)?)
}
