//! The one lifecycle (issue 10): `onebox check` refuses exactly what `serve` would refuse at
//! start; SIGHUP re-reads the whole configuration — listen addresses move (the new bound, the
//! old closed), the transfer ACL and the log level change live, restart-only keys are named in
//! one line — while the sockets that stay are the same ones; `dns.udp_workers` (`workers`);
//! upgrades in place (`upgrade`); systemd's protocols and the shipped units (`systemd`); the
//! switch from root to `user` (`privileges`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Output, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::harness::wire::{self, Query, Transport, rcode};
use crate::harness::{DEADLINE, Onebox, free_port, onebox_command, poll, repo};

mod privileges;
mod systemd;
mod upgrade;
mod workers;
mod zero_loss;

/// Runs `onebox --config <file> <command>` from the repository (the shipped zones, site and
/// templates), with `toml` as the configuration after a private `state_dir`. A serve that
/// starts after all is killed at the deadline.
fn run(command: &str, toml: &str) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("onebox.toml");
    let state = dir.path().join("state");
    std::fs::write(
        &config,
        format!("state_dir = '{}'\n{toml}\n", state.display()),
    )
    .expect("config");
    let mut child = onebox_command()
        .arg("--config")
        .arg(&config)
        .arg(command)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run onebox");
    let exited = poll(|| child.try_wait().expect("wait"));
    if exited.is_none() {
        let _ = child.kill();
    }
    (child.wait_with_output().expect("output"), dir)
}

/// A configuration on port 0, with `dns`, `web` and `rest` added to their tables.
fn config(dns: &str, web: &str, rest: &str) -> String {
    format!(
        "[dns]\nlisten = ['127.0.0.1:0']\n{dns}\n\
         [web]\nhttp_listen = ['127.0.0.1:0']\nhttps_listen = ['127.0.0.1:0']\n{web}\n{rest}"
    )
}

/// Check fails (status 1) and serve refuses to start (status 2), both naming `expected`.
fn both_refuse(toml: &str, expected: &str) {
    let (check, _) = run("check", toml);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "check: {stderr}");
    assert!(
        stderr.contains(expected),
        "check must name {expected:?}: {stderr}"
    );
    let (serve, _) = run("serve", toml);
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(2), "serve must refuse: {stderr}");
    assert!(
        stderr.contains(expected),
        "serve must name {expected:?}: {stderr}"
    );
}

#[test]
fn check_refuses_what_serve_refuses() {
    both_refuse(
        &config(
            "",
            "",
            "[database]\nurl = 'postgres://app@localhost/onebox'",
        ),
        "key database.url: postgres://app@localhost/onebox: use mysql://",
    );
    both_refuse(
        &config(
            "",
            "",
            "[web.tls]\ncerts = [{ cert = '/nonexistent/fullchain.pem', key = '/nonexistent/privkey.pem' }]",
        ),
        "/nonexistent/fullchain.pem",
    );
    both_refuse(
        &config("", "site_dir = '/nonexistent/site'", ""),
        "key web.site_dir: /nonexistent/site: No such file or directory",
    );
    both_refuse(
        &config("", "hsts = \"max-age=1\\nx\"", ""),
        "key web.hsts: not a valid HTTP header value",
    );
    // Two services on one address: refused before anything is bound.
    let port = free_port();
    let toml = format!(
        "[dns]\nlisten = ['127.0.0.1:{port}']\n\
         [web]\nhttp_listen = ['0.0.0.0:{port}']\nhttps_listen = ['127.0.0.1:0']\n"
    );
    both_refuse(
        &toml,
        &format!("overlaps 127.0.0.1:{port} of key dns.listen"),
    );
}

