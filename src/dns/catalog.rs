//! The catalog: every zone in service, as one immutable snapshot.
//!
//! Zones are found by the lower-case wire form of their apex; a query goes to the most specific
//! zone holding its name (a child zone served beside its parent answers for itself). A reload
//! builds a new catalog off the hot path and swaps it in whole; a zone that did not change is
//! the same `Arc<ZoneData>` in both.

use std::sync::Arc;

use hickory_proto::rr::Name;
use rustc_hash::FxHashMap;

use super::zone::{ZoneData, code, name};

/// All zones in service. Built off the hot path, then swapped in whole.
#[derive(Debug, Default)]
pub struct Catalog {
    zones: Vec<Arc<ZoneData>>,
    by_key: FxHashMap<Box<[u8]>, usize>,
}

impl Catalog {
    /// Puts `zones` in one catalog, sorted by name.
    pub fn new(mut zones: Vec<Arc<ZoneData>>) -> Self {
        zones.sort_by(|a, b| a.origin().cmp(b.origin()));
        let by_key = zones
            .iter()
            .enumerate()
            .map(|(i, zone)| (key_of(zone.origin()), i))
            .collect();
        Self { zones, by_key }
    }

    /// The zones in service, sorted by name.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneData>> {
        self.zones.iter()
    }

    /// The zone whose apex is `origin`.
    pub fn zone(&self, origin: &Name) -> Option<&Arc<ZoneData>> {
        self.exact(&key_of(origin))
    }

    /// How many zones are served.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether no zone is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The most specific zone holding the name with lower-case wire `key`.
    fn find(&self, key: &[u8]) -> Option<&Arc<ZoneData>> {
        if self.zones.is_empty() {
            return None;
        }
        name::suffixes(key).find_map(|at| self.exact(&key[at..]))
    }

    /// The zone that answers a query for `key` and `qtype`: the most specific one holding the
    /// name, except that DS at a zone's apex belongs to the parent side of the cut (RFC 4035
    /// §3.1.4.1) when the parent is served too.
    pub(crate) fn authority_for(&self, key: &[u8], qtype: u16) -> Option<&Arc<ZoneData>> {
        let zone = self.find(key)?;
        if qtype == code::DS && zone.origin().num_labels() as usize == name::label_count(key) {
            let parent = name::suffixes(key)
                .nth(1)
                .and_then(|at| self.find(&key[at..]));
            return Some(parent.unwrap_or(zone));
        }
        Some(zone)
    }

    /// The zone whose apex has exactly the lower-case wire `key`.
    pub(crate) fn exact(&self, key: &[u8]) -> Option<&Arc<ZoneData>> {
        self.by_key.get(key).map(|&i| &self.zones[i])
    }
}

/// The lower-case wire form of `name`.
pub(crate) fn key_of(name: &Name) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into()
}
