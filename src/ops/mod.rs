//! Cross-cutting process plumbing shared by every service: logging, signals, shutdown,
//! readiness and listening sockets.
//!
//! Nothing here knows about DNS or HTTP; the services take what they need from here as handles.

pub mod listen;
pub mod ready;
pub mod signals;
pub mod telemetry;

pub use tokio_util::sync::CancellationToken;