#[test]
fn a_bad_worker_count_stops_both_at_the_configuration() {
    let toml = config("udp_workers = 0", "", "");
    for command in ["check", "serve"] {
        let (out, _) = run(command, &toml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("key dns.udp_workers: expected \"auto\" or a number from 1 to 1024"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn check_passes_a_good_configuration_and_writes_nothing() {
    let (out, dir) = run("check", &config("", "", ""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "foobar.com. serial 2026112501 records 7\n"
    );
    assert!(
        !dir.path().join("state").exists(),
        "check creates nothing in state_dir (the development CA is checked, not made)"
    );
}

/// Rewrites the config file with `edit`, sends SIGHUP and waits for the reload to finish.
fn reload(ob: &Onebox, edit: impl FnOnce(String) -> String) -> usize {
    let text = std::fs::read_to_string(&ob.config).expect("config");
    std::fs::write(&ob.config, edit(text)).expect("rewrite config");
    let skip = ob.log().line_count();
    ob.sighup();
    let done = ob.log().wait_json_after(skip, |l| {
        l["message"] == "configuration reloaded"
            || l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload failed"))
    });
    assert!(
        done.is_some(),
        "no reload within {DEADLINE:?}:\n{}",
        ob.log().text()
    );
    skip
}

fn entries_after(ob: &Onebox, skip: usize) -> Vec<Value> {
    ob.log().entries().into_iter().skip(skip).collect()
}

fn answers_udp(addr: SocketAddr) -> bool {
    wire::udp(addr, &Query::new("www.foobar.com.", RecordType::A))
        .is_some_and(|reply| reply.rcode == rcode::NOERROR)
}

#[test]
fn sighup_binds_new_addresses_and_closes_removed_ones() {
    let ob = Onebox::start();
    let old_dns = ob.addr;
    let old_http = ob.http;
    let (dns_port, http_port) = (free_port(), free_port());
    let skip = reload(&ob, |text| {
        text.replacen(
            "listen = [\"127.0.0.1:0\"]",
            &format!("listen = [\"127.0.0.1:{dns_port}\"]"),
            1,
        )
        .replacen(
            "http_listen = [\"127.0.0.1:0\"]",
            &format!("http_listen = [\"127.0.0.1:0\", \"127.0.0.1:{http_port}\"]"),
            1,
        )
    });
    let new_dns: SocketAddr = format!("127.0.0.1:{dns_port}").parse().unwrap();
    assert!(answers_udp(new_dns), "the new DNS address answers over UDP");
    let reply = wire::ask(
        new_dns,
        &Query::new("www.foobar.com.", RecordType::A),
        Transport::Tcp,
    );
    assert_eq!(reply.rcode, rcode::NOERROR, "and over TCP");
    // The old DNS address is closed, both ways (its UDP thread notices within its read
    // timeout).
    let query = Query::new("www.foobar.com.", RecordType::A).to_bytes();
    assert!(
        poll(
            || wire::udp_bytes(old_dns, &query, Duration::from_millis(300))
                .is_none()
                .then_some(())
        )
        .is_some(),
        "the removed address no longer answers"
    );
    assert!(
        TcpStream::connect(old_dns).is_err(),
        "its TCP listener is closed"
    );
    // The kept web address is the same socket; the added one serves too.
    for addr in [old_http, format!("127.0.0.1:{http_port}").parse().unwrap()] {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{addr}: {response}");
    }
    let stopped: Vec<Value> = entries_after(&ob, skip)
        .into_iter()
        .filter(|l| l["message"] == "stopped listening")
        .collect();
    assert!(
        stopped.iter().all(|l| l["addr"] == old_dns.to_string())
            && ["udp", "tcp"]
                .iter()
                .all(|t| stopped.iter().any(|l| l["transport"] == *t)),
        "the old DNS address's UDP and TCP sockets, nothing else: {stopped:?}"
    );
}

#[test]
fn sighup_applies_the_transfer_acl_and_names_restart_only_keys() {
    let ob = Onebox::builder()
        .shipped_zones()
        .transfer("allow = [\"127.0.0.0/8\"]")
        .start();
    let axfr = Query::new("foobar.com.", RecordType::AXFR);
    assert_eq!(
        wire::ask(ob.addr, &axfr, Transport::Tcp).rcode,
        rcode::NOERROR
    );
    let skip = reload(&ob, |text| {
        text.replace("allow = [\"127.0.0.0/8\"]", "allow = [\"192.0.2.0/24\"]")
            + "\n[database]\nmax_connections = 3\n"
    });
    assert_eq!(
        wire::ask(ob.addr, &axfr, Transport::Tcp).rcode,
        rcode::REFUSED,
        "the new ACL is in force at once"
    );
    let named: Vec<Value> = entries_after(&ob, skip)
        .into_iter()
        .filter(|l| l["keys"].is_string())
        .collect();
    assert_eq!(named.len(), 1, "one line:\n{}", ob.log().text());
    assert_eq!(named[0]["keys"], "database.max_connections");
    assert!(answers_udp(ob.addr));
}

#[test]
fn sighup_changes_the_log_level() {
    let ob = Onebox::start();
    // The restart-only key makes a warning that shows the reload got as far as the level.
    let text = std::fs::read_to_string(&ob.config).expect("config");
    let quiet = text.replacen("level = \"info\"", "level = \"warn\"", 1)
        + "\n[database]\nmax_connections = 3\n";
    std::fs::write(&ob.config, &quiet).expect("rewrite");
    let skip = ob.log().line_count();
    ob.sighup();
    assert!(
        ob.log()
            .wait_json_after(skip, |l| l["keys"] == "database.max_connections")
            .is_some(),
        "{}",
        ob.log().text()
    );
    // The next reload (refused: the file is broken) logs its error and nothing at info.
    let skip = ob.log().line_count();
    std::fs::write(&ob.config, "not [toml").expect("break config");
    ob.sighup();
    let failed = ob.log().wait_json_after(skip, |l| l["level"] == "ERROR");
    assert!(failed.is_some(), "{}", ob.log().text());
    let info: Vec<Value> = entries_after(&ob, skip)
        .into_iter()
        .filter(|l| l["level"] == "INFO")
        .collect();
    assert!(info.is_empty(), "no info lines at level warn: {info:?}");
}
