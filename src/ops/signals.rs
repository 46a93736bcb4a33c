//! Unix signals as events: SIGTERM/SIGINT stop the process, SIGHUP asks for a reload.
//!
//! A reload is announced on a `watch` channel (each service re-reads what it owns: the DNS
//! service its zones); a stop cancels the shared [`CancellationToken`].

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Reload generations: the value increases by one on every SIGHUP.
pub type ReloadRx = watch::Receiver<u64>;

/// Listens for signals until `shutdown` is cancelled. Returns the reload receiver; SIGTERM and
/// SIGINT cancel `shutdown`.
pub fn spawn(shutdown: CancellationToken) -> std::io::Result<ReloadRx> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    tx.send_modify(|generation| *generation += 1);
                }
                _ = term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    shutdown.cancel();
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    shutdown.cancel();
                }
                () = shutdown.cancelled() => break,
            }
        }
    });
    Ok(rx)
}
