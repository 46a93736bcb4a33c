//! The DNS service's metrics.
//!
//! Queries are counted by transport, QTYPE and RCODE, read back from the reply bytes (its
//! header and echoed question: the answering code knows nothing of counting). Over UDP each
//! worker thread counts into a [`Tally`] of its own (`ops::metrics::Owned`: a plain load and
//! store per query, on memory no other thread writes), and a scrape sums the workers; TCP
//! connections, served by the async runtime's threads, count into striped counters. Replies
//! cut to fit a UDP payload (TC set) are counted apart, as are zone transfers (sent, and
//! received by the secondary zones) and NOTIFY.
//! Each zone's serial and record count are read from the catalog in service at scrape time.

use std::sync::{Arc, Mutex, PoisonError};

use crate::ops::metrics::{Encoder, Kind, Owned, OwnedView, Striped};

use super::answer::Responder;
use super::cookie::Status as CookieStatus;
use super::tcp::Stream;

/// The QTYPEs counted by name (with their codes); every other is `other`.
const QTYPES: [(u16, &str); 22] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
];
/// Index of `CAA`, `other` and `none` (a reply without a question: a FORMERR) after those.
const QTYPE_CAA: usize = QTYPES.len();
const QTYPE_OTHER: usize = QTYPES.len() + 1;
const QTYPE_NONE: usize = QTYPES.len() + 2;
const QTYPE_COUNT: usize = QTYPES.len() + 3;

/// RCODE names by value (0 to 10), then BADVERS (16) and BADCOOKIE (23) (extended: their
/// upper bits in the OPT record), and `other`.
const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];
const RCODE_BADVERS: usize = RCODES.len();
const RCODE_BADCOOKIE: usize = RCODES.len() + 1;
const RCODE_OTHER: usize = RCODES.len() + 2;
const RCODE_COUNT: usize = RCODES.len() + 3;

/// Cells of one set of query counters: one per (QTYPE, RCODE), then the truncated replies,
/// then the queries by what their COOKIE option was ([`COOKIE_RESULTS`]).
const TRUNCATED: usize = QTYPE_COUNT * RCODE_COUNT;
const COOKIES: usize = TRUNCATED + 1;
const CELLS: usize = COOKIES + COOKIE_RESULTS.len();

/// The COOKIE option results counted, in cell order.
const COOKIE_RESULTS: [(CookieStatus, &str); 4] = [
    (CookieStatus::ClientOnly, "client_only"),
    (CookieStatus::Valid, "valid"),
    (CookieStatus::Invalid, "invalid"),
    (CookieStatus::Malformed, "malformed"),
];

/// The cell of a COOKIE option result, if it is counted.
fn cookie_cell(status: CookieStatus) -> Option<usize> {
    COOKIE_RESULTS
        .iter()
        .position(|&(s, _)| s == status)
        .map(|i| COOKIES + i)
}

/// Events counted outside the query path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// A whole zone sent (AXFR, or IXFR answered in full).
    AxfrSent,
    /// An incremental transfer sent from the journal.
    IxfrSent,
    /// A transfer that broke off (the client went away or stalled).
    TransferFailed,
    /// A NOTIFY acknowledged by a secondary.
    NotifySent,
    /// A NOTIFY given up on (no response, or an error response).
    NotifyFailed,
    /// A secondary zone received whole (AXFR, or IXFR answered in full).
    AxfrReceived,
    /// A secondary zone received as an incremental transfer.
    IxfrReceived,
    /// A transfer from a primary that failed (the network, the primary's answer, a signature,
    /// an IXFR that does not apply).
    ReceiveFailed,
}
const EVENTS: usize = 8;

/// The counters of one UDP worker; only that worker's thread writes them.
#[derive(Debug)]
pub(crate) struct Tally {
    cells: Owned,
}

impl Tally {
    /// Counts the reply in `out`.
    #[inline]
    pub(crate) fn reply(&mut self, out: &[u8]) {
        let (cell, truncated) = classify(out);
        self.cells.add(cell, 1);
        if truncated {
            self.cells.add(TRUNCATED, 1);
        }
    }

