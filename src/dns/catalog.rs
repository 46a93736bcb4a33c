//! The catalog: every served zone, indexed for answering, as one immutable snapshot.

use std::sync::Arc;

use hickory_proto::rr::{Name, Record};

use super::zone::Zone;

/// All zones in service. Built off the hot path, then swapped in whole.
#[derive(Debug, Default)]
pub struct Catalog {
    zones: Vec<Arc<ZoneData>>,
}

/// One zone, indexed.
#[derive(Debug)]
pub struct ZoneData {
    origin: Name,
    serial: u32,
    records: Vec<Record>,
}

impl Catalog {
    /// Puts `zones` in one catalog.
    pub fn new(zones: Vec<Arc<ZoneData>>) -> Self {
        Self { zones }
    }

    /// The zones in service.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneData>> {
        self.zones.iter()
    }

    /// The zone whose apex is `origin`.
    pub fn zone(&self, origin: &Name) -> Option<&Arc<ZoneData>> {
        self.zones.iter().find(|z| z.origin() == origin)
    }

    /// How many zones are served.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether no zone is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

impl ZoneData {
    /// Indexes one zone.
    pub fn new(zone: Zone) -> Self {
        Self {
            origin: zone.origin,
            serial: zone.serial,
            records: zone.records,
        }
    }

    /// The apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Every record for a transfer: the SOA first, then all others (the closing SOA is the
    /// transfer's to add).
    pub fn transfer_records(&self) -> &[Record] {
        &self.records
    }
}
