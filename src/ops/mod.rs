//! Cross-cutting process plumbing shared by every service: logging, signals, shutdown,
//! readiness, listening sockets and the allocator's settings.
//!
//! Nothing here knows about DNS or HTTP; the services take what they need from here as handles.

pub mod listen;
pub mod memory;
pub mod ready;
pub mod signals;
pub mod telemetry;

pub use tokio_util::sync::CancellationToken;
