//! NOTIFY to secondaries (RFC 1996): "this zone changed, come and transfer it".
//!
//! For each target a task sends `NOTIFY <zone> SOA IN` (opcode NOTIFY, AA set, question only;
//! the optional SOA in the answer section is left out) over UDP from an ephemeral socket and
//! waits for the response with the same ID (QR set, opcode NOTIFY). Without one it retries on
//! a doubling schedule (1 s, 2 s, 4 s, 8 s, 16 s: five attempts), then gives up with a warning.
//! A response with an error RCODE is final: the secondary heard us and declined.
//!
//! With `dns.transfer.tsig` set, each NOTIFY is signed with that key (RFC 8945) and only a
//! response signed with it counts; one that does not verify is ignored, as a forgery would be.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::metrics::{DnsMetrics, Event};
use super::tsig::{self, Key, Verifier, VerifyError};

/// How often and how patiently NOTIFY is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// Sends, at most.
    pub attempts: u32,
    /// The wait for a response after the first send; doubled after each unanswered one.
    pub first_wait: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_wait: Duration::from_secs(1),
        }
    }
}

/// Why a NOTIFY was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    /// The message could not be built or the socket could not be made.
    #[error("cannot send NOTIFY: {0}")]
    Setup(String),
    /// Every attempt went unanswered.
    #[error("no response after {attempts} attempts")]
    NoResponse {
        /// Sends made.
        attempts: u32,
    },
    /// The secondary answered with an error.
    #[error("the secondary answered {0}")]
    Rejected(ResponseCode),
    /// The secondary refused our signature.
    #[error("the secondary refused the signature: {0}")]
    Signature(VerifyError),
}

/// Tells each of `targets` that `zone` now has `serial`, retrying until each acknowledges;
/// signed with `key` if given. Must be called within a tokio runtime; returns at once.
/// Each outcome is counted in `metrics`.
pub(crate) fn spawn(
    zone: Name,
    serial: u32,
    targets: Vec<SocketAddr>,
    key: Option<Arc<Key>>,
    metrics: &Arc<DnsMetrics>,
) {
    for target in targets {
        let zone = zone.clone();
        let key = key.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            match notify(&zone, target, Schedule::default(), key).await {
                Ok(attempts) => {
                    metrics.event(Event::NotifySent);
                    tracing::info!(%zone, serial, %target, attempts, "NOTIFY acknowledged");
                }
                Err(error) => {
                    metrics.event(Event::NotifyFailed);
                    tracing::warn!(%zone, serial, %target, %error, "NOTIFY failed; giving up");
                }
            }
        });
    }
}

/// Sends NOTIFY for `zone` to `target` until it is acknowledged; returns the sends it took.
pub(crate) async fn notify(
    zone: &Name,
    target: SocketAddr,
    schedule: Schedule,
    key: Option<Arc<Key>>,
) -> Result<u32, NotifyError> {
    let (id, mut packet) = build(zone)?;
    let signed = key.map(|key| {
        let mac = tsig::sign_request(&key, &mut packet, tsig::now());
        (key, mac)
    });
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| NotifyError::Setup(format!("bind {local}: {e}")))?;
    // Connected: the kernel drops datagrams from anyone but the target.
    socket
        .connect(target)
        .await
        .map_err(|e| NotifyError::Setup(format!("connect {target}: {e}")))?;

    let mut wait = schedule.first_wait;
    let mut buf = vec![0u8; 4096];
    for attempt in 1..=schedule.attempts.max(1) {
        let deadline = Instant::now() + wait;
        match socket.send(&packet).await {
            Ok(_) => match await_response(&socket, &mut buf, id, deadline, signed.as_ref()).await {
                Some(Ok(ResponseCode::NoError)) => return Ok(attempt),
                Some(Ok(rcode)) => return Err(NotifyError::Rejected(rcode)),
                Some(Err(error)) => return Err(NotifyError::Signature(error)),
                None => {}
            },
            Err(error) => {
                tracing::debug!(%zone, %target, %error, attempt, "NOTIFY send failed");
            }
        }
        tokio::time::sleep_until(deadline).await;
        wait = wait.saturating_mul(2);
    }
    Err(NotifyError::NoResponse {
        attempts: schedule.attempts.max(1),
    })
}

/// The NOTIFY message for `zone`, with a random ID.
fn build(zone: &Name) -> Result<(u16, Vec<u8>), NotifyError> {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Notify;
    message.metadata.authoritative = true;
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(zone.clone(), RecordType::SOA));
    let packet = message
        .to_vec()
        .map_err(|e| NotifyError::Setup(format!("encode: {e}")))?;
    Ok((message.metadata.id, packet))
}

