//! The UDP fast path: one OS thread per socket, batched `recvmmsg`/`sendmmsg`.
//!
//! Why not tokio here: the measurements in the README (Design choices) show that a task and a
//! channel per request cost more than answering does; a blocking loop over batches of up to
//! [`BATCH`] datagrams is what brings a hickory-based server to NSD's CPU cost per query.
//!
//! The loop, per batch:
//! 1. `recvmmsg` with `MSG_WAITFORONE`: block (at most [`READ_TIMEOUT`], so that shutdown is
//!    noticed) until one datagram arrives, then take whatever else is already queued;
//! 2. hand each datagram to [`Responder::respond_cookie`] with its own preallocated reply buffer, and
//!    the reply to the worker's own rate limiter (`rrl`: sent, sent truncated — or BADCOOKIE
//!    with a fresh server cookie to a client that sent a cookie —, or dropped), unless the
//!    query carried a valid server cookie (`cookie`), which proves its source address;
//! 3. `sendmmsg` every reply back to the address it came from, the kernel's `sockaddr` reused as
//!    received.
//!
//! Each reply sent is counted in the thread's own [`Tally`] (no counter is shared between
//! threads; a scrape sums them). All buffers are allocated once per thread and reused; the loop itself allocates nothing per
//! packet (what `respond` does is its own business). A datagram larger than [`RECV_BUF_SIZE`] is
//! cut by the kernel (`MSG_TRUNC`); such a query is dropped unanswered rather than answered
//! from a fragment (no DNS query this server answers comes near that size). Errors from the
//! socket never end the loop: transient ones are retried, others logged at most once per
//! [`LOG_INTERVAL`]. A panic while answering one datagram drops that datagram only.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::answer::{Outcome, Responder, Transport};
use super::cookie::Status as CookieStatus;
use super::metrics::Tally;
use super::rrl::{self, Limiter, Verdict};

/// Datagrams received (and replies sent) per system call, at most.
const BATCH: usize = 64;
/// Bytes per receive buffer; longer datagrams are dropped.
const RECV_BUF_SIZE: usize = 4096;
/// Capacity reserved for each reply buffer (the largest UDP reply `respond` builds for EDNS).
const REPLY_CAPACITY: usize = 4096;
/// How long one `recvmmsg` blocks, so that the thread notices shutdown.
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// Socket buffer sizes asked for (the kernel caps them at `net.core.{r,w}mem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// Unexpected errors are logged at most once per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Pause after an unexpected socket error, so that a broken socket cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Serves `socket` on a thread of its own (named after its address and `worker`, its index
/// among the sockets of that address) until `shutdown` is cancelled, counting in `tally`.
/// Fails only when the system cannot start another thread.
pub(crate) fn spawn(
    socket: UdpSocket,
    worker: usize,
    responder: Arc<Responder>,
    mut tally: Tally,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let addr = socket.local_addr().ok();
    let name = match addr {
        Some(addr) => format!("dns-udp {addr} #{worker}"),
        None => format!("dns-udp #{worker}"),
    };
    std::thread::Builder::new().name(name).spawn(move || {
        let served = serve(&socket, &responder, &mut tally, &shutdown);
        tracing::info!(
            addr = addr.map(|a| a.to_string()),
            worker,
            received = served.received,
            answered = served.answered,
            "dns udp worker stopped"
        );
    })
}

/// What one socket's loop did, for the log line when it stops.
#[derive(Debug, Default, Clone, Copy)]
struct Served {
    /// Datagrams received.
    received: u64,
    /// Replies sent (or handed to the kernel).
    answered: u64,
}

/// Answers with `responder` until `shutdown`.
fn serve(
    socket: &UdpSocket,
    responder: &Responder,
    tally: &mut Tally,
    shutdown: &CancellationToken,
) -> Served {
    let mut panics = RateLimited::default();
    let mut limiter = Limiter::default();
    run(socket, shutdown, |packet, peer, out| {
        let (mut send, cookie) = answer_one(responder, packet, peer, out, &mut panics);
        // A valid server cookie proves the source address: never limited (as BIND does).
        if send && cookie != CookieStatus::Valid {
            match limiter.check(&responder.settings().rate_limit, peer.ip()) {
                Verdict::Send => {}
                // A client that sent a cookie is told BADCOOKIE with a fresh server cookie
                // rather than to retry over TCP: with it, its next query is not limited.
                Verdict::Slip => {
                    if !responder.bad_cookie(packet, peer, out) {
                        rrl::truncate(out);
                    }
                }
                Verdict::Drop => send = false,
            }
        }
        if send {
            tally.reply(out);
            tally.cookie(cookie);
        }
        send
    })
}

