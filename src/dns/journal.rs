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
//! [`diff`] compares two versions without holding two copies of either: each record is reduced
//! to a 64-bit fingerprint of its canonical wire form (names lower-cased, TTL included), both
//! lists are sorted by fingerprint and walked together; records with equal fingerprints are
//! compared in full, so a collision can only cost a needless remove-and-add, never a wrong
//! diff.

use std::hash::Hasher;
use std::sync::Arc;

use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use rustc_hash::FxHasher;

/// One step of a zone's history: from the version with `old_soa` to the one with `new_soa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diff {
    /// The SOA of the version this step starts from.
    pub old_soa: Record,
    /// Records of the old version that are not in the new one (the SOA aside).
    pub removed: Vec<Record>,
    /// The SOA of the version this step leads to.
    pub new_soa: Record,
    /// Records of the new version that were not in the old one (the SOA aside).
    pub added: Vec<Record>,
}

impl Diff {
    /// The serial this step starts from.
    pub(crate) fn start_serial(&self) -> u32 {
        serial_of(&self.old_soa).unwrap_or_default()
    }

    /// The serial this step leads to.
    pub(crate) fn end_serial(&self) -> u32 {
        serial_of(&self.new_soa).unwrap_or_default()
    }

    /// The step as an incremental transfer sends it: old SOA, removed, new SOA, added.
    pub(crate) fn records(&self) -> impl Iterator<Item = &Record> {
        std::iter::once(&self.old_soa)
            .chain(&self.removed)
            .chain(std::iter::once(&self.new_soa))
            .chain(&self.added)
    }

