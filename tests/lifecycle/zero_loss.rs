//! The zero-loss proof (issue 10). Under a bounded load — DNS over UDP and over TCP, HTTP/1.1
//! keep-alive and HTTP/2 clients doing continuous GETs, and one large download in flight —
//! each of these loses 0 queries and 0 requests, and the download completes:
//!
//! 1. SIGHUP with a changed configuration and zone;
//! 2. `onebox upgrade` to a new binary file (a fresh copy renamed over the one on disk, as a
//!    package upgrade replaces it);
//! 3. a restart with the sockets held as systemd's socket unit holds them (SIGTERM, wait for
//!    the exit, start again with `LISTEN_FDS`);
//! 4. an upgrade whose new binary fails to start.
//!
//! The servers run on the sockets this test holds (as systemd would), from a copy of the
//! binary it may replace. Clients are sequential, with a short pause between requests (the
//! load is bounded: this is about losing nothing, not about speed), and wait for each answer
//! up to a generous timeout: a query or request counts as lost when it gets an error or no
//! answer. Printed: the counts, each operation's time, and the slowest answer seen.
//!
//! It takes a minute or two: `make zero-loss` runs it (and CI, after `make test`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::systemd::{activated, unit_sockets};
use super::upgrade::upgrade_command;
use crate::harness::log::Log;
use crate::harness::wire::{self, Query};
use crate::harness::{poll, repo, uninterrupted};
use crate::web::{Proto, WWW, tls_config};

/// How long a client waits for one answer before it counts it lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause between two requests of one client.
const PAUSE: Duration = Duration::from_millis(2);
/// The large download's size and pace (64 KiB reads, this pause between them: some seconds).
const DOWNLOAD_BYTES: usize = 48 << 20;
const DOWNLOAD_PAUSE: Duration = Duration::from_millis(4);

/// One kind of traffic's tally.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    lost: AtomicU64,
    slowest_us: AtomicU64,
}

impl Tally {
    fn record(&self, started: Instant, ok: bool, what: &str) {
        if ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            eprintln!("lost: {what}");
        }
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.slowest_us.fetch_max(us, Ordering::Relaxed);
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name} {} ok, {} lost, slowest {} ms",
            self.ok.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.slowest_us.load(Ordering::Relaxed) / 1000
        )
    }
}

#[derive(Default)]
struct Tallies {
    udp: Tally,
    tcp: Tally,
    h1: Tally,
    h2: Tally,
}

impl Tallies {
    fn lost(&self) -> u64 {
        [&self.udp, &self.tcp, &self.h1, &self.h2]
            .iter()
            .map(|t| t.lost.load(Ordering::Relaxed))
            .sum()
    }
}

/// The addresses under load.
#[derive(Clone)]
struct Target {
    dns: SocketAddr,
    http: SocketAddr,
    https: SocketAddr,
    ca: PathBuf,
}

/// The load: threads for DNS, tasks for HTTP; stopped together.
struct Load {
    stop: Arc<AtomicBool>,
    tallies: Arc<Tallies>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(target: &Target) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let tallies = Arc::new(Tallies::default());
    let mut threads = Vec::new();
    for client in 0..4u16 {
        let (stop, tallies, dns) = (stop.clone(), tallies.clone(), target.dns);
        threads.push(std::thread::spawn(move || {
            udp_client(client, dns, &stop, &tallies.udp)
        }));
    }
    for _ in 0..2 {
        let (stop, tallies, dns) = (stop.clone(), tallies.clone(), target.dns);
        threads.push(std::thread::spawn(move || {
            tcp_client(dns, &stop, &tallies.tcp)
        }));
    }
    let mut tasks = Vec::new();
    for proto in [Proto::H1, Proto::H1, Proto::H2, Proto::H2] {
        let (stop, tallies, target) = (stop.clone(), tallies.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let tally = match proto {
                Proto::H1 => &tallies.h1,
                Proto::H2 => &tallies.h2,
            };
            http_client(&target, proto, &stop, tally).await;
        }));
    }
    Load {
        stop,
        tallies,
        threads,
        tasks,
    }
}

impl Load {
    async fn finish(self) -> Arc<Tallies> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("http client");
        }
        tokio::task::spawn_blocking(move || {
            for thread in self.threads {
                thread.join().expect("dns client");
            }
        })
        .await
        .expect("join");
        self.tallies
    }
}