/// The receive–answer–send loop: `answer(packet, peer, out)` fills `out` and returns whether
/// to send it.
fn run(
    socket: &UdpSocket,
    shutdown: &CancellationToken,
    mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
) -> Served {
    configure(socket);
    let fd = socket.as_raw_fd();
    let mut batch = sys::Batch::new();
    let mut errors = RateLimited::default();
    let mut served = Served::default();
    while !shutdown.is_cancelled() {
        let received = match batch.recv(fd) {
            Ok(n) => n,
            Err(error) if is_transient(&error) => continue,
            Err(error) => {
                errors.log(|suppressed| {
                    tracing::warn!(%error, suppressed, "dns udp: receive failed");
                });
                std::thread::sleep(ERROR_PAUSE);
                continue;
            }
        };
        served.received += received as u64;
        batch.answer(received, |packet, peer, out| {
            let send = answer(packet, peer, out);
            served.answered += u64::from(send);
            send
        });
        if let Err(error) = batch.send(fd) {
            errors.log(|suppressed| {
                tracing::warn!(%error, suppressed, "dns udp: send failed");
            });
        }
    }
    served
}

/// Answers one datagram into `out`: whether `out` is to be sent, and what the query's COOKIE
/// option was.
fn answer_one(
    responder: &Responder,
    packet: &[u8],
    peer: SocketAddr,
    out: &mut Vec<u8>,
    errors: &mut RateLimited,
) -> (bool, CookieStatus) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        responder.respond_cookie(packet, peer, Transport::Udp, out)
    }));
    match outcome {
        Ok((Outcome::Reply, cookie)) => (true, cookie),
        Ok((Outcome::Drop, _)) => (false, CookieStatus::None),
        Ok((Outcome::Transfer(_), _)) => {
            // `respond` refuses transfers over UDP itself; never stream one over datagrams.
            tracing::debug!(%peer, "dns udp: transfer outcome for a datagram dropped");
            (false, CookieStatus::None)
        }
        Err(_) => {
            errors.log(|suppressed| {
                tracing::error!(%peer, len = packet.len(), suppressed, "dns udp: answering a datagram panicked; dropped it");
            });
            (false, CookieStatus::None)
        }
    }
}

/// Blocking with a read timeout, larger socket buffers. Failures only cost throughput.
fn configure(socket: &UdpSocket) {
    if let Err(error) = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(READ_TIMEOUT)))
    {
        tracing::warn!(%error, "dns udp: cannot set the read timeout; shutdown may hang");
    }
    let sock = socket2::SockRef::from(socket);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    tracing::debug!(
        recv_buffer = sock.recv_buffer_size().ok(),
        send_buffer = sock.send_buffer_size().ok(),
        "dns udp socket buffers"
    );
}

/// Errors that are part of normal life on a busy UDP socket: the read timeout, signals,
/// ICMP errors reported for earlier sends, momentary memory pressure.
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::WouldBlock
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}

/// Logs at most once per [`LOG_INTERVAL`], counting what it kept quiet.
#[derive(Default)]
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn log(&mut self, emit: impl FnOnce(u64)) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        emit(self.suppressed);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// The `recvmmsg`/`sendmmsg` wrapper: every `unsafe` of the UDP path lives here.
mod sys {
    use std::io;
    use std::mem;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::RawFd;
    use std::ptr;

    use super::{BATCH, RECV_BUF_SIZE, REPLY_CAPACITY};

