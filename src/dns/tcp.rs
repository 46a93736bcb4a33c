//! DNS over TCP (placeholder: being written).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::answer::Responder;

/// Back-pressure and timeouts for TCP clients.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// A connection with no complete query for this long is closed.
    pub idle_timeout: Duration,
}

/// Accepts and serves connections until `shutdown` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    responder: Arc<Responder>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let _ = (listener, responder, limits);
    shutdown.cancelled().await;
}
