//! onebox under systemd, without systemd: what the service manager hears (`NOTIFY_SOCKET`),
//! sockets passed as a socket unit passes them (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`) and kept across a restart, and the shipped units as `systemd-analyze
//! verify` and `security` read them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::answers_udp;
use super::upgrade::upgrade;
use crate::harness::log::Log;
use crate::harness::onebox::current_user;
use crate::harness::wire::{self, Query};
use crate::harness::{DEADLINE, Onebox, START_DEADLINE, repo, uninterrupted};

/// What the service manager received, one datagram each.
fn heard(manager: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = uninterrupted(|| manager.recv(&mut buf)).expect("a notification within the deadline");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_service_manager_hears_ready_reloading_stopping_and_the_new_main_pid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&path).expect("bind");
    manager.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let ob = Onebox::builder()
        .shipped_zones()
        .own_binary()
        .env("NOTIFY_SOCKET", &path.display().to_string())
        .start();
    assert_eq!(heard(&manager), "READY=1");

    ob.sighup();
    let reloading = heard(&manager);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(heard(&manager), "READY=1", "after the reload");

    let out = upgrade(&ob);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = ob.serving_pid().expect("the new pid");
    // The old process hands over; the new one says nothing before it is the main process.
    assert_eq!(heard(&manager), format!("MAINPID={new}\nREADY=1"));

    // SAFETY: kill(2) on the process this test's pid file names.
    unsafe { libc::kill(i32::try_from(new).expect("pid"), libc::SIGTERM) };
    assert_eq!(heard(&manager), "STOPPING=1");
}

/// A onebox started as systemd starts a socket-activated service: `sockets` at descriptors
/// 3, 4, ... named `names`, `LISTEN_PID` its own pid (set by a shell that then execs it).
pub(super) fn activated(
    binary: &Path,
    config: &Path,
    sockets: &[RawFd],
    names: &str,
) -> (Child, Arc<Log>) {
    let fds = sockets.to_vec();
    let mut command = Command::new("sh");
    command
        .args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
        .arg(binary)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names)
        .env("ONEBOX_USER", current_user())
        .env("ONEBOX_METRICS__LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only dup2 between fork and exec (async-signal-safe); the sources are open in
    // the test for the whole call, and are copied (above the targets) before any is
    // overwritten.
    unsafe {
        command.pre_exec(move || {
            let mut high = Vec::new();
            for &fd in &fds {
                let copy = libc::fcntl(fd, libc::F_DUPFD, 100);
                if copy < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(copy);
            }
            for (i, &fd) in high.iter().enumerate() {
                if libc::dup2(fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("start onebox");
    let log = Log::capture(child.stderr.take().expect("stderr"));
    let ready = log.wait_nth_json_within(1, START_DEADLINE, |l| l["message"] == "onebox ready");
    assert!(ready.is_some(), "not ready:\n{}", log.text());
    (child, log)
}

/// A loopback port free for UDP and TCP, bound: the sockets a socket unit would hold.
pub(super) fn unit_sockets() -> (UdpSocket, TcpListener, TcpListener, TcpListener) {
    for _ in 0..64 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let Ok(tcp) = TcpListener::bind(udp.local_addr().expect("addr")) else {
            continue;
        };
        let http = TcpListener::bind("127.0.0.1:0").expect("http");
        let https = TcpListener::bind("127.0.0.1:0").expect("https");
        return (udp, tcp, http, https);
    }
    panic!("no free port for UDP and TCP");
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sockets_passed_by_a_socket_unit_are_served_and_outlive_a_restart() {
    let (udp, tcp, http, https) = unit_sockets();
    let dns: SocketAddr = udp.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = '{state}'\n[log]\nformat = \"json\"\n\
             [dns]\nlisten = ['{dns}']\nzones_dir = '{zones}'\nudp_workers = 2\n\
             [web]\nhttp_listen = ['{http}']\nhttps_listen = ['{https}']\nsite_dir = '{site}'\n",
            state = dir.path().join("state").display(),
            zones = repo().join("zones").display(),
            http = http.local_addr().expect("addr"),
            https = https.local_addr().expect("addr"),
            site = repo().join("site").display(),
        ),
    )
    .expect("config");
    // systemd's names are the unit's unless FileDescriptorName= says otherwise: one socket is
    // unnamed here, matched by its address alone.
    let fds = [
        udp.as_raw_fd(),
        tcp.as_raw_fd(),
        http.as_raw_fd(),
        https.as_raw_fd(),
    ];
    let names = "dns:dns:onebox.socket:https";
    let (mut first, log) = activated(
        Path::new(env!("CARGO_BIN_EXE_onebox")),
        &config,
        &fds,
        names,
    );
    let ready = log
        .wait_json(|l| l["message"] == "onebox ready")
        .expect("ready");
    // Two UDP workers on the one UDP socket passed, DNS TCP, HTTP and HTTPS: all passed; the
    // metrics listener, not in the unit, bound by onebox.
    assert_eq!(ready["sockets"], 6, "{ready}");
    assert_eq!(ready["inherited"], 5, "{ready}");
    assert!(answers_udp(dns));

    // A restart: while no onebox runs, a query and a request wait in the kernel, held by
    // the sockets the "socket unit" keeps; the next onebox answers them.
    stop(&mut first);
    let query = Query::new("www.foobar.com.", RecordType::A).to_bytes();
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    client.send_to(&query, dns).expect("send while down");
    let mut request = TcpStream::connect(http.local_addr().expect("addr"))
        .expect("the connection waits in the backlog");
    request
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request while down");
    let (mut second, _log) = activated(
        Path::new(env!("CARGO_BIN_EXE_onebox")),
        &config,
        &fds,
        names,
    );
    client.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut buf = [0u8; 512];
    let (n, _) = uninterrupted(|| client.recv_from(&mut buf))
        .expect("the query sent while down is answered");
    assert_eq!(&buf[..2], &query[..2], "{n} bytes");
    let mut response = String::new();
    request.set_read_timeout(Some(DEADLINE)).expect("timeout");
    request
        .read_to_string(&mut response)
        .expect("the request sent while down is answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(wire::udp(dns, &Query::new("foobar.com.", RecordType::SOA)).is_some());
    stop(&mut second);
}

#[test]
fn the_shipped_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("NOT RUN: systemd-analyze is not installed (.ci/run installs systemd)");
        return;
    }
    // The units name /usr/bin/onebox, which exists only once the package is installed: verify
    // a copy naming the binary under test.
    let dir = tempfile::tempdir().expect("tempdir");
    for unit in ["onebox.service", "onebox.socket"] {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(unit))
            .expect("read unit")
            .replace("/usr/bin/onebox", env!("CARGO_BIN_EXE_onebox"));
        std::fs::write(dir.path().join(unit), text).expect("write unit");
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("onebox.socket"))
        .arg(dir.path().join("onebox.service"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("onebox"))
        .collect();
    assert!(problems.is_empty(), "{stderr}");
    // The hardening, as systemd scores it (0 = locked down, 10 = unprotected): at most 2.0,
    // "OK" in its words.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(dir.path().join("onebox.service"))
        .output()
        .expect("systemd-analyze security");
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
