//! Cross-cutting process plumbing shared by every service: logging, signals, shutdown,
//! readiness, listening sockets, errors shown with their causes ([`Chain`]), and the handles
//! through which services share what one provides and another serves (certificates, ACME
//! challenge answers).
//!
//! Nothing here knows about DNS or HTTP; the services take what they need from here as handles.

pub mod certs;
mod chain;
pub mod challenges;
pub mod listen;
pub mod ready;
pub mod signals;
pub mod telemetry;

pub use chain::{Chain, chain};
pub use tokio_util::sync::CancellationToken;
