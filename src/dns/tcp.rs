//! DNS over TCP: length-prefixed messages (RFC 1035 §4.2.2, RFC 7766), and the same over TLS
//! (RFC 7858: a TLS handshake first, ALPN `dot`, then the same framing).
//!
//! Accepting, the connection cap and the drain are `ops::accept`'s (one loop for every TCP
//! service; DNS over TLS shares DNS over TCP's cap); this file owns one connection:
//!
//! - a TLS connection's handshake must complete within the idle timeout;
//! - a connection is closed when no query starts within the idle timeout, when a started
//!   query does not complete within the same time (a slow client cannot hold its slot by
//!   trickling bytes), when a write makes no progress for that long (a client that does not
//!   read), on a zero-length message, and when the drain deadline passes;
//! - while the service drains (shutdown, upgrade) a connection goes on answering: it is closed
//!   once the client closes it or sends nothing for [`DRAIN_IDLE`], so that a client in the
//!   middle of a conversation loses no query;
//! - queries pipelined on one connection are answered in order; replies are buffered and flushed
//!   only when no further complete query is already waiting, so a burst costs one write;
//! - an [`Outcome::Transfer`] is streamed by [`xfr::send`] on the same connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tokio::io::{BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::answer::{Outcome, Responder, Transport};
use super::metrics::{DnsMetrics, Event};
use super::xfr;
use crate::ops::accept::Conn;

/// While draining, a connection that sends nothing for this long is closed.
pub(crate) const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// Which stream a connection is: its replies are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Plain TCP.
    Tcp,
    /// TLS (DNS over TLS, RFC 7858).
    Tls,
}

/// What every connection of one listener shares.
#[derive(Clone)]
pub(crate) struct Serving {
    /// Answers the queries.
    pub responder: Arc<Responder>,
    /// Counts the replies.
    pub metrics: Arc<DnsMetrics>,
    /// The idle (and slow-client, and handshake) timeout.
    pub timeout: Duration,
}

/// Serves one TCP connection until it closes, times out or the drain deadline passes. The
/// connection's slot (in `conn`) is released when this returns.
pub(crate) async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    serving: Serving,
    conn: Conn,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "dns tcp: cannot set TCP_NODELAY");
    }
    let (read, write) = stream.split();
    serve(read, write, Stream::Tcp, peer, &serving, &conn).await;
}

/// Serves one DNS-over-TLS connection: the handshake within the idle timeout, then as
/// [`connection`].
pub(crate) async fn tls_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    peer: SocketAddr,
    serving: Serving,
    conn: Conn,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "dns tls: cannot set TCP_NODELAY");
    }
    let handshake = tokio::time::timeout(serving.timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        () = conn.closing.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "dns tls: handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "dns tls: handshake timed out");
                return;
            }
        },
    };
    let (read, write) = tokio::io::split(stream);
    serve(read, write, Stream::Tls, peer, &serving, &conn).await;
}

/// Answers the queries of one connection's two halves, then closes it.
async fn serve<R, W>(
    read: R,
    write: W,
    stream: Stream,
    peer: SocketAddr,
    serving: &Serving,
    conn: &Conn,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let timeout = serving.timeout;
    let mut reader = BufReader::new(read);
    let mut writer = BufWriter::new(StallGuard::new(write, timeout));
    let served = tokio::select! {
        () = conn.closing.cancelled() => return,
        served = serve_queries(&mut reader, &mut writer, (stream, peer), serving, &conn.draining) => served,
    };
    match served {
        Ok(Close::Client) => {
            // A polite close: hand over what is buffered, then FIN. Bounded by the stall guard.
            let _ = tokio::select! {
                () = conn.closing.cancelled() => return,
                done = writer.shutdown() => done,
            };
        }
        Ok(Close::Idle) => tracing::debug!(%peer, ?stream, "dns: idle connection closed"),
        Err(error) => tracing::debug!(%peer, ?stream, %error, "dns: connection closed"),
    }
}

/// Why a connection ended without an I/O error.
#[derive(Debug, PartialEq, Eq)]
enum Close {
    /// End of stream, or a zero-length message.
    Client,
    /// No query started within the idle timeout.
    Idle,
}