/// Sequential UDP queries from one socket, each waited for.
fn udp_client(client: u16, dns: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut id = client.wrapping_mul(10_007);
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        id = id.wrapping_add(1);
        let name = if id.is_multiple_of(2) {
            "www.foobar.com."
        } else {
            "foobar.com."
        };
        let mut query = Query::new(name, RecordType::A).to_bytes();
        query[..2].copy_from_slice(&id.to_be_bytes());
        let started = Instant::now();
        let answered = socket.send_to(&query, dns).is_ok()
            && loop {
                match uninterrupted(|| socket.recv_from(&mut buf)) {
                    Ok((n, _)) if n >= 12 && buf[..2] == id.to_be_bytes() => break true,
                    Ok(_) => {}
                    Err(_) if started.elapsed() < ANSWER_TIMEOUT => {}
                    Err(_) => break false,
                }
            };
        tally.record(started, answered, &format!("UDP query {id}"));
        std::thread::sleep(PAUSE);
    }
}

/// Connections of 20 sequential queries each.
fn tcp_client(dns: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let query = Query::new("www.foobar.com.", RecordType::A).to_bytes();
    let mut framed = u16::try_from(query.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&query);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut stream = match TcpStream::connect_timeout(&dns, ANSWER_TIMEOUT) {
            Ok(stream) => stream,
            Err(error) => {
                tally.record(started, false, &format!("TCP connect: {error}"));
                continue;
            }
        };
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("timeout");
        for _ in 0..20 {
            let started = Instant::now();
            let mut len = [0u8; 2];
            let answered =
                stream.write_all(&framed).is_ok() && stream.read_exact(&mut len).is_ok() && {
                    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    stream.read_exact(&mut reply).is_ok() && reply[..2] == query[..2]
                };
            tally.record(started, answered, "TCP query");
            if !answered || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(PAUSE);
        }
    }
}

/// Continuous GETs on one client (keep-alive for HTTP/1.1, one connection for HTTP/2).
async fn http_client(target: &Target, proto: Proto, stop: &AtomicBool, tally: &Tally) {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&target.ca, proto))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(ANSWER_TIMEOUT)
        .resolve(WWW, target.https);
    builder = match proto {
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_prior_knowledge(),
    };
    let client = builder.build().expect("client");
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let path = ["/", "/style.css", "/logo.svg", "/app.js"][i % 4];
        i += 1;
        let url = format!("https://{WWW}:{}{path}", target.https.port());
        let started = Instant::now();
        let outcome = match client.get(&url).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::OK => response
                .bytes()
                .await
                .map(drop)
                .map_err(|e| format!("{e:?}")),
            Ok(response) => Err(format!("status {}", response.status())),
            Err(error) => Err(format!("{error:?}")),
        };
        let what = match &outcome {
            Ok(()) => String::new(),
            Err(error) => format!("{proto:?} GET {path}: {error}"),
        };
        tally.record(started, outcome.is_ok(), &what);
        tokio::time::sleep(PAUSE).await;
    }
}

/// One large GET over plain HTTP, read at a steady pace; the whole body's length.
fn download(http: SocketAddr) -> std::thread::JoinHandle<Result<usize, String>> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(http).map_err(|e| e.to_string())?;
        stream
            .write_all(
                format!("GET /big.bin HTTP/1.1\r\nHost: {WWW}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut received = Vec::with_capacity(DOWNLOAD_BYTES + 4096);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match uninterrupted(|| stream.read(&mut chunk)) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(error) => return Err(format!("after {} bytes: {error}", received.len())),
            }
            std::thread::sleep(DOWNLOAD_PAUSE);
        }
        let head = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no response head")?
            + 4;
        if !received.starts_with(b"HTTP/1.1 200") {
            return Err(String::from_utf8_lossy(&received[..head]).into_owned());
        }
        let body = &received[head..];
        if body.iter().any(|&b| b != 7) {
            return Err("the body is not the file".to_owned());
        }
        Ok(body.len())
    })
}

/// The process lineage under test: sockets held like a socket unit, the serving process
/// known by its pid file.
struct Lineage {
    dir: tempfile::TempDir,
    config: PathBuf,
    binary: PathBuf,
    unit: (
        UdpSocket,
        std::net::TcpListener,
        std::net::TcpListener,
        std::net::TcpListener,
    ),
    target: Target,
    /// Every process the test started, and its log.
    started: Vec<(Child, Arc<Log>)>,
}

