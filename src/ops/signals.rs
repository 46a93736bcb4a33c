//! Unix signals as lifecycle events: SIGTERM/SIGINT stop, SIGHUP reloads the whole
//! configuration, SIGUSR2 upgrades to the binary on disk.
//!
//! The signals only announce; `cli`'s lifecycle loop decides what each means. A service (or a
//! command arriving some other way) may ask for a reload through [`Reloader`], which feeds the
//! same loop as SIGHUP.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What the process is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Re-read the configuration and apply what changed (SIGHUP, or [`Reloader::reload`]).
    Reload,
    /// Stop accepting, drain, exit (SIGTERM or SIGINT; the name is for the log).
    Stop(&'static str),
    /// Start the binary on disk with this process's sockets and hand over to it (SIGUSR2).
    Upgrade,
}

/// Asks the lifecycle for a reload, as SIGHUP does; cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    tx: mpsc::UnboundedSender<Event>,
}

impl Reloader {
    /// A handle whose requests go nowhere (tests, one-shot commands).
    pub fn detached() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        Self { tx }
    }

    /// Asks for a reload of the whole configuration. Requests made while one runs are merged
    /// into the next.
    pub fn reload(&self) {
        let _ = self.tx.send(Event::Reload);
    }
}

/// Listens for signals until the events' receiver is dropped. Returns the events and a handle
/// to ask for reloads.
pub fn spawn() -> std::io::Result<(mpsc::UnboundedReceiver<Event>, Reloader)> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let (tx, rx) = mpsc::unbounded_channel();
    let reloader = Reloader { tx: tx.clone() };
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = hup.recv() => Event::Reload,
                _ = term.recv() => Event::Stop("SIGTERM"),
                _ = int.recv() => Event::Stop("SIGINT"),
                _ = usr2.recv() => Event::Upgrade,
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok((rx, reloader))
}
