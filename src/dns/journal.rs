//! The IXFR journal (RFC 1995): what changed between a zone's successive versions.
//!
//! A [`Diff`] is one step, from one serial to the next: the records removed and the records
//! added, between the two SOAs — exactly the shape of one step of an incremental transfer
//! (RFC 1995 §4). A [`History`] is the chain of steps that leads to one zone version, oldest
//! first, each starting at the serial the previous one ends at. It is immutable and shared: the
//! next version's history is this one plus a step, with the oldest steps dropped once the chain
//! holds more than its byte bound (the journal is bounded; a client older than the oldest step
//! gets a full transfer).
//!
//! [`diff`] compares two versions without holding a third copy of either: each record is
//! reduced to a 128-bit fingerprint of its canonical wire form (owner and the names inside the
//! RDATA of the types that have them lower-cased, TTL included), both lists are sorted by
//! fingerprint and walked together, and only the records that differ are copied out. Records
//! are in wire form throughout (`RecordBuf`), so every type onebox serves, known to hickory or
//! not, is journalled exactly.

use std::hash::Hasher;
use std::sync::Arc;

use rustc_hash::FxHasher;

use super::catalog::ZoneData;
use super::zone::{RecordBuf, RecordRef, code, types};

/// One step of a zone's history: from the version with `old_soa` to the one with `new_soa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diff {
    /// The SOA of the version this step starts from.
    pub old_soa: RecordBuf,
    /// Records of the old version that are not in the new one (the SOA aside).
    pub removed: Vec<RecordBuf>,
    /// The SOA of the version this step leads to.
    pub new_soa: RecordBuf,
    /// Records of the new version that were not in the old one (the SOA aside).
    pub added: Vec<RecordBuf>,
}

impl Diff {
    /// The serial this step starts from.
    pub(crate) fn start_serial(&self) -> u32 {
        self.old_soa.soa_serial().unwrap_or_default()
    }

    /// The serial this step leads to.
    pub(crate) fn end_serial(&self) -> u32 {
        self.new_soa.soa_serial().unwrap_or_default()
    }

    /// The step as an incremental transfer sends it: old SOA, removed, new SOA, added.
    pub(crate) fn records(&self) -> impl Iterator<Item = &RecordBuf> {
        std::iter::once(&self.old_soa)
            .chain(&self.removed)
            .chain(std::iter::once(&self.new_soa))
            .chain(&self.added)
    }

    /// The step's size in uncompressed wire form: what the journal's bound counts.
    pub(crate) fn wire_size(&self) -> usize {
        self.records().map(|r| r.as_ref().wire_len()).sum()
    }
}

/// The chain of steps leading to one zone version, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    steps: Arc<[Arc<Diff>]>,
    bytes: usize,
}

impl History {
    /// A history of `steps` (oldest first; each must start where the previous ends).
    pub(crate) fn from_steps(steps: Vec<Diff>) -> Self {
        let bytes = steps.iter().map(Diff::wire_size).sum();
        Self {
            steps: steps.into_iter().map(Arc::new).collect(),
            bytes,
        }
    }

    /// This history followed by `step`, the oldest steps dropped until it holds at most
    /// `max_bytes`. A step that does not start where this history ends starts a new history.
    pub(crate) fn then(&self, step: Diff, max_bytes: usize) -> Self {
        let step_bytes = step.wire_size();
        if step_bytes > max_bytes {
            return Self::default();
        }
        let continues = self
            .steps
            .last()
            .is_none_or(|last| last.end_serial() == step.start_serial());
        let mut steps: Vec<Arc<Diff>> = if continues {
            self.steps.to_vec()
        } else {
            Vec::new()
        };
        let mut bytes = if continues { self.bytes } else { 0 } + step_bytes;
        steps.push(Arc::new(step));
        let mut first = 0;
        while bytes > max_bytes {
            bytes -= steps[first].wire_size();
            first += 1;
        }
        steps.drain(..first);
        Self {
            steps: steps.into(),
            bytes,
        }
    }

    /// The steps from the version with `serial` to the newest, or `None` when the journal does
    /// not reach back that far (or `serial` is the newest: there is nothing to send).
    pub(crate) fn since(&self, serial: u32) -> Option<&[Arc<Diff>]> {
        let first = self.steps.iter().position(|s| s.start_serial() == serial)?;
        Some(&self.steps[first..])
    }

    /// Every step, oldest first.
    pub(crate) fn steps(&self) -> &[Arc<Diff>] {
        &self.steps
    }

    /// The oldest serial an incremental transfer can start from.
    #[cfg(test)]
    pub(crate) fn oldest_serial(&self) -> Option<u32> {
        self.steps.first().map(|s| s.start_serial())
    }

    /// The total wire size of the steps.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The step from `old` to `new`, two versions of one zone.
pub(crate) fn diff(old: &ZoneData, new: &ZoneData) -> Diff {
    let old_keys = fingerprints(old.records());
    let new_keys = fingerprints(new.records());
    let mut removed_at = Vec::new();
    let mut added_at = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old_keys.len() || j < new_keys.len() {
        match (old_keys.get(i), new_keys.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                removed_at.push(a.1);
                i += 1;
            }
            (Some(a), None) => {
                removed_at.push(a.1);
                i += 1;
            }
            (_, Some(b)) => {
                added_at.push(b.1);
                j += 1;
            }
            (None, None) => break,
        }
    }
    // In zone order: easier to read in a transfer or a log.
    removed_at.sort_unstable();
    added_at.sort_unstable();
    Diff {
        old_soa: soa_of(old),
        removed: pick(old.records(), &removed_at),
        new_soa: soa_of(new),
        added: pick(new.records(), &added_at),
    }
}