/// Reads queries and writes replies in order until the connection should close.
async fn serve_queries<R, W>(
    reader: &mut BufReader<R>,
    writer: &mut BufWriter<W>,
    (stream, peer): (Stream, SocketAddr),
    serving: &Serving,
    draining: &CancellationToken,
) -> io::Result<Close>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (responder, metrics, timeout) = (&serving.responder, &serving.metrics, serving.timeout);
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    loop {
        match read_query(reader, &mut query, timeout, draining).await? {
            Read::Query => {}
            Read::Closed => return Ok(Close::Client),
            Read::Idle => return Ok(Close::Idle),
        }
        let (outcome, cookie) = responder.respond_cookie(&query, peer, Transport::Tcp, &mut out);
        match outcome {
            Outcome::Reply => {
                let len = u16::try_from(out.len()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "reply longer than 65535 bytes")
                })?;
                metrics.stream_reply(stream, &out);
                metrics.stream_cookie(stream, cookie);
                writer.write_all(&len.to_be_bytes()).await?;
                writer.write_all(&out).await?;
            }
            Outcome::Drop => {}
            Outcome::Transfer(mut transfer) => {
                let zone = transfer.zone.origin().clone();
                let serial = transfer.zone.serial();
                let style = transfer.style();
                metrics.stream_transfer(stream, transfer.qtype);
                match xfr::send(writer, &mut transfer).await {
                    Ok(sent) => {
                        metrics.event(if transfer.steps.is_some() {
                            Event::IxfrSent
                        } else {
                            Event::AxfrSent
                        });
                        tracing::info!(
                            %zone, serial, %peer, style, messages = sent.messages, records = sent.records,
                            "zone transfer sent"
                        );
                    }
                    Err(error) => {
                        metrics.event(Event::TransferFailed);
                        tracing::warn!(%zone, serial, %peer, error = %crate::ops::chain(&error), "zone transfer aborted");
                        return Err(io::Error::other(error));
                    }
                }
            }
        }
        if !complete_query_buffered(reader.buffer()) {
            writer.flush().await?;
        }
    }
}

/// What [`read_query`] found.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// `query` holds one whole message.
    Query,
    /// End of stream between messages, or a zero-length message: the client is done.
    Closed,
    /// No message started within the timeout.
    Idle,
}

/// Reads one length-prefixed message into `query`. The first byte must arrive within
/// `timeout` (idle guard), or within [`DRAIN_IDLE`] once `draining`; once it has, the whole
/// message must arrive within `timeout` more (slow-client guard). End of stream inside a
/// message is an error.
async fn read_query<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    query: &mut Vec<u8>,
    timeout: Duration,
    draining: &CancellationToken,
) -> io::Result<Read> {
    let idle = async {
        tokio::select! {
            () = tokio::time::sleep(timeout) => {}
            () = async {
                draining.cancelled().await;
                tokio::time::sleep(DRAIN_IDLE.min(timeout)).await;
            } => {}
        }
    };
    tokio::select! {
        () = idle => return Ok(Read::Idle),
        filled = reader.fill_buf() => match filled {
            Err(error) => return Err(error),
            Ok([]) => return Ok(Read::Closed),
            Ok(_) => {}
        },
    }
    let read = async {
        let len = usize::from(reader.read_u16().await?);
        if len == 0 {
            return Ok(Read::Closed);
        }
        query.clear();
        query.resize(len, 0);
        reader.read_exact(query).await?;
        Ok(Read::Query)
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "query not completed within the idle timeout",
        )
    })?
}

/// Whether `buffered` starts with a whole length-prefixed message.
fn complete_query_buffered(buffered: &[u8]) -> bool {
    match buffered {
        [high, low, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*high, *low])),
        _ => false,
    }
}

