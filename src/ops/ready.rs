//! Readiness: each service says when it is ready to serve, and `/readyz` reports all of them.
//!
//! `/readyz` is what a load balancer probes (HAProxy's `option httpchk GET /readyz`), so it
//! answers for this box alone:
//!
//! - a service registers a named [`Check`] at start (not ready), flips it when it is (the DNS
//!   service once its zones are loaded, the web service once its certificates are valid), and
//!   may flip it back. Any check not ready makes the box not ready (503);
//! - a dependency every box shares (the database) is registered with
//!   [`Readiness::register_shared`]: its state is shown in `/readyz`'s body and in the
//!   metrics, but never makes the box not ready — a balancer that took every box out of
//!   rotation while the shared database is down would also take down what still works
//!   without it (the static site, ACME challenges, DNS-backed names);
//! - [`Readiness::drain`] marks the box as stopping: not ready from then on, so that a
//!   balancer stops sending to it before its listeners close (`web.drain_delay`).
//!
//! [`Readiness`] is a cheap handle shared by every service; it is also a metrics collector
//! (`onebox_ready`, `onebox_ready_check`, `onebox_dependency_up`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::metrics::{Collect, Encoder, Kind};

/// The readiness of every registered check of one process.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, Entry>>>,
    draining: Arc<AtomicBool>,
}

/// One registered name: its kind and state.
#[derive(Debug, Clone)]
struct Entry {
    shared: bool,
    state: Arc<AtomicU8>,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// One named readiness flag, owned by the service that registered it.
#[derive(Debug, Clone)]
pub struct Check {
    state: Arc<AtomicU8>,
}

/// What `/readyz` says, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The box's own checks that are not ready (`draining` when it is stopping); empty: ready.
    pub pending: Vec<&'static str>,
    /// Each shared dependency: `Some(up)`, or `None` before its first check.
    pub shared: Vec<(&'static str, Option<bool>)>,
}

impl Report {
    /// Whether the box is ready.
    pub fn is_ready(&self) -> bool {
        self.pending.is_empty()
    }

    /// The body of `/readyz`: `ready` or `not ready: a, b` on the first line, then one line per
    /// shared dependency (`database: up`).
    pub fn text(&self) -> String {
        let mut text = if self.pending.is_empty() {
            "ready\n".to_owned()
        } else {
            format!("not ready: {}\n", self.pending.join(", "))
        };
        for (name, up) in &self.shared {
            let state = match up {
                Some(true) => "up",
                Some(false) => "down (shared by every box: not part of readiness)",
                None => "not checked yet",
            };
            let _ = writeln!(text, "{name}: {state}");
        }
        text
    }
}

impl Readiness {
    /// Registers a check named `name`, not ready yet. Registering a name again returns the
    /// existing check.
    pub fn register(&self, name: &'static str) -> Check {
        self.entry(name, false)
    }

    /// Registers a dependency every box shares (the database), unknown until first set: shown
    /// by `/readyz` and the metrics, never a reason for the box to be not ready.
    pub fn register_shared(&self, name: &'static str) -> Check {
        self.entry(name, true)
    }

