//! The UDP fast path (placeholder: being written).

use std::net::UdpSocket;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;

use super::answer::Responder;

/// Serves `socket` on a thread of its own until `shutdown` is cancelled.
pub(crate) fn spawn(
    socket: UdpSocket,
    responder: Arc<Responder>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = (socket, responder, shutdown);
    })
}
