//! NOTIFY to secondaries (placeholder: being written).

use std::net::SocketAddr;

use hickory_proto::rr::Name;

/// Tells each of `targets` that `zone` now has `serial`, retrying until each acknowledges.
pub(crate) fn spawn(zone: Name, serial: u32, targets: Vec<SocketAddr>) {
    let _ = (zone, serial, targets);
}
