//! Transports: a UDP reply that does not fit sets TC and still parses, TCP gives the whole
//! answer, queries pipelined on one connection are all answered, idle and slow connections are
//! closed, and the connection cap holds extra clients back without losing them.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::{EXAMPLE_ZONE, pair};
use crate::harness::wire::{self, Query, Transport, rcode};
use crate::harness::{DEADLINE, Onebox, uninterrupted};

#[test]
fn big_answers_set_tc_over_udp_and_come_whole_over_tcp() {
    let (ob, nsd) = pair();
    let full = wire::ask(
        ob.addr,
        &Query::new("big.example.com.", RecordType::TXT),
        Transport::Tcp,
    );
    assert_eq!(full.rcode, rcode::NOERROR, "{full:?}");
    assert!(!full.tc, "TCP replies are not truncated: {full:?}");
    assert_eq!(
        full.message.answers.len(),
        6,
        "all six TXT records over TCP: {full:?}"
    );
    let reference = wire::ask(
        nsd.addr,
        &Query::new("big.example.com.", RecordType::TXT),
        Transport::Tcp,
    );
    assert_eq!(
        full.answers(),
        reference.answers(),
        "same records as NSD over TCP"
    );

    for query in [
        Query::new("big.example.com.", RecordType::TXT),
        Query::new("big.example.com.", RecordType::TXT).edns(),
        Query::new("BIG.example.com.", RecordType::TXT),
    ] {
        // `wire::udp` panics if the datagram is not one well-formed message (no trailing bytes).
        let reply = wire::udp(ob.addr, &query).expect("a UDP reply");
        let reference = wire::udp(nsd.addr, &query.clone().renew()).expect("NSD's UDP reply");
        let limit = if query.edns.is_some() { 1232 } else { 512 };
        let what = format!(
            "EDNS {}: {reply:?}\nNSD: {reference:?}",
            query.edns.is_some()
        );
        assert!(reply.tc, "TC set: {what}");
        assert!(reference.tc, "NSD sets TC too: {what}");
        assert!(
            reply.bytes.len() <= limit,
            "{} bytes over the {limit}-byte limit: {what}",
            reply.bytes.len()
        );
        assert_eq!(reply.rcode, reference.rcode, "{what}");
        assert_eq!(reply.aa, reference.aa, "{what}");
        assert_eq!(
            reply.opt.is_some(),
            query.edns.is_some(),
            "OPT iff the query had one: {what}"
        );
        assert_eq!(reply.question, query.question(), "question echoed: {what}");
        let whole = full.answers();
        for record in reply.answers() {
            assert!(
                whole.contains(&record),
                "{record} is not part of the answer: {what}"
            );
        }
    }
}

#[test]
fn pipelined_queries_on_one_connection_are_all_answered() {
    let (ob, nsd) = pair();
    let names = [
        ("www.example.com.", RecordType::A),
        ("nothing.example.com.", RecordType::A),
        ("big.example.com.", RecordType::TXT),
        ("host.sub.example.com.", RecordType::A),
        ("www.example.net.", RecordType::A),
        ("foo.wild.example.com.", RecordType::TXT),
        ("example.com.", RecordType::MX),
        ("chain1.example.com.", RecordType::A),
        ("b.c.example.com.", RecordType::A),
        ("example.com.", RecordType::SOA),
    ];
    let queries: Vec<Query> = names
        .iter()
        .map(|(n, t)| Query::new(n, *t).edns())
        .collect();
    // Everything in one write: the server must split the stream into messages itself.
    let mut stream = wire::tcp_connect(ob.addr);
    let mut batch = Vec::new();
    for query in &queries {
        let packet = query.to_bytes();
        batch.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        batch.extend_from_slice(&packet);
    }
    stream.write_all(&batch).expect("write the batch");
    let mut answered = BTreeSet::new();
    for _ in &queries {
        let bytes = wire::tcp_read(&mut stream).unwrap_or_else(|| {
            panic!(
                "connection ended after {} of {} replies",
                answered.len(),
                queries.len()
            )
        });
        let reply = wire::Reply::parse(&bytes).expect("well-formed reply");
        let query = queries
            .iter()
            .find(|q| q.id == reply.id)
            .expect("a reply to one of the queries");
        // Each pipelined reply must be the reply that query gets on its own (NSD's).
        let alone = wire::ask(nsd.addr, &query.clone(), Transport::Tcp);
        assert_eq!(
            wire::Summary::of(&reply)
                .without_optional_apex_ns("example.com.", RecordType::from(query.qtype)),
            wire::Summary::of(&alone)
                .without_optional_apex_ns("example.com.", RecordType::from(query.qtype)),
            "pipelined reply to {}",
            query.qname
        );
        assert!(
            answered.insert(reply.id),
            "two replies with ID {}",
            reply.id
        );
    }
    // And the connection is still usable afterwards.
    let last = Query::new("mail.example.com.", RecordType::A);
    wire::tcp_send(&mut stream, &last.to_bytes());
    let reply = wire::Reply::parse(&wire::tcp_read(&mut stream).expect("reply after the batch"))
        .expect("parse");
    assert_eq!(reply.id, last.id);
}

