//! Secondary zones' versions (`dns::secondary` fetches them): the same path as a file's —
//! journal, stored copy, swap, NOTIFY — without the overlay, so the serial served is always
//! the primary's.

use std::sync::Arc;

use hickory_proto::rr::Name;

use super::Versions;
use crate::dns::catalog::{Catalog, ZoneData};
use crate::dns::zone::Zone;

impl Versions {
    /// The zones served as secondaries from now on. One no longer listed stops being served
    /// (a zone file of that name, if any, is read by the reload that follows).
    pub(crate) fn set_secondaries(&mut self, origins: Vec<Name>) {
        let dropped: Vec<Name> = self
            .secondaries
            .iter()
            .filter(|old| !origins.contains(old))
            .cloned()
            .collect();
        self.secondaries = origins;
        if dropped.is_empty() {
            return;
        }
        let previous = self.responder.catalog();
        let zones = previous
            .zones()
            .filter(|zone| !dropped.contains(zone.origin()))
            .cloned()
            .collect();
        self.publish(&previous, Catalog::new(zones));
    }

    /// Whether `origin` is served as a secondary.
    pub(crate) fn is_secondary(&self, origin: &Name) -> bool {
        self.secondaries.contains(origin)
    }

    /// The secondary zones `catalog` serves: a reload of the files keeps them.
    pub(super) fn secondaries_in(&self, catalog: &Catalog) -> Vec<Arc<ZoneData>> {
        catalog
            .zones()
            .filter(|zone| self.is_secondary(zone.origin()))
            .cloned()
            .collect()
    }

    /// At start: the copy of a secondary zone stored by the previous process, served (with its
    /// journal) until the first refresh; `expired` if its expire timer ran out meanwhile.
    pub(crate) fn secondary_restored(&mut self, zone: Zone, expired: bool) {
        let origin = zone.origin().clone();
        let history = self
            .stored
            .read_journal(&origin, zone.serial())
            .unwrap_or_else(|error| {
                tracing::warn!(zone = %origin, error = %crate::ops::chain(&error), "the stored journal is unreadable; it starts over");
                Default::default()
            });
        let data = ZoneData::new(zone)
            .with_history(history)
            .with_expired(expired);
        self.replace(Arc::new(data));
    }

    /// A new version of a secondary zone, transferred from a primary: journalled, stored,
    /// served, announced.
    pub(crate) fn secondary_transferred(&mut self, zone: Zone) {
        let previous = self.responder.catalog();
        let in_service = previous.zone(zone.origin()).map(|z| z.as_ref());
        let data = self.journalled(in_service, None, ZoneData::new(zone));
        self.replace(data);
    }

    /// A secondary zone's expiry changed (its expire timer ran out; a primary answered again).
    pub(crate) fn secondary_expired(&mut self, origin: &Name, expired: bool) {
        let previous = self.responder.catalog();
        let Some(served) = previous.zone(origin) else {
            return;
        };
        if served.expired() != expired {
            let data = served.as_ref().clone().with_expired(expired);
            self.replace(Arc::new(data));
        }
    }

    /// Serves `data` in place of its zone's version in service.
    fn replace(&mut self, data: Arc<ZoneData>) {
        if !self.is_secondary(data.origin()) {
            // Dropped from the configuration while it was being transferred.
            return;
        }
        let previous = self.responder.catalog();
        let mut zones: Vec<Arc<ZoneData>> = previous
            .zones()
            .filter(|zone| zone.origin() != data.origin())
            .cloned()
            .collect();
        zones.push(data);
        self.publish(&previous, Catalog::new(zones));
    }
}