    /// Counts what the COOKIE option of the query just answered was.
    #[inline]
    pub(crate) fn cookie(&mut self, status: CookieStatus) {
        if let Some(cell) = cookie_cell(status) {
            self.cells.add(cell, 1);
        }
    }
}

/// Every DNS counter of the process. Shared by the service and its tasks.
#[derive(Debug)]
pub(crate) struct DnsMetrics {
    /// The UDP workers' counters, kept when a worker stops (counters never go down).
    udp: Mutex<Vec<OwnedView>>,
    tcp: Striped,
    tls: Striped,
    events: Striped,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self {
            udp: Mutex::new(Vec::new()),
            tcp: Striped::new(CELLS),
            tls: Striped::new(CELLS),
            events: Striped::new(EVENTS),
        }
    }
}

impl DnsMetrics {
    /// The counters of a new UDP worker.
    pub(crate) fn udp_worker(&self) -> Tally {
        let cells = Owned::new(CELLS);
        self.udp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cells.view());
        Tally { cells }
    }

    /// Counts a reply sent over a stream (TCP, or TLS).
    pub(crate) fn stream_reply(&self, stream: Stream, out: &[u8]) {
        let (cell, truncated) = classify(out);
        let cells = self.stream(stream);
        cells.inc(cell);
        if truncated {
            cells.inc(TRUNCATED);
        }
    }

    /// Counts what the COOKIE option of a query answered over a stream was.
    pub(crate) fn stream_cookie(&self, stream: Stream, status: CookieStatus) {
        if let Some(cell) = cookie_cell(status) {
            self.stream(stream).inc(cell);
        }
    }

    /// Counts a transfer query over a stream (answered by a stream of messages, NOERROR).
    pub(crate) fn stream_transfer(&self, stream: Stream, qtype: u16) {
        self.stream(stream).inc(qtype_index(qtype) * RCODE_COUNT);
    }

    fn stream(&self, stream: Stream) -> &Striped {
        match stream {
            Stream::Tcp => &self.tcp,
            Stream::Tls => &self.tls,
        }
    }

    /// Counts `event`.
    pub(crate) fn event(&self, event: Event) {
        self.events.inc(event as usize);
    }

    /// Writes the DNS families, with the zones of `responder`'s catalog.
    pub(crate) fn collect(&self, out: &mut Encoder, responder: &Responder) {
        let udp: Vec<u64> = {
            let workers = self.udp.lock().unwrap_or_else(PoisonError::into_inner);
            (0..CELLS)
                .map(|cell| workers.iter().map(|w| w.get(cell)).sum())
                .collect()
        };
        let tcp: Vec<u64> = (0..CELLS).map(|cell| self.tcp.get(cell)).collect();
        let tls: Vec<u64> = (0..CELLS).map(|cell| self.tls.get(cell)).collect();
        let mut family = out.family(
            "onebox_dns_queries_total",
            "DNS queries answered, by transport, QTYPE and RCODE of the reply.",
            Kind::Counter,
        );
        for (transport, cells) in [("udp", &udp), ("tcp", &tcp), ("tls", &tls)] {
            for qtype in 0..QTYPE_COUNT {
                for rcode in 0..RCODE_COUNT {
                    let count = cells[qtype * RCODE_COUNT + rcode];
                    if count > 0 {
                        family.sample(
                            &[
                                ("transport", transport),
                                ("qtype", qtype_name(qtype)),
                                ("rcode", rcode_name(rcode)),
                            ],
                            count,
                        );
                    }
                }
            }
        }
        let mut family = out.family(
            "onebox_dns_truncated_total",
            "DNS replies cut to fit the client's UDP payload size (TC set).",
            Kind::Counter,
        );
        family.sample(&[("transport", "udp")], udp[TRUNCATED]);
        family.sample(&[("transport", "tcp")], tcp[TRUNCATED]);
        let mut family = out.family(
            "onebox_dns_cookies_total",
            "Queries with a DNS COOKIE option answered, by what it held: a client cookie only, a valid server cookie, one not valid here (both given a new one), or a malformed option (FORMERR).",
            Kind::Counter,
        );
        for (transport, cells) in [("udp", &udp), ("tcp", &tcp), ("tls", &tls)] {
            for (i, (_, result)) in COOKIE_RESULTS.iter().enumerate() {
                family.sample(
                    &[("transport", transport), ("result", result)],
                    cells[COOKIES + i],
                );
            }
        }
        let events = |event: Event| self.events.get(event as usize);
        let mut family = out.family(
            "onebox_dns_transfers_total",
            "Zone transfers sent, by type (axfr: the whole zone; ixfr: from the journal), and those that broke off.",
            Kind::Counter,
        );
        family.sample(
            &[("type", "axfr"), ("result", "complete")],
            events(Event::AxfrSent),
        );
        family.sample(
            &[("type", "ixfr"), ("result", "complete")],
            events(Event::IxfrSent),
        );
        family.sample(
            &[("type", "any"), ("result", "failed")],
            events(Event::TransferFailed),
        );
        let mut family = out.family(
            "onebox_dns_transfers_received_total",
            "Zone transfers received by the secondary zones, by type (axfr: the whole zone; ixfr: incremental), and those that failed.",
            Kind::Counter,
        );
        family.sample(
            &[("type", "axfr"), ("result", "complete")],
            events(Event::AxfrReceived),
        );
        family.sample(
            &[("type", "ixfr"), ("result", "complete")],
            events(Event::IxfrReceived),
        );
        family.sample(
            &[("type", "any"), ("result", "failed")],
            events(Event::ReceiveFailed),
        );
        out.single(
            "onebox_dns_notify_sent_total",
            "NOTIFY messages acknowledged by a secondary.",
            Kind::Counter,
            events(Event::NotifySent),
        );
        out.single(
            "onebox_dns_notify_failed_total",
            "NOTIFY messages given up on (no response after every attempt, or an error response).",
            Kind::Counter,
            events(Event::NotifyFailed),
        );
        let catalog = responder.catalog();
        let mut zones: Vec<(String, u32, usize)> = catalog
            .zones()
            .map(|zone| (zone.origin().to_string(), zone.serial(), zone.len()))
            .collect();
        zones.sort();
        let mut family = out.family(
            "onebox_dns_zone_serial",
            "The SOA serial of each zone in service.",
            Kind::Gauge,
        );
        for (zone, serial, _) in &zones {
            family.sample(&[("zone", zone)], *serial);
        }
        let mut family = out.family(
            "onebox_dns_zone_records",
            "Records in each zone in service.",
            Kind::Gauge,
        );
        for (zone, _, records) in &zones {
            family.sample(&[("zone", zone)], *records);
        }
    }
}