impl Lineage {
    fn new() -> Self {
        let unit = unit_sockets();
        let dir = tempfile::tempdir().expect("tempdir");
        let site = dir.path().join("site");
        copy_dir(&repo().join("site"), &site);
        std::fs::write(site.join("big.bin"), vec![7u8; DOWNLOAD_BYTES]).expect("big file");
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).expect("zones");
        std::fs::write(zones.join("foobar.com.zone"), zone(1)).expect("zone");
        let binary = dir.path().join("onebox-bin");
        std::fs::copy(env!("CARGO_BIN_EXE_onebox"), &binary).expect("copy the binary");
        let target = Target {
            dns: unit.0.local_addr().expect("addr"),
            http: unit.2.local_addr().expect("addr"),
            https: unit.3.local_addr().expect("addr"),
            ca: dir.path().join("state/dev-ca/ca.pem"),
        };
        let config = dir.path().join("onebox.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = '{state}'\n[log]\nformat = \"json\"\n\
                 [dns]\nlisten = ['{dns}']\nzones_dir = '{zones}'\nudp_workers = 2\n\
                 [web]\nhttp_listen = ['{http}']\nhttps_listen = ['{https}']\nsite_dir = '{site}'\n\
                 redirect_to_https = false\naccess_log = false\nshutdown_timeout = \"60s\"\n\
                 cache_control = \"public, max-age=1\"\n",
                state = dir.path().join("state").display(),
                dns = target.dns,
                zones = zones.display(),
                http = target.http,
                https = target.https,
                site = site.display(),
            ),
        )
        .expect("config");
        let mut lineage = Self {
            dir,
            config,
            binary,
            unit,
            target,
            started: Vec::new(),
        };
        lineage.start();
        lineage
    }

    /// Starts a process as systemd starts the socket-activated service.
    fn start(&mut self) {
        let fds = [
            self.unit.0.as_raw_fd(),
            self.unit.1.as_raw_fd(),
            self.unit.2.as_raw_fd(),
            self.unit.3.as_raw_fd(),
        ];
        let started = activated(&self.binary, &self.config, &fds, "dns:dns:http:https");
        self.started.push(started);
    }

    fn serving_pid(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("state/onebox.pid"))
            .expect("the pid file")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// Every log line of every process so far (upgraded processes write to their parent's).
    fn log_has(&self, pred: impl Fn(&serde_json::Value) -> bool) -> bool {
        self.started
            .iter()
            .any(|(_, log)| log.entries().iter().any(&pred))
    }

    /// A fresh copy of the binary renamed over the one on disk.
    fn replace_binary(&self, with: &Path) {
        let fresh = self.dir.path().join("onebox-bin.new");
        std::fs::copy(with, &fresh).expect("copy");
        let mut permissions = std::fs::metadata(&fresh).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&fresh, permissions).expect("chmod");
        std::fs::rename(&fresh, &self.binary).expect("rename over");
    }
}