fn soa_of(zone: &ZoneData) -> RecordBuf {
    zone.records()
        .next()
        .expect("a zone version starts with its SOA")
        .to_buf()
}

/// The records at the (sorted) positions `at` of `records`.
fn pick<'z>(records: impl Iterator<Item = RecordRef<'z>>, at: &[u32]) -> Vec<RecordBuf> {
    let mut wanted = at.iter().peekable();
    records
        .enumerate()
        .filter(|(i, _)| {
            let hit = wanted.peek().is_some_and(|&&w| w as usize == *i);
            if hit {
                wanted.next();
            }
            hit
        })
        .map(|(_, record)| record.to_buf())
        .collect()
}

/// (fingerprint, position) of every record but the SOA, sorted by fingerprint.
fn fingerprints<'z>(records: impl Iterator<Item = RecordRef<'z>>) -> Vec<(u128, u32)> {
    let mut buf = Vec::with_capacity(256);
    let mut keys: Vec<(u128, u32)> = records
        .enumerate()
        .filter(|(_, r)| r.rtype != code::SOA)
        .map(|(i, r)| (fingerprint(&r, &mut buf), i as u32))
        .collect();
    keys.sort_unstable();
    keys
}

/// Two independent 64-bit hashes of the record's canonical wire form (owner and RDATA names in
/// lower case, TTL included): equal fingerprints are taken as the same record.
fn fingerprint(record: &RecordRef<'_>, buf: &mut Vec<u8>) -> u128 {
    buf.clear();
    record.write_wire(buf);
    let owner = record.owner.len();
    buf[..owner].make_ascii_lowercase();
    let rdata_at = buf.len() - record.rdata.len();
    for (start, end, _) in types::names_in(record.rtype, record.rdata).iter() {
        buf[rdata_at + start..rdata_at + end].make_ascii_lowercase();
    }
    let mut fx = FxHasher::default();
    fx.write(buf);
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in buf.iter() {
        fnv = (fnv ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    u128::from(fx.finish()) << 64 | u128::from(fnv)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use hickory_proto::rr::Name;

    use super::*;
    use crate::dns::zone::parse_text;

    /// A version of `example.`: its SOA with `serial`, an NS, and `rest` (master-file lines).
    fn zone(serial: u32, rest: &[&str]) -> ZoneData {
        let mut text =
            format!("@ 3600 IN SOA ns admin {serial} 3600 600 86400 300\n@ 3600 IN NS ns\n");
        for line in rest {
            writeln!(text, "{line}").unwrap();
        }
        let origin = Name::from_ascii("example.").unwrap();
        ZoneData::new(parse_text(Path::new("example.zone"), &origin, text.as_bytes()).unwrap())
    }

    fn shown(records: &[RecordBuf]) -> Vec<String> {
        records
            .iter()
            .map(|r| r.to_record().unwrap().to_string())
            .collect()
    }

    #[test]
    fn diff_finds_removed_added_and_ttl_changes() {
        let old = zone(
            1,
            &["a 60 A 192.0.2.1", "b 60 A 192.0.2.2", "c 60 A 192.0.2.3"],
        );
        let new = zone(
            2,
            &["A 60 A 192.0.2.1", "b 120 A 192.0.2.2", "d 60 A 192.0.2.4"],
        );
        let step = diff(&old, &new);
        assert_eq!((step.start_serial(), step.end_serial()), (1, 2));
        assert_eq!(
            shown(&step.removed),
            [
                "b.example. 60 IN A 192.0.2.2",
                "c.example. 60 IN A 192.0.2.3"
            ]
        );
        assert_eq!(
            shown(&step.added),
            [
                "b.example. 120 IN A 192.0.2.2",
                "d.example. 60 IN A 192.0.2.4"
            ]
        );
        // Owner case alone is no change.
        assert!(!shown(&step.removed).iter().any(|r| r.starts_with("a.")));
    }

    #[test]
    fn the_history_is_bounded_and_answers_from_any_serial_it_holds() {
        let mut versions = vec![zone(1, &[])];
        let mut history = History::default();
        for serial in 2..=6u32 {
            let line = format!("h{serial} 60 A 192.0.2.{serial}");
            let next = zone(serial, &[&line]);
            let step = diff(versions.last().unwrap(), &next);
            history = history.then(step, usize::MAX);
            versions.push(next);
        }
        assert_eq!(history.steps().len(), 5);
        let chain = history.since(3).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0].start_serial(), 3);
        assert_eq!(chain.last().unwrap().end_serial(), 6);
        assert!(history.since(6).is_none(), "the newest serial has no steps");
        assert!(history.since(99).is_none());

        // A bound of two steps' bytes keeps the two newest.
        let two: usize = history.steps()[3..].iter().map(|s| s.wire_size()).sum();
        let step = diff(&versions[5], &zone(7, &["h7 60 A 192.0.2.7"]));
        let bounded = history.then(step.clone(), two + step.wire_size() - 1);
        assert_eq!(bounded.oldest_serial(), Some(5));
        assert_eq!(
            bounded.bytes(),
            bounded.steps().iter().map(|s| s.wire_size()).sum::<usize>()
        );
        // A step bigger than the bound empties the journal; a gap starts it over.
        assert!(history.then(step.clone(), 10).steps().is_empty());
        let gap = diff(&zone(40, &[]), &zone(41, &[]));
        assert_eq!(history.then(gap, usize::MAX).oldest_serial(), Some(40));
    }
}
