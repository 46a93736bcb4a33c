//! `dns.udp_workers`: that many UDP sockets per address (`SO_REUSEPORT`), one thread each, and
//! every one of them answers.

use std::collections::BTreeMap;

use hickory_proto::rr::RecordType;

use crate::harness::Onebox;
use crate::harness::wire::{self, Query, rcode};

#[test]
fn every_udp_worker_answers() {
    let workers = 4;
    let mut ob = Onebox::builder()
        .shipped_zones()
        .dns(&format!("udp_workers = {workers}"))
        // Not a DNS-only start: the NSD stand-in has no workers to count.
        .web("")
        .start();
    // Each query from a socket of its own: the kernel spreads source ports over the sockets.
    let queries = 400;
    for _ in 0..queries {
        let reply = wire::udp(ob.addr, &Query::new("www.foobar.com.", RecordType::A))
            .expect("a reply over UDP");
        assert_eq!(reply.rcode, rcode::NOERROR);
    }
    let status = ob.terminate().expect("onebox stops");
    assert!(status.success(), "{status:?}");
    // On the way out, each worker says what it did.
    let mut answered = BTreeMap::new();
    for line in ob.log().entries() {
        if line["message"] == "dns udp worker stopped" {
            assert_eq!(line["addr"], ob.addr.to_string(), "{line}");
            let worker = line["worker"].as_u64().expect("worker");
            answered.insert(worker, line["answered"].as_u64().expect("answered"));
        }
    }
    assert_eq!(
        answered.keys().copied().collect::<Vec<_>>(),
        (0..workers).collect::<Vec<_>>(),
        "one thread per socket:\n{}",
        ob.log().text()
    );
    assert!(
        answered.values().all(|&n| n > 0),
        "every worker answered some of the {queries} queries: {answered:?}"
    );
    assert!(answered.values().sum::<u64>() >= queries);
}