    /// The step's size in uncompressed wire form: what the journal's bound counts.
    pub(crate) fn wire_size(&self) -> usize {
        let mut buf = Vec::new();
        self.records().map(|r| wire_len(r, &mut buf)).sum()
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

/// The serial of an SOA record.
pub(crate) fn serial_of(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// The step from `old` to `new`, two versions of one zone, each with its SOA first.
pub(crate) fn diff(old: &[Record], new: &[Record]) -> Diff {
    let (old_soa, old) = old
        .split_first()
        .expect("a zone version starts with its SOA");
    let (new_soa, new) = new
        .split_first()
        .expect("a zone version starts with its SOA");
    let old_keys = fingerprints(old);
    let new_keys = fingerprints(new);
    let mut removed_at = Vec::new();
    let mut added_at = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old_keys.len() || j < new_keys.len() {
        let a = old_keys.get(i).map(|k| k.0);
        let b = new_keys.get(j).map(|k| k.0);
        match (a, b) {
            (Some(a), Some(b)) if a == b => {
                // A run of equal fingerprints on each side: match records that are truly equal.
                let i_end = run_end(&old_keys, i);
                let j_end = run_end(&new_keys, j);
                let mut matched = vec![false; j_end - j];
                for &(_, at) in &old_keys[i..i_end] {
                    let twin = (j..j_end).find(|&k| {
                        !matched[k - j] && same(&old[at as usize], &new[new_keys[k].1 as usize])
                    });
                    match twin {
                        Some(k) => matched[k - j] = true,
                        None => removed_at.push(at),
                    }
                }
                for (k, used) in matched.iter().enumerate() {
                    if !used {
                        added_at.push(new_keys[j + k].1);
                    }
                }
                (i, j) = (i_end, j_end);
            }
            (Some(a), Some(b)) if a < b => {
                removed_at.push(old_keys[i].1);
                i += 1;
            }
            (Some(_), None) => {
                removed_at.push(old_keys[i].1);
                i += 1;
            }
            _ => {
                added_at.push(new_keys[j].1);
                j += 1;
            }
        }
    }
    // In zone order: easier to read in a transfer or a log.
    removed_at.sort_unstable();
    added_at.sort_unstable();
    Diff {
        old_soa: old_soa.clone(),
        removed: removed_at
            .into_iter()
            .map(|at| old[at as usize].clone())
            .collect(),
        new_soa: new_soa.clone(),
        added: added_at
            .into_iter()
            .map(|at| new[at as usize].clone())
            .collect(),
    }
}

/// Whether two records are the same data: RFC 2136 equality (owner case aside) and the TTL.
fn same(a: &Record, b: &Record) -> bool {
    a == b && a.ttl == b.ttl
}

/// (fingerprint, index) of every record, sorted by fingerprint.
fn fingerprints(records: &[Record]) -> Vec<(u64, u32)> {
    let mut buf = Vec::with_capacity(256);
    let mut keys: Vec<(u64, u32)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (fingerprint(r, &mut buf), i as u32))
        .collect();
    keys.sort_unstable();
    keys
}

/// A hash of the record's canonical wire form (names in lower case, no compression).
fn fingerprint(record: &Record, buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    let mut encoder = BinEncoder::new(buf);
    encoder.set_canonical_form(true);
    encoder.set_name_encoding(NameEncoding::UncompressedLowercase);
    let mut hasher = FxHasher::default();
    if record.emit(&mut encoder).is_err() {
        // Not encodable (it could not be served either): its type and owner still tell it apart.
        hasher.write_u16(u16::from(record.record_type()));
        hasher.write(record.name.to_lowercase().to_ascii().as_bytes());
        return hasher.finish();
    }
    hasher.write(buf);
    hasher.finish()
}

/// The end of the run of equal fingerprints starting at `at`.
fn run_end(keys: &[(u64, u32)], at: usize) -> usize {
    let key = keys[at].0;
    at + keys[at..].iter().take_while(|k| k.0 == key).count()
}

/// The record's size in uncompressed wire form.
fn wire_len(record: &Record, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    let mut encoder = BinEncoder::new(buf);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    match record.emit(&mut encoder) {
        Ok(()) => buf.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn soa(serial: u32) -> Record {
        Record::from_rdata(
            name("example."),
            3600,
            RData::SOA(SOA::new(
                name("ns.example."),
                name("admin.example."),
                serial,
                3600,
                600,
                86400,
                300,
            )),
        )
    }

    fn a(owner: &str, last: u8, ttl: u32) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    }

    fn zone(serial: u32, rest: &[Record]) -> Vec<Record> {
        let mut records = vec![soa(serial)];
        records.extend_from_slice(rest);
        records
    }

    #[test]
    fn diff_finds_removed_added_and_ttl_changes() {
        let old = zone(
            1,
            &[
                a("a.example.", 1, 60),
                a("b.example.", 2, 60),
                a("c.example.", 3, 60),
            ],
        );
        let new = zone(
            2,
            &[
                a("A.Example.", 1, 60),
                a("b.example.", 2, 120),
                a("d.example.", 4, 60),
            ],
        );
        let step = diff(&old, &new);
        assert_eq!((step.start_serial(), step.end_serial()), (1, 2));
        assert_eq!(
            step.removed,
            vec![a("b.example.", 2, 60), a("c.example.", 3, 60)]
        );
        let ttls: Vec<u32> = step.removed.iter().map(|r| r.ttl).collect();
        assert_eq!(ttls, vec![60, 60]);
        assert_eq!(
            step.added,
            vec![a("b.example.", 2, 120), a("d.example.", 4, 60)]
        );
        assert_eq!(step.added[0].ttl, 120);
        // Owner case alone is no change.
        assert!(!step.removed.iter().any(|r| r.name == name("a.example.")));
    }

    #[test]
    fn the_history_is_bounded_and_answers_from_any_serial_it_holds() {
        let mut versions = vec![zone(1, &[])];
        let mut history = History::default();
        for serial in 2..=6u32 {
            let next = zone(
                serial,
                &[a(&format!("h{serial}.example."), serial as u8, 60)],
            );
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
        let step = diff(&versions[5], &zone(7, &[a("h7.example.", 7, 60)]));
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