impl Drop for Lineage {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("state/onebox.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            // SAFETY: kill(2) on the process this test's pid file names.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for (child, _) in &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn zone(serial: u32) -> String {
    let added = if serial > 1 {
        "added IN A 192.0.2.7\n"
    } else {
        ""
    };
    format!(
        "$ORIGIN foobar.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster {serial} 3600 900 1209600 300\n\
         @ IN NS ns1\nns1 IN A 192.0.2.53\n@ IN A 8.8.8.8\nwww IN CNAME @\n{added}"
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Runs `operation` under load with a download in flight; returns the tallies, the
/// operation's own time and the download's outcome.
async fn under_load<F>(
    target: &Target,
    operation: F,
) -> (Arc<Tallies>, Duration, Result<usize, String>)
where
    F: FnOnce() -> Duration,
{
    let load = start_load(target);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let download = download(target.http);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = tokio::task::block_in_place(operation);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let downloaded = tokio::task::spawn_blocking(move || download.join().expect("download"))
        .await
        .expect("join");
    let tallies = load.finish().await;
    (tallies, took, downloaded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: `make zero-loss` runs it"]
async fn nothing_is_lost_by_a_reload_an_upgrade_a_restart_or_a_failed_upgrade() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut lineage = Lineage::new();
    let target = lineage.target.clone();
    assert!(
        poll(|| lineage.target.ca.exists().then_some(())).is_some(),
        "the development CA"
    );
    let mut report = Vec::new();
    let mut lost = 0;
    let mut row = |name: &str,
                   tallies: &Tallies,
                   took: Duration,
                   downloaded: &Result<usize, String>,
                   note: String| {
        lost += tallies.lost();
        report.push(format!(
            "{name}: took {took:.2?}{note}\n  {}\n  {}\n  {}\n  {}\n  download: {}",
            tallies.udp.line("DNS/UDP"),
            tallies.tcp.line("DNS/TCP"),
            tallies.h1.line("HTTP/1.1"),
            tallies.h2.line("HTTP/2"),
            match downloaded {
                Ok(bytes) => format!("complete, {bytes} bytes"),
                Err(error) => format!("FAILED: {error}"),
            }
        ));
    };

    // 1. SIGHUP with a changed configuration and zone.
    let (tallies, took, downloaded) = under_load(&target, || {
        std::fs::write(lineage.dir.path().join("zones/foobar.com.zone"), zone(2)).expect("zone");
        let config = std::fs::read_to_string(&lineage.config).expect("config");
        std::fs::write(
            &lineage.config,
            config.replace("max-age=1\"", "max-age=2\""),
        )
        .expect("config");
        let (_, log) = &lineage.started[0];
        let skip = log.line_count();
        let started = Instant::now();
        // SAFETY: kill(2) on the process this test started.
        unsafe {
            libc::kill(
                i32::try_from(lineage.serving_pid()).expect("pid"),
                libc::SIGHUP,
            )
        };
        assert!(
            log.wait_json_after(skip, |l| l["message"] == "configuration reloaded")
                .is_some(),
            "reloaded"
        );
        started.elapsed()
    })
    .await;
    let reply = wire::udp(
        lineage.target.dns,
        &Query::new("added.foobar.com.", RecordType::A),
    )
    .expect("an answer");
    assert_eq!(reply.rcode, wire::rcode::NOERROR, "the new zone is served");
    row(
        "1. SIGHUP, changed config and zone",
        &tallies,
        took,
        &downloaded,
        String::new(),
    );
    assert!(downloaded.is_ok(), "{downloaded:?}");

    // 2. `onebox upgrade` to a new binary file.
    let before = lineage.serving_pid();
    let mut exited_after = Duration::ZERO;
    let (tallies, took, downloaded) = under_load(&target, || {
        lineage.replace_binary(Path::new(env!("CARGO_BIN_EXE_onebox")));
        let started = Instant::now();
        let out = upgrade_command(&lineage.config, lineage.dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let took = started.elapsed();
        // The old process drains (the download is still on it), then exits.
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while !gone(before) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(before), "the old process exits");
        exited_after = started.elapsed();
        took
    })
    .await;
    assert_ne!(lineage.serving_pid(), before);
    row(
        "2. onebox upgrade",
        &tallies,
        took,
        &downloaded,
        format!(" (the old process exited after {exited_after:.2?})"),
    );
    assert!(downloaded.is_ok(), "{downloaded:?}");

    // 3. A restart with the sockets held as systemd's socket unit holds them.
    let before = lineage.serving_pid();
    let mut stopped_after = Duration::ZERO;
    let (tallies, took, downloaded) = under_load(&target, || {
        let started = Instant::now();
        // SAFETY: kill(2) on the process this test's pid file names.
        unsafe { libc::kill(i32::try_from(before).expect("pid"), libc::SIGTERM) };
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while !gone(before) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(before), "the old process exits");
        stopped_after = started.elapsed();
        lineage.start();
        started.elapsed()
    })
    .await;
    row(
        "3. restart, sockets held as by a socket unit",
        &tallies,
        took,
        &downloaded,
        format!(" (the old process drained and exited after {stopped_after:.2?})"),
    );
    assert!(downloaded.is_ok(), "{downloaded:?}");

    // 4. An upgrade whose new binary fails to start.
    let before = lineage.serving_pid();
    let broken = lineage.dir.path().join("broken");
    std::fs::write(&broken, "#!/bin/sh\necho 'broken on purpose' >&2\nexit 3\n").expect("broken");
    let (tallies, took, downloaded) = under_load(&target, || {
        lineage.replace_binary(&broken);
        let started = Instant::now();
        let out = upgrade_command(&lineage.config, lineage.dir.path());
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    })
    .await;
    assert_eq!(lineage.serving_pid(), before, "the old process serves on");
    assert!(lineage.log_has(|l| l["message"] == "upgrade failed; still serving"));
    row(
        "4. upgrade to a binary that fails",
        &tallies,
        took,
        &downloaded,
        String::new(),
    );
    assert!(downloaded.is_ok(), "{downloaded:?}");

    eprintln!(
        "\nzero-loss proof (debug build, loopback, bounded load):\n{}",
        report.join("\n")
    );
    assert_eq!(lost, 0, "{}", report.join("\n"));
}