/// Reads until EOF or reset; `true` if the server closed the connection within [`DEADLINE`].
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match uninterrupted(|| stream.read(&mut buf)) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_and_slow_tcp_connections_are_closed_after_the_timeout() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .dns("tcp_idle_timeout = \"1s\"")
        .start();
    // Silent from the start.
    let mut idle = wire::tcp_connect(ob.addr);
    // Half a length prefix, then nothing.
    let mut slow = wire::tcp_connect(ob.addr);
    slow.write_all(&[0]).expect("write");
    // A whole prefix and half a message.
    let mut partial = wire::tcp_connect(ob.addr);
    let packet = Query::new("www.example.com.", RecordType::A).to_bytes();
    partial
        .write_all(&(packet.len() as u16).to_be_bytes())
        .expect("write");
    partial.write_all(&packet[..5]).expect("write");
    // Served once, then silent.
    let mut served = wire::tcp_connect(ob.addr);
    wire::tcp_send(&mut served, &packet);
    assert!(
        wire::tcp_read(&mut served).is_some(),
        "a query is answered first"
    );

    for (name, stream) in [
        ("idle", &mut idle),
        ("slow", &mut slow),
        ("partial", &mut partial),
        ("served", &mut served),
    ] {
        assert!(
            closed_by_server(stream),
            "the {name} connection was not closed within {DEADLINE:?} (timeout 1s)"
        );
    }
    // The server still serves new connections.
    let reply = wire::tcp(ob.addr, &Query::new("www.example.com.", RecordType::A));
    assert_eq!(reply.rcode, rcode::NOERROR);
}

#[test]
fn the_connection_cap_holds_extra_clients_until_a_slot_frees() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .dns("tcp_max_connections = 2")
        .dns("tcp_idle_timeout = \"60s\"")
        .start();
    let query = Query::new("www.example.com.", RecordType::A);
    // Two connections take both slots (each answered, so each is being served).
    let mut first = wire::tcp_connect(ob.addr);
    wire::tcp_send(&mut first, &query.clone().renew().to_bytes());
    assert!(
        wire::tcp_read(&mut first).is_some(),
        "first connection served"
    );
    let mut second = wire::tcp_connect(ob.addr);
    wire::tcp_send(&mut second, &query.clone().renew().to_bytes());
    assert!(
        wire::tcp_read(&mut second).is_some(),
        "second connection served"
    );

    // A third connects (the kernel's backlog accepts it) but is not served while both are open.
    let mut third = std::net::TcpStream::connect(ob.addr).expect("connect (backlog)");
    let third_query = query.clone().renew();
    let mut framed = (third_query.to_bytes().len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&third_query.to_bytes());
    third.write_all(&framed).expect("write");
    third
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let early = uninterrupted(|| third.read(&mut byte));
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the third connection must wait while two are served (cap 2); read gave {early:?}"
    );
    // UDP is not held up by the TCP cap.
    assert!(
        wire::udp(ob.addr, &query.clone().renew()).is_some(),
        "UDP still answered"
    );

    // Closing one frees a slot: the waiting connection is served now.
    drop(first);
    let started = Instant::now();
    third.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let reply = wire::tcp_read(&mut third);
    assert!(
        reply.is_some(),
        "the waiting connection was not served within {:?} of a slot freeing",
        started.elapsed()
    );
    let reply = wire::Reply::parse(&reply.expect("reply")).expect("parse");
    assert_eq!(reply.id, third_query.id);
    drop(second);
}

#[test]
fn every_listen_address_serves_udp_and_tcp() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .listen(&["127.0.0.1:0", "[::1]:0"])
        .start();
    assert_eq!(ob.addrs.len(), 2, "one listening line per address");
    for &addr in &ob.addrs {
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = wire::ask(
                addr,
                &Query::new("www.example.com.", RecordType::A),
                transport,
            );
            assert_eq!(reply.rcode, rcode::NOERROR, "{addr} over {transport:?}");
            assert_eq!(reply.message.answers.len(), 2, "{addr} over {transport:?}");
        }
    }
}

#[test]
fn a_query_written_a_byte_at_a_time_is_answered() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .start();
    let query = Query::new("www.example.com.", RecordType::A);
    let packet = query.to_bytes();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    let mut stream = wire::tcp_connect(ob.addr);
    for byte in framed {
        stream.write_all(&[byte]).expect("write");
        std::thread::sleep(Duration::from_millis(5));
    }
    let reply = wire::Reply::parse(&wire::tcp_read(&mut stream).expect("a reply")).expect("parse");
    assert_eq!(reply.id, query.id);
    assert_eq!(reply.message.answers.len(), 2);
}

#[test]
fn a_burst_of_udp_queries_from_one_socket_is_all_answered() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .start();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let names = [
        "www.example.com.",
        "nothing.example.com.",
        "host.sub.example.com.",
        "example.com.",
    ];
    let mut pending = std::collections::BTreeMap::new();
    for i in 0..200 {
        let query = Query::new(names[i % names.len()], RecordType::A);
        socket.send_to(&query.to_bytes(), ob.addr).expect("send");
        pending.insert(query.id, query);
    }
    socket.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut buf = vec![0u8; 65535];
    let mut answered = 0;
    while !pending.is_empty() {
        let Ok((n, _)) = uninterrupted(|| socket.recv_from(&mut buf)) else {
            break;
        };
        let reply = wire::Reply::parse(&buf[..n]).expect("well-formed");
        let query = pending
            .remove(&reply.id)
            .expect("a reply to a pending query, once");
        assert_eq!(
            reply.question,
            query.question(),
            "each reply answers its own query"
        );
        answered += 1;
    }
    assert!(pending.is_empty(), "{answered} of 200 answered");
}