    /// Preallocated buffers and message headers for one batch; reused for every batch.
    ///
    /// The headers hold raw pointers into the boxed slices below. Boxed slices never move or
    /// grow, so the pointers stay valid for as long as the `Batch` lives, wherever the `Batch`
    /// itself is moved. The raw pointers also make `Batch` neither `Send` nor `Sync`: it stays
    /// on the thread that made it.
    pub(super) struct Batch {
        /// `BATCH` receive buffers of `RECV_BUF_SIZE` bytes, back to back.
        bufs: Box<[u8]>,
        /// The peer of each received datagram, as the kernel wrote it.
        addrs: Box<[libc::sockaddr_storage]>,
        /// Never read here: kept alive because `recv_hdrs` point into it.
        _recv_iov: Box<[libc::iovec]>,
        recv_hdrs: Box<[libc::mmsghdr]>,
        send_iov: Box<[libc::iovec]>,
        send_hdrs: Box<[libc::mmsghdr]>,
        /// One reply buffer per slot.
        replies: Box<[Vec<u8>]>,
        /// Whether slot `i` has a reply to send, after [`Batch::answer`].
        pending: [bool; BATCH],
        /// Datagrams in the current batch.
        received: usize,
    }

    impl Batch {
        pub(super) fn new() -> Self {
            let mut bufs = vec![0u8; BATCH * RECV_BUF_SIZE].into_boxed_slice();
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all
            // zero bytes are a valid value (null pointers, zero lengths).
            let zeroed_addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
            // SAFETY: as above.
            let zeroed_iov: libc::iovec = unsafe { mem::zeroed() };
            // SAFETY: as above.
            let zeroed_hdr: libc::mmsghdr = unsafe { mem::zeroed() };
            let mut addrs = vec![zeroed_addr; BATCH].into_boxed_slice();
            let mut recv_iov = vec![zeroed_iov; BATCH].into_boxed_slice();
            let mut recv_hdrs = vec![zeroed_hdr; BATCH].into_boxed_slice();
            for (i, chunk) in bufs.chunks_exact_mut(RECV_BUF_SIZE).enumerate() {
                recv_iov[i].iov_base = chunk.as_mut_ptr().cast();
                recv_iov[i].iov_len = RECV_BUF_SIZE;
                let hdr = &mut recv_hdrs[i].msg_hdr;
                hdr.msg_name = ptr::from_mut(&mut addrs[i]).cast();
                hdr.msg_iov = ptr::from_mut(&mut recv_iov[i]);
                hdr.msg_iovlen = 1;
            }
            Self {
                bufs,
                addrs,
                _recv_iov: recv_iov,
                recv_hdrs,
                send_iov: vec![zeroed_iov; BATCH].into_boxed_slice(),
                send_hdrs: vec![zeroed_hdr; BATCH].into_boxed_slice(),
                replies: (0..BATCH)
                    .map(|_| Vec::with_capacity(REPLY_CAPACITY))
                    .collect(),
                pending: [false; BATCH],
                received: 0,
            }
        }

        /// Waits for at least one datagram, then takes what else is queued (up to `BATCH`).
        pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
            self.received = 0;
            for hdr in self.recv_hdrs.iter_mut() {
                // The kernel overwrites these on every call; give back the full sizes.
                hdr.msg_hdr.msg_namelen = sockaddr_storage_len();
                hdr.msg_hdr.msg_flags = 0;
                hdr.msg_len = 0;
            }
            // SAFETY: `recv_hdrs` holds BATCH valid headers whose name and iovec pointers point
            // into `addrs`, `recv_iov` and `bufs`, owned by `self` and sized as the headers say
            // (see `new`); `&mut self` guarantees nothing else touches them during the call. A
            // null timeout is allowed (the socket's SO_RCVTIMEO bounds the wait instead).
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.recv_hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            // `n` is at most BATCH (the kernel fills no more headers than it was given).
            self.received = usize::try_from(n).unwrap_or(0).min(BATCH);
            Ok(self.received)
        }