    fn entry(&self, name: &'static str, shared: bool) -> Check {
        let mut checks = self.lock();
        let entry = checks.entry(name).or_insert_with(|| Entry {
            shared,
            state: Arc::default(),
        });
        Check {
            state: entry.state.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Entry>> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the check `name` is registered and ready.
    pub fn is_ready(&self, name: &str) -> bool {
        self.lock()
            .get(name)
            .is_some_and(|entry| entry.state.load(Ordering::Acquire) == UP)
    }

    /// The names of the box's own checks that are not ready (and `draining` once
    /// [`Readiness::drain`] was called); empty when the process is ready. Shared dependencies
    /// never appear.
    pub fn pending(&self) -> Vec<&'static str> {
        self.report().pending
    }

    /// The whole state, for `/readyz`.
    pub fn report(&self) -> Report {
        let checks = self.lock();
        let mut pending: Vec<&'static str> = checks
            .iter()
            .filter(|(_, entry)| !entry.shared && entry.state.load(Ordering::Acquire) != UP)
            .map(|(name, _)| *name)
            .collect();
        if self.is_draining() {
            pending.push("draining");
        }
        let shared = checks
            .iter()
            .filter(|(_, entry)| entry.shared)
            .map(|(name, entry)| {
                let up = match entry.state.load(Ordering::Acquire) {
                    UNKNOWN => None,
                    state => Some(state == UP),
                };
                (*name, up)
            })
            .collect();
        Report { pending, shared }
    }

    /// The box is stopping: not ready from now on, whatever the checks say.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether [`Readiness::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

impl Check {
    /// Marks the check ready (or not); for a shared dependency, up (or down).
    pub fn set(&self, ready: bool) {
        self.state
            .store(if ready { UP } else { DOWN }, Ordering::Release);
    }
}

impl Collect for Readiness {
    fn collect(&self, out: &mut Encoder) {
        let report = self.report();
        out.single(
            "onebox_ready",
            "1 when /readyz answers 200 (this box's own checks ready, not draining), else 0.",
            Kind::Gauge,
            report.is_ready(),
        );
        let checks: Vec<(&'static str, bool)> = {
            let checks = self.lock();
            checks
                .iter()
                .filter(|(_, entry)| !entry.shared)
                .map(|(name, entry)| (*name, entry.state.load(Ordering::Acquire) == UP))
                .collect()
        };
        let mut family = out.family(
            "onebox_ready_check",
            "Each of this box's readiness checks: 1 ready, 0 not; draining is 1 while the box stops.",
            Kind::Gauge,
        );
        for (name, ready) in checks {
            family.sample(&[("check", name)], ready);
        }
        family.sample(&[("check", "draining")], self.is_draining());
        let mut family = out.family(
            "onebox_dependency_up",
            "Each dependency the boxes share (not part of readiness): 1 up, 0 down or not checked yet.",
            Kind::Gauge,
        );
        for (name, up) in report.shared {
            family.sample(&[("dependency", name)], up == Some(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is() {
        let readiness = Readiness::default();
        assert!(readiness.pending().is_empty());
        let dns = readiness.register("dns");
        let web = readiness.register("web");
        assert_eq!(readiness.pending(), ["dns", "web"]);
        assert!(!readiness.is_ready("dns") && !readiness.is_ready("unknown"));
        dns.set(true);
        assert!(readiness.is_ready("dns"));
        assert_eq!(readiness.pending(), ["web"]);
        web.set(true);
        assert!(readiness.pending().is_empty());
        web.set(false);
        assert_eq!(readiness.pending(), ["web"]);
    }

    #[test]
    fn a_shared_dependency_is_reported_but_never_pending() {
        let readiness = Readiness::default();
        readiness.register("dns").set(true);
        let database = readiness.register_shared("database");
        let report = readiness.report();
        assert!(report.is_ready());
        assert_eq!(report.text(), "ready\ndatabase: not checked yet\n");
        database.set(false);
        let report = readiness.report();
        assert!(
            report.is_ready(),
            "a shared database down is not this box's fault"
        );
        assert!(
            report.text().starts_with("ready\ndatabase: down"),
            "{report:?}"
        );
        database.set(true);
        assert_eq!(readiness.report().text(), "ready\ndatabase: up\n");
    }

    #[test]
    fn draining_is_not_ready() {
        let readiness = Readiness::default();
        readiness.register("dns").set(true);
        readiness.drain();
        assert_eq!(readiness.pending(), ["draining"]);
        assert_eq!(readiness.report().text(), "not ready: draining\n");
        let registry = crate::ops::metrics::Registry::default();
        registry.register(readiness.clone());
        let text = registry.render();
        assert!(text.contains("\nonebox_ready 0\n"), "{text}");
        assert!(
            text.contains("onebox_ready_check{check=\"draining\"} 1"),
            "{text}"
        );
    }
}
