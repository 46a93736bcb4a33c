//! A 100 MB upload and a 100 MB download through the reverse proxy, over HTTP/1.1 and
//! HTTP/2 with curl: onebox streams both ways, so its peak resident memory (VmHWM) grows by
//! far less than the bodies. The bound is memory, not time.

use std::convert::Infallible;
use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::WWW;
use crate::harness::Onebox;

const SIZE: u64 = 100_000_000;
/// How much onebox's peak resident memory may grow over the transfers (generous: a buffered
/// body alone would be 100 MB).
const BOUND: u64 = 64 * 1024 * 1024;

static ZEROS: [u8; 65536] = [0; 65536];

/// A body of `left` zero bytes, made as it is read.
struct Zeros {
    left: u64,
}

impl http_body::Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &ZEROS[..n as usize],
        )))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// `.../download`: 100 MB of zeros; anything else: the number of body bytes received.
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|request: hyper::Request<Incoming>| async move {
                    if request.uri().path().ends_with("/download") {
                        let body = Zeros { left: SIZE }.boxed();
                        return Ok::<_, Infallible>(hyper::Response::new(body));
                    }
                    let mut body = request.into_body();
                    let mut received = 0u64;
                    while let Some(Ok(frame)) = body.frame().await {
                        received += frame.data_ref().map_or(0, |d| d.len() as u64);
                    }
                    let text = http_body_util::Full::new(Bytes::from(format!("{received}")));
                    Ok(hyper::Response::new(text.map_err(|e| match e {}).boxed()))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A `/proc/PID/status` field in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Runs a shell pipeline with curl; returns its stdout.
async fn sh(script: String) -> String {
    let shown = script.clone();
    let output =
        tokio::task::spawn_blocking(move || Command::new("sh").args(["-c", &script]).output())
            .await
            .expect("join")
            .expect("sh");
    assert!(
        output.status.success(),
        "{shown}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_and_download_stream_through_in_bounded_memory() {
    let upstream = upstream().await;
    let server = Onebox::builder()
        .shipped_zones()
        .toml(&format!(
            "[[web.proxy]]\npath = \"/big/\"\nupstreams = [\"http://{upstream}\"]\n\
             max_body_bytes = {SIZE}\n"
        ))
        .start();
    let pid = server.serving_pid().expect("pid");
    let port = server.https.port();
    let curl = format!(
        "curl --silent --show-error --fail --max-time 300 --cacert {} --resolve {WWW}:{port}:127.0.0.1",
        server.ca().display()
    );
    // Warm up (TLS, pools, the first requests' allocations), then the baseline.
    for http in ["--http1.1", "--http2"] {
        sh(format!(
            "{curl} {http} -o /dev/null https://{WWW}:{port}/big/warm"
        ))
        .await;
    }
    let before = status_bytes(pid, "VmHWM");
    for http in ["--http1.1", "--http2"] {
        let url = format!("https://{WWW}:{port}/big");
        let uploaded = sh(format!(
            "head -c {SIZE} /dev/zero | {curl} {http} -T - {url}/upload"
        ))
        .await;
        assert_eq!(uploaded.trim(), SIZE.to_string(), "{http}: upload");
        let downloaded = sh(format!(
            "{curl} {http} -o /dev/null -w '%{{size_download}}' {url}/download"
        ))
        .await;
        assert_eq!(downloaded.trim(), SIZE.to_string(), "{http}: download");
    }
    let after = status_bytes(pid, "VmHWM");
    let growth = after.saturating_sub(before);
    eprintln!(
        "proxy memory: VmHWM {} MiB before, {} MiB after 4 x 100 MB through onebox (growth {} MiB)",
        before >> 20,
        after >> 20,
        growth >> 20
    );
    assert!(
        growth < BOUND,
        "peak resident memory grew by {} MiB streaming 100 MB bodies",
        growth >> 20
    );
}
