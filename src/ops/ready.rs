//! Readiness: each service says when it is ready to serve, and `/readyz` reports all of them.
//!
//! A service registers a named [`Check`] at start (not ready), flips it when it is (the DNS
//! service once its zones are loaded, the web service once its certificates are valid), and
//! may flip it back. [`Readiness`] is a cheap handle shared by every service.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The readiness of every registered check of one process.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, Arc<AtomicBool>>>>,
}

/// One named readiness flag, owned by the service that registered it.
#[derive(Debug, Clone)]
pub struct Check {
    ready: Arc<AtomicBool>,
}

impl Readiness {
    /// Registers a check named `name`, not ready yet. Registering a name again returns the
    /// existing check.
    pub fn register(&self, name: &'static str) -> Check {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        let ready = checks.entry(name).or_default().clone();
        Check { ready }
    }

    /// Whether the check `name` is registered and ready.
    pub fn is_ready(&self, name: &str) -> bool {
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        checks
            .get(name)
            .is_some_and(|ready| ready.load(Ordering::Acquire))
    }

    /// The names of the checks that are not ready; empty when the process is ready.
    pub fn pending(&self) -> Vec<&'static str> {
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        checks
            .iter()
            .filter(|(_, ready)| !ready.load(Ordering::Acquire))
            .map(|(name, _)| *name)
            .collect()
    }
}

impl Check {
    /// Marks the check ready (or not).
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
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
}