/// A writer that fails with `TimedOut` when a write, flush or shutdown makes no progress for
/// `timeout` (a client that stops reading). No timer is armed while writes complete at once.
struct StallGuard<W> {
    inner: W,
    timeout: Duration,
    /// Made on the first stall, then reused.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<W> StallGuard<W> {
    fn new(inner: W, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            armed: false,
        }
    }

    /// Called when the inner writer is pending: arms the deadline if needed and polls it.
    fn poll_stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.armed {
            let when = Instant::now() + self.timeout;
            match &mut self.deadline {
                Some(deadline) => deadline.as_mut().reset(when),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(when))),
            }
            self.armed = true;
        }
        match &mut self.deadline {
            Some(deadline) => deadline.as_mut().poll(cx).map(|()| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading replies",
                ))
            }),
            None => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_stalled(cx),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StallGuard<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(poll, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(poll, cx)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

    use super::*;
    use crate::dns::answer::Settings;
    use crate::dns::catalog::Catalog;
    use crate::dns::xfr::tests::big_zone;
    use crate::ops::accept::Connections;

    /// Generous bound on how long any single step may take before the test calls it a hang.
    const HANG: Duration = Duration::from_secs(10);

    struct Server {
        addr: SocketAddr,
        shutdown: CancellationToken,
        connections: Connections,
        task: JoinHandle<()>,
    }

    async fn start(max_connections: usize, idle_timeout: Duration) -> Server {
        let responder = Responder::new(Catalog::default(), Settings::default());
        start_with(responder, max_connections, idle_timeout).await
    }

    async fn start_with(
        responder: Responder,
        max_connections: usize,
        idle_timeout: Duration,
    ) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let responder = Arc::new(responder);
        let shutdown = CancellationToken::new();
        let connections = Connections::new("dns tcp", max_connections, &shutdown);
        let task = {
            let connections = connections.clone();
            let stop = shutdown.child_token();
            tokio::spawn(async move {
                connections
                    .serve(listener, stop, move |stream, peer, conn| {
                        let serving = Serving {
                            responder: responder.clone(),
                            metrics: Arc::default(),
                            timeout: idle_timeout,
                        };
                        connection(stream, peer, serving, conn)
                    })
                    .await;
            })
        };
        Server {
            addr,
            shutdown,
            connections,
            task,
        }
    }

    /// Reads until end of stream (or reset); fails the test on a hang or on unexpected bytes.
    async fn expect_closed(stream: &mut TcpStream) {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(HANG, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("expected the server to close; got {n} bytes"),
            Err(_) => panic!("the server did not close the connection"),
        }
    }

    fn framed_query(id: u16, qname: &str) -> Vec<u8> {
        framed(id, qname, RecordType::A)
    }

    fn framed(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = id;
        message.add_query(Query::query(Name::from_str(qname).unwrap(), qtype));
        let bytes = message.to_vec().unwrap();
        let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        framed.extend(bytes);
        framed
    }

    async fn read_reply(stream: &mut TcpStream) -> Message {
        let len = tokio::time::timeout(HANG, stream.read_u16())
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap()
    }

    #[tokio::test]
    async fn zero_length_message_closes_the_connection() {
        let server = start(8, HANG).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&[0, 0]).await.unwrap();
        expect_closed(&mut stream).await;
    }

    #[tokio::test]
    async fn idle_connection_is_closed() {
        let server = start(8, Duration::from_millis(200)).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        expect_closed(&mut stream).await;
    }

    #[tokio::test]
    async fn trickling_client_is_closed_before_its_message_completes() {
        let timeout = Duration::from_millis(400);
        let server = start(8, timeout).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // A 100-byte message, one byte per timeout/4: each byte comes well within the idle
        // timeout, the whole message would take ten times it.
        stream.write_all(&[0, 100]).await.unwrap();
        let mut closed = false;
        for _ in 0..100 {
            tokio::time::sleep(timeout / 4).await;
            let mut buf = [0u8; 16];
            match stream.try_read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => panic!("unexpected {n} reply bytes to an incomplete message"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
            if stream.write_all(&[0]).await.is_err() {
                closed = true;
                break;
            }
        }
        assert!(
            closed,
            "a message trickled over 10x the timeout was accepted"
        );
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_a_slot_frees() {
        let server = start(1, HANG).await;
        let first = TcpStream::connect(server.addr).await.unwrap();
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        // If the second connection were served, this would close it at once.
        second.write_all(&[0, 0]).await.unwrap();
        let mut buf = [0u8; 16];
        let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "second connection served beyond the cap: {waited:?}"
        );
        drop(first);
        expect_closed(&mut second).await;
    }

    #[tokio::test]
    async fn shutdown_closes_connections_and_stops_the_listener() {
        let server = start(8, HANG).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // Make sure the connection is being served (not just in the backlog) first.
        stream.write_all(&[0]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.shutdown.cancel();
        let drained = tokio::spawn({
            let connections = server.connections.clone();
            async move { connections.drain(HANG).await }
        });
        expect_closed(&mut stream).await;
        tokio::time::timeout(HANG, drained).await.unwrap().unwrap();
        tokio::time::timeout(HANG, server.task)
            .await
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(server.addr).await.is_err());
    }

    #[tokio::test]
    async fn pipelined_queries_are_all_answered_in_order() {
        let server = start(8, HANG).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let mut burst = Vec::new();
        for id in 1..=10u16 {
            burst.extend(framed_query(id, "not-served.example."));
        }
        // Split the burst at odd places so that framing must reassemble messages.
        for chunk in burst.chunks(7) {
            stream.write_all(chunk).await.unwrap();
        }
        for id in 1..=10u16 {
            let reply = read_reply(&mut stream).await;
            assert_eq!(reply.metadata.id, id);
            assert_eq!(reply.metadata.message_type, MessageType::Response);
            assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        }
    }

    #[tokio::test]
    async fn axfr_streams_the_whole_zone_then_the_connection_goes_on() {
        let zone = big_zone(20_000);
        let expected = zone.len() + 1;
        let allow = vec!["127.0.0.0/8".parse().unwrap()];
        let settings = Settings {
            transfer_allow: allow,
            ..Settings::default()
        };
        let responder = Responder::new(Catalog::new(vec![zone]), settings);
        let server = start_with(responder, 8, HANG).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let mut queries = framed(77, "big.example.", RecordType::AXFR);
        // Pipelined behind the transfer: answered once the transfer is complete.
        queries.extend(framed(78, "www.big.example.", RecordType::A));
        stream.write_all(&queries).await.unwrap();

        let mut records = Vec::new();
        let mut messages = 0;
        while records.len() < expected {
            let reply = read_reply(&mut stream).await;
            assert_eq!(reply.metadata.id, 77);
            assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
            messages += 1;
            records.extend(reply.answers);
        }
        assert!(messages > 1);
        assert_eq!(records.len(), expected);
        assert_eq!(
            records.first().map(|r| r.record_type()),
            Some(RecordType::SOA)
        );
        assert_eq!(records.first(), records.last());

        let reply = read_reply(&mut stream).await;
        assert_eq!(reply.metadata.id, 78);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert_eq!(
            reply.answers.first().map(|r| r.record_type()),
            Some(RecordType::CNAME)
        );
    }

    #[tokio::test]
    async fn stall_guard_fails_a_write_the_reader_never_takes() {
        let (mut reader, writer) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, Duration::from_millis(200));
        let written = tokio::time::timeout(HANG, guarded.write_all(&[0u8; 1024])).await;
        let error = written.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        // What was written before the stall is intact.
        let mut buf = [1u8; 64];
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [0u8; 64]);
    }

    #[tokio::test]
    async fn stall_guard_allows_a_slow_reader_that_keeps_reading() {
        let (mut reader, writer) = tokio::io::duplex(16);
        let timeout = Duration::from_millis(500);
        let mut guarded = StallGuard::new(writer, timeout);
        let drain = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 16];
            while total < 320 {
                tokio::time::sleep(timeout / 5).await;
                total += reader.read(&mut buf).await.unwrap();
            }
        });
        // 20 reads, each a fifth of the timeout apart: the transfer outlasts the timeout.
        guarded.write_all(&[0u8; 320]).await.unwrap();
        drain.await.unwrap();
    }

    #[test]
    fn complete_query_detection() {
        assert!(!complete_query_buffered(&[]));
        assert!(!complete_query_buffered(&[0]));
        assert!(complete_query_buffered(&[0, 0]));
        assert!(!complete_query_buffered(&[0, 3, 1, 2]));
        assert!(complete_query_buffered(&[0, 3, 1, 2, 3]));
        assert!(complete_query_buffered(&[0, 3, 1, 2, 3, 0]));
    }
}
