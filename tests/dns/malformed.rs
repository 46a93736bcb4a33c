//! Bad input: FORMERR for malformed queries, NOTIMP for unknown opcodes, silence for responses
//! and runts, each checked against NSD; then a bounded fuzz loop of random and mutated packets
//! over UDP and TCP after which the server must still be alive and answering.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::{EXAMPLE_ZONE, ZONES, pair};
use crate::harness::nsd::Nsd;
use crate::harness::wire::{self, EdnsQuery, Header, Query, Reply, rcode};
use crate::harness::{Onebox, Rng, uninterrupted};

/// A valid query for www.example.com/A with the ID `id`, as bytes to mangle.
fn base(id: u16) -> Vec<u8> {
    let mut query = Query::new("www.example.com.", RecordType::A);
    query.id = id;
    query.to_bytes()
}

fn set_u16(packet: &mut [u8], at: usize, value: u16) {
    packet[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// (what, packet, expected rcode or None for no reply). Every ID differs.
///
/// Over TCP a server may also close the connection instead of answering a query it cannot
/// parse (NSD does for a bare header).
fn cases() -> Vec<(&'static str, Vec<u8>, Option<u16>)> {
    let mut cases = Vec::new();

    let mut two = base(0x1001);
    set_u16(&mut two, 4, 2);
    two.extend_from_slice(&Query::new("mail.example.com.", RecordType::A).question());
    cases.push(("QDCOUNT 2", two, Some(rcode::FORMERR)));

    let mut cut_name = base(0x1002);
    cut_name.truncate(12 + 6);
    cases.push((
        "question cut inside the name",
        cut_name,
        Some(rcode::FORMERR),
    ));

    let mut cut_type = base(0x1003);
    let len = cut_type.len();
    cut_type.truncate(len - 3);
    cases.push((
        "question without its type and class",
        cut_type,
        Some(rcode::FORMERR),
    ));

    let header_only = base(0x1004)[..12].to_vec();
    cases.push(("header only, QDCOUNT 1", header_only, Some(rcode::FORMERR)));

    let mut long_label = base(0x1005)[..12].to_vec();
    long_label.push(64);
    long_label.extend_from_slice(&[b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(("label of 64 bytes", long_label, Some(rcode::FORMERR)));

    let mut pointer_loop = base(0x1006)[..12].to_vec();
    pointer_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    cases.push((
        "question name pointing at itself",
        pointer_loop,
        Some(rcode::FORMERR),
    ));

    let mut two_opts = Query::new("www.example.com.", RecordType::A).edns();
    two_opts.id = 0x1007;
    let edns = EdnsQuery {
        payload: 1232,
        version: 0,
        dnssec_ok: false,
        options: Vec::new(),
    };
    let mut two_opts = two_opts.to_bytes();
    set_u16(&mut two_opts, 10, 2);
    two_opts.extend_from_slice(&wire::opt_record(&edns));
    cases.push(("two OPT records", two_opts, Some(rcode::FORMERR)));

    let mut answer_count = base(0x1008);
    set_u16(&mut answer_count, 6, 1);
    cases.push((
        "ANCOUNT 1 without the record",
        answer_count,
        Some(rcode::FORMERR),
    ));

    for opcode in [2u8, 3, 7, 15] {
        let mut query = Query::new("www.example.com.", RecordType::A);
        query.id = 0x1100 + u16::from(opcode);
        query.opcode = opcode;
        cases.push(("unknown opcode", query.to_bytes(), Some(rcode::NOTIMP)));
    }

    let mut response = Query::new("www.example.com.", RecordType::A);
    response.id = 0x1200;
    response.qr = true;
    cases.push(("QR set (a response)", response.to_bytes(), None));

    cases.push(("5-byte runt", base(0x1201)[..5].to_vec(), None));
    cases
}

#[test]
fn malformed_queries_get_formerr_unknown_opcodes_notimp_responses_nothing() {
    let (ob, nsd) = pair();
    let mut failures = Vec::new();
    for (what, packet, expected) in cases() {
        for tcp in [false, true] {
            let transport = if tcp { "TCP" } else { "UDP" };
            let ask = |server| {
                if tcp {
                    wire::tcp_raw(server, &packet)
                } else {
                    wire::udp_matching(server, &packet, Duration::from_secs(1))
                }
            };
            let mine = ask(ob.addr);
            // NSD's error replies may announce a question they do not carry (permitted: question
            // echo in error replies), so only its header is read.
            let reference = ask(nsd.addr).and_then(|b| Header::parse(&b));
            let nsd_got = reference.map(|h| h.rcode);
            if !(nsd_got == expected || (tcp && nsd_got.is_none())) {
                // The reference disagrees with the expectation: the test itself is wrong.
                failures.push(format!(
                    "{what} over {transport}: NSD gives {nsd_got:?}, the test expects {expected:?}"
                ));
            }
            let reply = match mine.as_deref().map(Reply::parse) {
                None => None,
                Some(Ok(reply)) => Some(reply),
                Some(Err(e)) => {
                    failures.push(format!("{what} over {transport}: malformed reply: {e}"));
                    continue;
                }
            };
            let got = reply.as_ref().map(|r| r.rcode);
            // Over TCP, closing where NSD closes is as good as the expected rcode.
            if !(got == expected || (tcp && got.is_none() && nsd_got.is_none())) {
                failures.push(format!("{what} over {transport}: rcode {got:?}, expected {expected:?} (NSD: {nsd_got:?}); reply {reply:?}"));
            }
            if let Some(reply) = &reply {
                let id = u16::from_be_bytes([packet[0], packet[1]]);
                if reply.id != id || !reply.qr {
                    failures.push(format!(
                        "{what} over {transport}: ID {} (sent {id}), QR {}",
                        reply.id, reply.qr
                    ));
                }
                if reply.opcode != (packet[2] >> 3) & 0x0f {
                    failures.push(format!(
                        "{what} over {transport}: opcode {} not echoed",
                        reply.opcode
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // None of that hurt the server.
    let reply = wire::udp(ob.addr, &Query::new("www.example.com.", RecordType::A))
        .expect("still answering");
    assert_eq!(reply.rcode, rcode::NOERROR);
}

/// A random or mutated packet.
fn fuzz_packet(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut packet = seeds[rng.below(seeds.len())].clone();
    match rng.below(8) {
        0 => {
            let len = rng.below(600);
            packet = (0..len).map(|_| rng.byte()).collect();
        }
        1 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(packet.len());
                packet[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let at = rng.below(packet.len());
            packet[at] = rng.byte();
        }
        3 => packet.truncate(rng.below(packet.len() + 1)),
        4 => {
            for _ in 0..=rng.below(40) {
                packet.push(rng.byte());
            }
        }
        5 => {
            // Random counts (but QR clear, so the server has to look at it).
            for at in [4, 6, 8, 10] {
                if rng.below(2) == 0 {
                    let value = [0u16, 1, 2, 0xffff][rng.below(4)];
                    packet[at..at + 2].copy_from_slice(&value.to_be_bytes());
                }
            }
        }
        6 => {
            // A compression pointer somewhere past the header.
            if packet.len() > 14 {
                let at = 12 + rng.below(packet.len() - 13);
                packet[at] = 0xc0 | (rng.byte() & 0x3f);
                packet[at + 1] = rng.byte();
            }
        }
        _ => {
            // Random opcode and flags.
            if packet.len() >= 4 {
                packet[2] = rng.byte() & 0x7f;
                packet[3] = rng.byte();
            }
        }
    }
    packet
}

/// What is wrong with `bytes` as a reply: onebox's (`strict`) must be well-formed responses;
/// NSD's error replies may announce a question they do not carry, so only its header is read.
fn reply_problem(bytes: &[u8], strict: bool) -> Option<String> {
    if strict {
        match Reply::parse(bytes) {
            Ok(reply) if !reply.qr => Some(format!("reply with QR clear: {bytes:02x?}")),
            Ok(_) => None,
            Err(e) => Some(format!("malformed reply: {e}: {bytes:02x?}")),
        }
    } else {
        match Header::parse(bytes) {
            Some(header) if header.qr => None,
            _ => Some(format!("not a response: {bytes:02x?}")),
        }
    }
}

/// Sends `count` fuzz packets over UDP in batches, collecting what comes back; returns the
/// problems found with the replies.
fn fuzz_udp(
    server: std::net::SocketAddr,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    count: usize,
    strict: bool,
) -> Vec<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut problems = Vec::new();
    let mut buf = vec![0u8; 65535];
    let mut sent = 0;
    while sent < count {
        for _ in 0..50 {
            let packet = fuzz_packet(rng, seeds);
            socket.send_to(&packet, server).expect("send");
            sent += 1;
        }
        while let Ok((n, _)) = uninterrupted(|| socket.recv_from(&mut buf)) {
            problems.extend(reply_problem(&buf[..n], strict));
        }
    }
    problems
}

/// Opens `count` TCP connections at once, each sending a few framed fuzz messages (or raw
/// garbage) and then closing its sending side; reads each until the server closes it.
fn fuzz_tcp(
    server: std::net::SocketAddr,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    count: usize,
    strict: bool,
) -> Vec<String> {
    let mut streams = Vec::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect(server).expect("connect");
        let mut bytes = Vec::new();
        if rng.below(4) == 0 {
            bytes = (0..rng.below(100)).map(|_| rng.byte()).collect();
        } else {
            for _ in 0..=rng.below(3) {
                let packet = fuzz_packet(rng, seeds);
                bytes.extend_from_slice(&(packet.len() as u16).to_be_bytes());
                bytes.extend_from_slice(&packet);
            }
        }
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(Shutdown::Write);
        streams.push(stream);
    }
    let mut problems = Vec::new();
    let deadline = Instant::now() + crate::harness::DEADLINE;
    for mut stream in streams {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).expect("timeout");
        let mut received = Vec::new();
        match stream.read_to_end(&mut received) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => {
                problems.push(format!(
                    "a fuzzed TCP connection was neither closed nor finished: {e}"
                ));
                continue;
            }
        }
        // Whatever came back must be whole framed, well-formed responses.
        let mut rest = &received[..];
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            if rest.len() < 2 + len {
                break; // cut by a close: allowed
            }
            problems.extend(reply_problem(&rest[2..2 + len], strict));
            rest = &rest[2 + len..];
        }
    }
    problems
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (name, rtype) in [
        ("www.example.com.", RecordType::A),
        ("nothing.example.com.", RecordType::A),
        ("big.example.com.", RecordType::TXT),
        ("host.sub.example.com.", RecordType::A),
        ("foo.wild.example.com.", RecordType::ANY),
        ("example.com.", RecordType::AXFR),
        ("example.com.", RecordType::IXFR),
    ] {
        seeds.push(Query::new(name, rtype).to_bytes());
        let mut edns = Query::new(name, rtype).edns();
        if let Some(e) = edns.edns.as_mut() {
            e.options.push((10, vec![1, 2, 3, 4, 5, 6, 7, 8]));
        }
        seeds.push(edns.to_bytes());
    }
    seeds
}

#[test]
fn random_and_mutated_packets_never_crash_or_stall_the_server() {
    let mut ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .dns("tcp_idle_timeout = \"2s\"")
        .start();
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed_0001);
    let mut problems = fuzz_udp(ob.addr, &mut rng, &seeds, 2000, true);
    problems.extend(fuzz_tcp(ob.addr, &mut rng, &seeds, 150, true));
    assert!(
        ob.is_running(),
        "onebox died during the fuzz loop:\n{}",
        ob.log().text()
    );
    problems.truncate(20);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let query = Query::new("www.example.com.", RecordType::A);
    let udp = wire::udp(ob.addr, &query).expect("UDP still answered after the fuzz loop");
    assert_eq!(udp.rcode, rcode::NOERROR);
    assert_eq!(udp.message.answers.len(), 2);
    let tcp = wire::tcp(ob.addr, &query.renew());
    assert_eq!(tcp.message.answers.len(), 2);
}

/// The same loop against NSD (its replies checked by header only): proves the loop's own
/// machinery (framing, reading to the close) accepts what the reference does.
#[test]
fn the_fuzz_checks_accept_nsd() {
    let nsd = Nsd::primary(&ZONES);
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed_0002);
    let mut problems = fuzz_udp(nsd.addr, &mut rng, &seeds, 500, false);
    problems.extend(fuzz_tcp(nsd.addr, &mut rng, &seeds, 30, false));
    problems.truncate(20);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
