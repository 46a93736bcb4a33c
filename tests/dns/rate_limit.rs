//! Response rate limiting (`[dns.rate_limit]`): a flood from one source is held to the limit
//! (plus every `slip`-th reply sent truncated) while another source is answered in full.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::EXAMPLE_ZONE;
use crate::harness::wire::{Header, Query};
use crate::harness::{Onebox, uninterrupted};

/// Sends `count` queries from `from` to `ob` in quick bursts while another thread reads the
/// replies (so that none is lost in a full socket buffer on a loaded machine), until none comes
/// for a second: (full replies, truncated replies, seconds the sending took).
fn flood(ob: &Onebox, from: &str, count: usize) -> (usize, usize, u64) {
    let socket = UdpSocket::bind(format!("{from}:0")).expect("bind");
    let reader = socket.try_clone().expect("clone");
    reader
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let replies = std::thread::spawn(move || {
        let (mut full, mut truncated) = (0, 0);
        let mut buf = [0u8; 2048];
        while let Ok((len, _)) = uninterrupted(|| reader.recv_from(&mut buf)) {
            assert!(Header::parse(&buf[..len]).is_some(), "a DNS reply");
            if buf[2] & 0x02 != 0 {
                truncated += 1;
            } else {
                full += 1;
            }
        }
        (full, truncated)
    });
    let started = Instant::now();
    for i in 0..count {
        let query = Query::new("www.example.com.", RecordType::A);
        socket.send_to(&query.to_bytes(), ob.addr).expect("send");
        // Bursts of 10, 2 ms apart (400 queries in about 0.1 s): fast enough to be limited,
        // slow enough that a busy machine's server socket buffer drops none of them, which
        // would make fewer replies limited than sent.
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let took = started.elapsed().as_secs();
    let (full, truncated) = replies.join().expect("the reader");
    (full, truncated, took)
}

#[test]
fn a_flooding_source_is_held_to_the_limit_and_another_is_unaffected() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .dns("udp_workers = 1")
        .toml("[dns.rate_limit]\nresponses_per_second = 10\nslip = 2\nexempt = []\n")
        .start();
    let (full, truncated, took) = flood(&ob, "127.0.1.1", 400);
    // At most the limit in each second the flood lasted (it may straddle one more).
    let seconds = usize::try_from(took).expect("seconds") + 2;
    assert!(
        full >= 1 && full <= 10 * seconds,
        "{full} full replies in about {took} s with a limit of 10/s"
    );
    // Of the rest, about every second one is sent truncated.
    let limited = 400 - full;
    assert!(
        truncated > 0 && truncated <= limited / 2 + 1 && truncated + 1 >= limited / 2,
        "{truncated} truncated of {limited} limited (slip 2)"
    );
    // Another source (another /24) is answered in full meanwhile.
    let (other, other_truncated, _) = flood(&ob, "127.0.0.2", 5);
    assert_eq!((other, other_truncated), (5, 0));
}
