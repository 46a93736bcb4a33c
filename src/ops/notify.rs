//! The service manager's notification protocol (`sd_notify`, systemd's `Type=notify`): one
//! datagram of `KEY=VALUE` lines to the socket named by `NOTIFY_SOCKET`, when there is one.
//!
//! onebox says `READY=1` once every socket is served, `RELOADING=1` (with `MONOTONIC_USEC`)
//! while a reload runs and `READY=1` again after it, `STOPPING=1` when it starts to drain, and,
//! after an upgrade, the old process hands the service over with `MAINPID=<new>` and
//! `READY=1`. Without `NOTIFY_SOCKET` (not under systemd) every call does nothing. Failures are
//! logged once and never stop the server.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};

/// The variable naming the manager's socket.
const SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// Set once a send failed: later failures stay quiet.
static WARNED: AtomicBool = AtomicBool::new(false);

/// `READY=1`: startup (or a reload) is complete.
pub fn ready() {
    send("READY=1");
}

/// `RELOADING=1`: a reload starts; [`ready`] ends it.
pub fn reloading() {
    send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
}

/// `STOPPING=1`: the drain starts.
pub fn stopping() {
    send("STOPPING=1");
}

/// `MAINPID=<pid>` and `READY=1`: the process `pid` (the upgraded one) is now the service.
pub fn handed_over(pid: u32) {
    send(&format!("MAINPID={pid}\nREADY=1"));
}

/// `STATUS=<text>`: one line shown by `systemctl status`.
pub fn status(text: &str) {
    send(&format!("STATUS={}", text.replace('\n', " ")));
}

/// Sends `state` to the manager, if there is one.
fn send(state: &str) {
    let Some(path) = std::env::var_os(SOCKET_VAR) else {
        return;
    };
    if let Err(error) = send_to(&path, state)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            %error,
            socket = %path.to_string_lossy(),
            "cannot notify the service manager (NOTIFY_SOCKET)"
        );
    }
}

fn send_to(path: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    match bytes.split_first() {
        // A name in the abstract namespace.
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        Some((b'/', _)) => {
            socket.send_to(state.as_bytes(), path)?;
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither a path nor an abstract name",
            ));
        }
    }
    Ok(())
}

/// `CLOCK_MONOTONIC` in microseconds, as systemd reads `MONOTONIC_USEC`.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * 1_000_000 + nanos / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).expect("bind");
        send_to(path.as_os_str(), "READY=1").expect("send");
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn monotonic_time_moves_forward() {
        let a = monotonic_usec();
        let b = monotonic_usec();
        assert!(a > 0 && b >= a);
    }
}
