//! Cross-cutting process plumbing shared by every service: logging, signals, shutdown,
//! readiness, listening sockets, and errors shown with their causes ([`Chain`]).
//!
//! Nothing here knows about DNS or HTTP; the services take what they need from here as handles.

mod chain;
pub mod listen;
pub mod ready;
pub mod signals;
pub mod telemetry;

pub use chain::{Chain, chain};
pub use tokio_util::sync::CancellationToken;
