//! Response rate limiting (`[dns.rate_limit]`), with the semantics of NSD's and BIND's RRL: at
//! most `responses_per_second` UDP responses per second to one client prefix (/24 in IPv4,
//! /56 in IPv6); beyond that, every `slip`-th response goes out truncated (TC set, no records:
//! a real client retries over TCP, which a spoofed source cannot) and the others are dropped.
//! Networks in `exempt` are never limited. TCP is not limited (its source cannot be forged).
//!
//! Each UDP worker keeps its own table (no lock on the fast path): the kernel's `SO_REUSEPORT`
//! hash sends one client socket to one worker, so the limit holds per worker. The table is
//! bounded: past [`MAX_PREFIXES`] entries, those not seen this second are forgotten.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::config::RateLimitConfig;

/// Client prefixes remembered per worker before the table is pruned.
const MAX_PREFIXES: usize = 1 << 16;

/// The limits in force.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    /// Responses per second and prefix; 0: no limit.
    pub responses_per_second: u32,
    /// Every this many limited responses, one is sent truncated; 0: none.
    pub slip: u32,
    /// Never limited.
    pub exempt: Vec<IpNet>,
}

impl Limits {
    pub(crate) fn from_config(config: &RateLimitConfig) -> Self {
        Self {
            responses_per_second: config.responses_per_second,
            slip: config.slip,
            exempt: config.exempt.clone(),
        }
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit.
    Send,
    /// Over the limit: send it truncated.
    Slip,
    /// Over the limit: drop it.
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    second: u32,
    count: u32,
    limited: u32,
}

/// One worker's table of client prefixes.
#[derive(Debug)]
pub(crate) struct Limiter {
    start: Instant,
    table: FxHashMap<u64, Bucket>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            table: FxHashMap::default(),
        }
    }
}

impl Limiter {
    /// The verdict on one more response to `ip` under `limits`.
    pub(crate) fn check(&mut self, limits: &Limits, ip: IpAddr) -> Verdict {
        if limits.responses_per_second == 0 {
            return Verdict::Send;
        }
        let ip = ip.to_canonical();
        if limits.exempt.iter().any(|net| net.contains(&ip)) {
            return Verdict::Send;
        }
        let second = u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX);
        if self.table.len() >= MAX_PREFIXES {
            self.table.retain(|_, bucket| bucket.second == second);
            if self.table.len() >= MAX_PREFIXES {
                self.table.clear();
            }
        }
        let bucket = self.table.entry(prefix(ip)).or_insert(Bucket {
            second,
            count: 0,
            limited: 0,
        });
        if bucket.second != second {
            *bucket = Bucket {
                second,
                count: 0,
                limited: bucket.limited,
            };
        }
        bucket.count = bucket.count.saturating_add(1);
        if bucket.count <= limits.responses_per_second {
            return Verdict::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if limits.slip > 0 && bucket.limited.is_multiple_of(limits.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

/// The client's prefix: /24 in IPv4, /56 in IPv6, tagged apart.
fn prefix(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => (1 << 62) | u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => (2 << 62) | (u128::from(v6) >> 72) as u64,
    }
}

/// `reply` cut to its header and question, TC set: a client that is real retries over TCP.
pub(crate) fn truncate(reply: &mut Vec<u8>) {
    if reply.len() < 12 {
        return;
    }
    let qdcount = u16::from_be_bytes([reply[4], reply[5]]);
    let mut end = 12;
    if qdcount == 1 {
        loop {
            match reply.get(end).copied() {
                Some(0) => {
                    end += 5;
                    break;
                }
                Some(label) if label & 0xc0 == 0 => end += 1 + usize::from(label),
                _ => {
                    end = 12;
                    break;
                }
            }
        }
    }
    let end = end.min(reply.len());
    let question = u16::from(end > 12);
    reply.truncate(end);
    reply[2] |= 0x02;
    reply[4..6].copy_from_slice(&question.to_be_bytes());
    reply[6..12].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rps: u32, slip: u32) -> Limits {
        Limits {
            responses_per_second: rps,
            slip,
            exempt: vec!["192.0.2.128/25".parse().unwrap()],
        }
    }

    #[test]
    fn a_prefix_is_held_to_the_limit_with_every_nth_slipped() {
        let mut limiter = Limiter::default();
        let l = limits(5, 2);
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let same_24: IpAddr = "198.51.100.200".parse().unwrap();
        let other: IpAddr = "198.51.101.7".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..10)
            .map(|i| limiter.check(&l, if i % 2 == 0 { a } else { same_24 }))
            .collect();
        assert_eq!(verdicts[..5], [Verdict::Send; 5]);
        assert_eq!(
            verdicts[5..],
            [
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop
            ]
        );
        assert_eq!(limiter.check(&l, other), Verdict::Send);
        let exempt: IpAddr = "192.0.2.200".parse().unwrap();
        assert!((0..100).all(|_| limiter.check(&l, exempt) == Verdict::Send));
        assert!((0..100).all(|_| limiter.check(&limits(0, 2), a) == Verdict::Send));
    }

    #[test]
    fn truncation_keeps_the_question() {
        let mut reply = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
        reply.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        let question_end = reply.len();
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        truncate(&mut reply);
        assert_eq!(reply.len(), question_end);
        assert_eq!(reply[2] & 0x02, 0x02);
        assert_eq!(&reply[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
