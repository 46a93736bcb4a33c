//! Cross-cutting process plumbing shared by every service: the lifecycle's parts, and the
//! allocator's settings.
//!
//! - [`listen`]: listening sockets, bound or inherited (systemd, an upgrade), all or nothing;
//! - [`accept`]: the one TCP accept loop (cap before accept, error classes, back-off, drain);
//! - [`snapshot`]: immutable state rebuilt off the hot path and swapped whole on reload;
//! - [`signals`]: SIGHUP, SIGTERM/SIGINT and SIGUSR2 as lifecycle events;
//! - [`ready`]: readiness checks behind `/readyz`;
//! - [`telemetry`]: the logger, whose level a reload changes;
//! - [`metrics`]: the registry every service puts its counters in, rendered for Prometheus;
//! - [`privileges`]: binding as root, serving as `user`;
//! - [`notify`]: systemd's readiness protocol; [`upgrade`]: the hand-over to a new binary;
//! - [`certs`] and [`challenges`]: handles through which services share what one provides and
//!   another serves (certificates, ACME challenge answers);
//! - [`Chain`]: errors shown with their causes, each once.
//!
//! [`Context`] is what the lifecycle hands each service beside its sockets. Nothing here knows
//! about DNS or HTTP.

pub mod accept;
pub mod certs;
mod chain;
pub mod challenges;
pub mod listen;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod privileges;
pub mod ready;
pub mod signals;
pub mod snapshot;
pub mod telemetry;
pub mod upgrade;

pub use chain::{Chain, chain};
pub use tokio_util::sync::CancellationToken;

use ready::Readiness;
use signals::Reloader;

/// What the lifecycle hands every service: cheap to clone, one per process.
#[derive(Debug, Clone)]
pub struct Context {
    /// Cancelled when the process stops (SIGTERM, SIGINT, the end of an upgrade): stop
    /// accepting and drain.
    pub shutdown: CancellationToken,
    /// The process's readiness checks: each service registers its own.
    pub readiness: Readiness,
    /// Asks for a reload of the whole configuration, as SIGHUP does.
    pub reloader: Reloader,
    /// The metrics every service registers its collectors in (`metrics.listen` serves them).
    pub metrics: metrics::Registry,
}