/// Waits until `deadline` for the response to NOTIFY `id`; its RCODE, or `None` if none came.
/// Datagrams that are not that response are ignored; so are ICMP errors (the secondary may
/// not be up yet: the next attempt may reach it). When the NOTIFY was `signed`, the response
/// must verify; a TSIG error the secondary reports is final, any other failure is ignored.
async fn await_response(
    socket: &UdpSocket,
    buf: &mut [u8],
    id: u16,
    deadline: Instant,
    signed: Option<&(Arc<Key>, Vec<u8>)>,
) -> Option<Result<ResponseCode, VerifyError>> {
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(buf)).await;
        let len = match received {
            Err(_) => return None,
            Ok(Ok(len)) => len,
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
                // Nothing listens (yet); the answer will not come on this attempt.
                return None;
            }
            Ok(Err(_)) => continue,
        };
        let Ok(message) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        let metadata = message.metadata;
        if metadata.id != id
            || metadata.message_type != MessageType::Response
            || metadata.op_code != OpCode::Notify
        {
            continue;
        }
        let Some((key, mac)) = signed else {
            return Some(Ok(metadata.response_code));
        };
        match Verifier::new(key.clone(), mac.clone()).verify(&buf[..len], tsig::now()) {
            Ok(()) => return Some(Ok(metadata.response_code)),
            Err(error @ VerifyError::Remote(_)) => return Some(Err(error)),
            Err(error) => {
                tracing::warn!(%error, "a NOTIFY response that does not verify; ignored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::Message;
    use hickory_proto::rr::DNSClass;
    use tokio::task::JoinHandle;

    use super::*;

    fn fast() -> Schedule {
        Schedule {
            attempts: 3,
            first_wait: Duration::from_millis(100),
        }
    }

    /// A secondary's socket on loopback, and a task sending it NOTIFY for `foobar.com.` on
    /// `schedule`.
    async fn notify_secondary(
        schedule: Schedule,
    ) -> (UdpSocket, Name, JoinHandle<Result<u32, NotifyError>>) {
        let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = secondary.local_addr().unwrap();
        let zone = Name::from_str("foobar.com.").unwrap();
        let sender = tokio::spawn({
            let zone = zone.clone();
            async move { notify(&zone, target, schedule, None).await }
        });
        (secondary, zone, sender)
    }

    /// Receives one datagram on `socket`; checks it is our NOTIFY for `zone`.
    async fn receive_notify(socket: &UdpSocket, zone: &Name) -> (Message, SocketAddr) {
        let mut buf = vec![0u8; 4096];
        let (len, from) = socket.recv_from(&mut buf).await.unwrap();
        let message = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(message.metadata.op_code, OpCode::Notify);
        assert_eq!(message.metadata.message_type, MessageType::Query);
        assert!(message.metadata.authoritative);
        assert_eq!(message.queries.len(), 1);
        let query = &message.queries[0];
        assert_eq!(query.name(), zone);
        assert_eq!(query.query_type(), RecordType::SOA);
        assert_eq!(query.query_class(), DNSClass::IN);
        (message, from)
    }

    fn response(to: &Message, id: u16, op_code: OpCode, rcode: ResponseCode) -> Vec<u8> {
        let mut reply = Message::error_msg(id, op_code, rcode);
        reply.metadata.authoritative = true;
        reply.add_query(to.queries[0].clone());
        reply.to_vec().unwrap()
    }

    #[tokio::test]
    async fn acknowledged_on_first_attempt() {
        let (secondary, zone, sender) = notify_secondary(fast()).await;
        let (query, from) = receive_notify(&secondary, &zone).await;
        let reply = response(
            &query,
            query.metadata.id,
            OpCode::Notify,
            ResponseCode::NoError,
        );
        secondary.send_to(&reply, from).await.unwrap();
        assert_eq!(sender.await.unwrap().unwrap(), 1);
    }

    #[tokio::test]
    async fn retries_and_ignores_responses_that_do_not_match() {
        let schedule = Schedule {
            attempts: 5,
            first_wait: Duration::from_millis(200),
        };
        let (secondary, zone, sender) = notify_secondary(schedule).await;
        // First attempt: answered with the wrong ID and with the wrong opcode; both ignored.
        let (first, from) = receive_notify(&secondary, &zone).await;
        let id = first.metadata.id;
        let wrong_id = response(
            &first,
            id.wrapping_add(1),
            OpCode::Notify,
            ResponseCode::NoError,
        );
        secondary.send_to(&wrong_id, from).await.unwrap();
        let wrong_op = response(&first, id, OpCode::Query, ResponseCode::NoError);
        secondary.send_to(&wrong_op, from).await.unwrap();
        // Second attempt: the same query again; now acknowledged.
        let (second, from) = receive_notify(&secondary, &zone).await;
        assert_eq!(second.metadata.id, id);
        let reply = response(&second, id, OpCode::Notify, ResponseCode::NoError);
        secondary.send_to(&reply, from).await.unwrap();
        assert_eq!(sender.await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn an_error_response_is_final() {
        let (secondary, zone, sender) = notify_secondary(fast()).await;
        let (query, from) = receive_notify(&secondary, &zone).await;
        let reply = response(
            &query,
            query.metadata.id,
            OpCode::Notify,
            ResponseCode::NotAuth,
        );
        secondary.send_to(&reply, from).await.unwrap();
        let result = sender.await.unwrap();
        assert!(matches!(
            result,
            Err(NotifyError::Rejected(ResponseCode::NotAuth))
        ));
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt() {
        let (secondary, zone, sender) = notify_secondary(fast()).await;
        for _ in 0..3 {
            receive_notify(&secondary, &zone).await;
        }
        let result = sender.await.unwrap();
        assert!(matches!(
            result,
            Err(NotifyError::NoResponse { attempts: 3 })
        ));
    }
}