/// Shares the metrics with the registry: the collector reads the catalog in service.
pub(crate) fn collector(
    metrics: Arc<DnsMetrics>,
    responder: Arc<Responder>,
) -> impl Fn(&mut Encoder) + Send + Sync {
    move |out: &mut Encoder| metrics.collect(out, &responder)
}

fn qtype_name(index: usize) -> &'static str {
    match index {
        QTYPE_CAA => "CAA",
        QTYPE_OTHER => "other",
        QTYPE_NONE => "none",
        i => QTYPES.get(i).map_or("other", |(_, name)| name),
    }
}

fn rcode_name(index: usize) -> &'static str {
    match index {
        RCODE_BADVERS => "BADVERS",
        RCODE_BADCOOKIE => "BADCOOKIE",
        RCODE_OTHER => "other",
        i => RCODES.get(i).copied().unwrap_or("other"),
    }
}

fn qtype_index(qtype: u16) -> usize {
    if qtype == 257 {
        return QTYPE_CAA;
    }
    QTYPES
        .iter()
        .position(|&(code, _)| code == qtype)
        .unwrap_or(QTYPE_OTHER)
}

/// The counter cell of a reply (its QTYPE and RCODE), and whether TC is set.
fn classify(out: &[u8]) -> (usize, bool) {
    const HEADER: usize = 12;
    if out.len() < HEADER {
        return (QTYPE_NONE * RCODE_COUNT + RCODE_OTHER, false);
    }
    let truncated = out[2] & 0x02 != 0;
    let count = |at: usize| u16::from_be_bytes([out[at], out[at + 1]]);
    let mut rcode = usize::from(out[3] & 0x0f);
    let mut question_end = HEADER;
    let qtype = if count(4) == 0 {
        QTYPE_NONE
    } else {
        // The question is echoed as sent: labels, no compression.
        let mut at = HEADER;
        while let Some(&len) = out.get(at) {
            if len == 0 || len & 0xc0 != 0 {
                break;
            }
            at += 1 + usize::from(len);
        }
        question_end = at + 5;
        out.get(at + 1..at + 3).map_or(QTYPE_OTHER, |t| {
            qtype_index(u16::from_be_bytes([t[0], t[1]]))
        })
    };
    // The extended RCODEs replies carry (BADVERS, BADCOOKIE) come in bare replies: the OPT
    // record is the first of the additional section, right after the question; its TTL's
    // first byte holds the upper eight bits.
    if count(6) == 0 && count(8) == 0 && count(10) >= 1 {
        let opt = out.get(question_end..question_end + 11).unwrap_or_default();
        if opt.len() == 11 && opt[0] == 0 && opt[1..3] == [0, 41] && opt[5] != 0 {
            rcode = match (usize::from(opt[5]) << 4) | rcode {
                16 => RCODE_BADVERS,
                23 => RCODE_BADCOOKIE,
                _ => RCODE_OTHER,
            };
        }
    }
    if rcode >= RCODES.len() && rcode != RCODE_BADVERS && rcode != RCODE_BADCOOKIE {
        rcode = RCODE_OTHER;
    }
    (qtype * RCODE_COUNT + rcode, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(flags: u8, rcode: u8, question: &[u8], rest: &[u8], counts: [u16; 3]) -> Vec<u8> {
        let mut out = vec![0x12, 0x34, 0x84 | flags, rcode];
        let qd: u16 = if question.is_empty() { 0 } else { 1 };
        for c in [qd, counts[0], counts[1], counts[2]] {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(question);
        out.extend_from_slice(rest);
        out
    }

    const WWW_A: &[u8] = b"\x03www\x06foobar\x03com\x00\x00\x01\x00\x01";
    const CAA: &[u8] = b"\x06foobar\x03com\x00\x01\x01\x00\x01";

    #[test]
    fn replies_are_classified_by_question_type_and_rcode() {
        let (cell, tc) = classify(&reply(0, 0, WWW_A, &[], [1, 0, 0]));
        assert_eq!((cell, tc), (0, false));
        let (cell, tc) = classify(&reply(0x02, 3, CAA, &[], [0, 0, 0]));
        assert_eq!((cell, tc), (QTYPE_CAA * RCODE_COUNT + 3, true));
        let (cell, _) = classify(&reply(0, 1, &[], &[], [0, 0, 0]));
        assert_eq!(cell, QTYPE_NONE * RCODE_COUNT + 1);
        let opt = [0, 0, 41, 4, 0xd0, 1, 0, 0, 0, 0, 0];
        let (cell, _) = classify(&reply(0, 0, WWW_A, &opt, [0, 0, 1]));
        assert_eq!(cell, RCODE_BADVERS);
        let (cell, _) = classify(&reply(0, 15, WWW_A, &[], [0, 0, 0]));
        assert_eq!(cell, RCODE_OTHER);
        // BADCOOKIE: 7 in the header, 1 in the OPT, which carries the COOKIE option.
        let mut opt = vec![0, 0, 41, 4, 0xd0, 1, 0, 0, 0, 0, 28, 0, 10, 0, 24];
        opt.extend_from_slice(&[9; 24]);
        let (cell, _) = classify(&reply(0, 7, WWW_A, &opt, [0, 0, 1]));
        assert_eq!(cell, RCODE_BADCOOKIE);
        // BADVERS with a cookie, and signed (a TSIG record after the OPT).
        let mut signed = opt.clone();
        signed[5] = 1;
        signed.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]);
        let (cell, _) = classify(&reply(0, 0, WWW_A, &signed, [0, 0, 2]));
        assert_eq!(cell, RCODE_BADVERS);
        assert_eq!(
            classify(&[1, 2, 3]).0,
            QTYPE_NONE * RCODE_COUNT + RCODE_OTHER
        );
    }
}