        /// Calls `answer(packet, peer, reply)` for each datagram of the batch that is whole and
        /// from an IPv4 or IPv6 peer; `answer` returns whether `reply` is to be sent.
        pub(super) fn answer(
            &mut self,
            received: usize,
            mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
        ) {
            let received = received.min(self.received);
            for i in 0..received {
                self.pending[i] = false;
                let hdr = &self.recv_hdrs[i];
                if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    continue;
                }
                let Some(peer) = to_socket_addr(&self.addrs[i], hdr.msg_hdr.msg_namelen) else {
                    continue;
                };
                let len = (hdr.msg_len as usize).min(RECV_BUF_SIZE);
                let start = i * RECV_BUF_SIZE;
                let packet = &self.bufs[start..start + len];
                self.pending[i] = answer(packet, peer, &mut self.replies[i]);
            }
        }

        /// Sends every pending reply to the peer it answers. Replies the kernel rejects one by
        /// one (e.g. an unreachable peer) are dropped; the first such error is returned after
        /// the rest were sent.
        pub(super) fn send(&mut self, fd: RawFd) -> io::Result<()> {
            let mut count = 0;
            for i in 0..self.received {
                if !self.pending[i] {
                    continue;
                }
                let reply = &self.replies[i];
                self.send_iov[count].iov_base = reply.as_ptr().cast_mut().cast();
                self.send_iov[count].iov_len = reply.len();
                let hdr = &mut self.send_hdrs[count].msg_hdr;
                hdr.msg_name = ptr::from_mut(&mut self.addrs[i]).cast();
                hdr.msg_namelen = self.recv_hdrs[i].msg_hdr.msg_namelen;
                hdr.msg_iov = ptr::from_mut(&mut self.send_iov[count]);
                hdr.msg_iovlen = 1;
                count += 1;
            }
            self.received = 0;
            let mut sent = 0;
            let mut first_error = None;
            let mut retries = 0;
            while sent < count {
                // SAFETY: headers `sent..count` were filled above with pointers into `addrs`,
                // `send_iov` and `replies`, all owned by `self` and unchanged since (`&mut
                // self`); the lengths are those of the buffers they point to.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.send_hdrs[sent..count].as_mut_ptr(),
                        (count - sent) as libc::c_uint,
                        0,
                    )
                };
                if n > 0 {
                    sent += usize::try_from(n).unwrap_or(1);
                    continue;
                }
                let error = io::Error::last_os_error();
                if matches!(
                    error.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) && retries < 3
                {
                    retries += 1;
                    continue;
                }
                // This reply cannot be sent; skip it and send the others.
                sent += 1;
                if first_error.is_none() && !super::is_transient(&error) {
                    first_error = Some(error);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
    }

    fn sockaddr_storage_len() -> libc::socklen_t {
        // 128 bytes: always fits.
        mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t
    }

    /// The address the kernel wrote into `storage`, if it is IPv4 or IPv6.
    fn to_socket_addr(
        storage: &libc::sockaddr_storage,
        len: libc::socklen_t,
    ) -> Option<SocketAddr> {
        let len = len as usize;
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the kernel wrote a sockaddr_in; sockaddr_storage is
                // larger than it and at least as aligned, so the cast reference is valid.
                let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6; sockaddr_storage is
                // larger than it and at least as aligned, so the cast reference is valid.
                let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    /// Runs the loop on `addr` with an answer function that echoes each datagram back with
    /// its first byte replaced by the batch-independent marker 0xEE, and drops datagrams that
    /// start with 0xFF.
    fn start_echo(addr: &str) -> (SocketAddr, CancellationToken, JoinHandle<()>) {
        let socket = UdpSocket::bind(addr).unwrap();
        let local = socket.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || {
            run(&socket, &stop, |packet, _peer, out| {
                out.clear();
                if packet.first() == Some(&0xFF) {
                    return false;
                }
                out.extend_from_slice(packet);
                if let Some(first) = out.first_mut() {
                    *first = 0xEE;
                }
                true
            });
        });
        (local, shutdown, thread)
    }

    fn client(bind: &str) -> UdpSocket {
        let client = UdpSocket::bind(bind).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
    }

    #[test]
    fn every_datagram_of_a_burst_is_answered_to_its_sender() {
        let (server, shutdown, thread) = start_echo("127.0.0.1:0");
        let clients: Vec<UdpSocket> = (0..3).map(|_| client("127.0.0.1:0")).collect();
        // Bursts of more than one batch, from several peers, queued before the loop reads
        // them (small enough for the default socket buffer: UDP may drop beyond it).
        let per_client = 40u16;
        for round in 0..3u8 {
            for i in 0..per_client {
                for (c, socket) in clients.iter().enumerate() {
                    let mut datagram = vec![round, u8::try_from(c).unwrap()];
                    datagram.extend_from_slice(&i.to_be_bytes());
                    socket.send_to(&datagram, server).unwrap();
                }
            }
            for (c, socket) in clients.iter().enumerate() {
                let mut seen = vec![false; usize::from(per_client)];
                let mut buf = [0u8; 64];
                for _ in 0..per_client {
                    let (len, from) = socket.recv_from(&mut buf).unwrap();
                    assert_eq!(from, server);
                    assert_eq!(len, 4);
                    assert_eq!(buf[0], 0xEE);
                    assert_eq!(usize::from(buf[1]), c, "reply went to the wrong peer");
                    seen[usize::from(u16::from_be_bytes([buf[2], buf[3]]))] = true;
                }
                assert!(seen.iter().all(|&s| s));
            }
        }
        shutdown.cancel();
        thread.join().unwrap();
    }

    #[test]
    fn ipv6_peers_are_answered() {
        let Ok(probe) = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)) else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        drop(probe);
        let (server, shutdown, thread) = start_echo("[::1]:0");
        let socket = client("[::1]:0");
        socket.send_to(&[1, 2, 3], server).unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!((from, &buf[..len]), (server, &[0xEE, 2, 3][..]));
        shutdown.cancel();
        thread.join().unwrap();
    }

    #[test]
    fn oversized_and_dropped_datagrams_get_no_reply_and_do_not_stop_the_loop() {
        let (server, shutdown, thread) = start_echo("127.0.0.1:0");
        let socket = client("127.0.0.1:0");
        // Larger than a receive buffer: cut by the kernel, so not answered.
        socket
            .send_to(&vec![7u8; RECV_BUF_SIZE + 100], server)
            .unwrap();
        // The answer function declines this one.
        socket.send_to(&[0xFF, 1], server).unwrap();
        // Empty datagram: answered (echo of nothing) — the loop copes with zero length.
        socket.send_to(&[], server).unwrap();
        socket.send_to(&[0, 9], server).unwrap();
        let mut buf = [0u8; 64];
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(len, 0);
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &[0xEE, 9]);
        shutdown.cancel();
        thread.join().unwrap();
    }

    #[test]
    fn the_loop_ends_soon_after_shutdown_without_traffic() {
        let (_, shutdown, thread) = start_echo("127.0.0.1:0");
        shutdown.cancel();
        thread.join().unwrap();
    }

    #[test]
    fn spawn_answers_with_the_responder_and_survives_garbage() {
        use std::str::FromStr;

        use hickory_proto::op::{Message, Query, ResponseCode};
        use hickory_proto::rr::{Name, RecordType};

        use crate::dns::answer::Settings;
        use crate::dns::catalog::Catalog;
        use crate::dns::xfr::tests::big_zone;

        let catalog = Catalog::new(vec![big_zone(10)]);
        let responder = Arc::new(Responder::new(catalog, Settings::default()));
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = socket.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let metrics = crate::dns::metrics::DnsMetrics::default();
        let thread = spawn(socket, 0, responder, metrics.udp_worker(), shutdown.clone()).unwrap();

        let client = client("127.0.0.1:0");
        // Garbage of every short length, random-ish bytes, and a response (QR set).
        for len in 0..40u8 {
            let junk: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ len).collect();
            client.send_to(&junk, server).unwrap();
        }
        let mut response = Message::query();
        response.metadata.message_type = hickory_proto::op::MessageType::Response;
        client.send_to(&response.to_vec().unwrap(), server).unwrap();
        // Then a real query: it must still be answered.
        let mut query = Message::query();
        query.metadata.id = 4242;
        query.add_query(Query::query(
            Name::from_str("host3.big.example.").unwrap(),
            RecordType::A,
        ));
        client.send_to(&query.to_vec().unwrap(), server).unwrap();
        let mut buf = [0u8; 4096];
        let reply = loop {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            let reply = Message::from_vec(&buf[..len]).unwrap();
            // Replies to the garbage (FORMERR) may come first; skip them.
            if reply.metadata.id == 4242 && reply.metadata.response_code != ResponseCode::FormErr {
                break reply;
            }
        };
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1);
        shutdown.cancel();
        thread.join().unwrap();
    }
}
