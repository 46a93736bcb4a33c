//! Sessions as the database last said, kept briefly in memory: a signed-in reader's pages
//! cannot come from the page cache, and without this every one of them would cost a session
//! lookup (a query joining `sessions` and `users`) before its own query.
//!
//! A session found in the database is kept for `app.page_cache_ttl` (1 s; `0s`: never kept),
//! the time by which a write through another box may show late anyway. Within it, a session
//! ended through this box (signing out, signing in again) ends at once: it is forgotten here
//! as it is deleted. One ended through another box sharing the database, or a user's role
//! changed with `onebox user`, shows within the TTL. A session is never used past its
//! `expires_at`, kept or not.
//!
//! Like the page cache, the kept sessions are an immutable map swapped whole on a change
//! (arc-swap): a hit takes no lock. At most [`MAX_ENTRIES`] are kept; beyond, the map starts
//! afresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{NaiveDateTime, Utc};

use super::SignedIn;

/// The most sessions kept at once.
pub const MAX_ENTRIES: usize = 1024;

/// The sessions found in the database within the TTL.
#[derive(Debug)]
pub struct KnownSessions {
    ttl: Duration,
    entries: ArcSwap<HashMap<String, Arc<Known>>>,
}

/// One session as found.
#[derive(Debug)]
struct Known {
    found: Instant,
    expires_at: NaiveDateTime,
    who: SignedIn,
}

impl KnownSessions {
    /// Keeping each session found for `ttl` (zero: none is kept).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// The session with digest `id`, if it was found within the TTL and has not expired.
    pub fn get(&self, id: &str) -> Option<SignedIn> {
        let entries = self.entries.load();
        let known = entries.get(id)?;
        (known.found.elapsed() < self.ttl && known.expires_at > Utc::now().naive_utc())
            .then(|| known.who.clone())
    }

    /// Keeps a session just found in the database.
    pub fn keep(&self, who: &SignedIn, expires_at: NaiveDateTime) {
        if self.ttl.is_zero() {
            return;
        }
        let known = Arc::new(Known {
            found: Instant::now(),
            expires_at,
            who: who.clone(),
        });
        self.entries.rcu(|entries| {
            let mut entries = if entries.len() >= MAX_ENTRIES {
                HashMap::new()
            } else {
                // Those past the TTL go as the map is copied.
                entries
                    .iter()
                    .filter(|(_, known)| known.found.elapsed() < self.ttl)
                    .map(|(id, known)| (id.clone(), Arc::clone(known)))
                    .collect()
            };
            entries.insert(who.session_id.clone(), Arc::clone(&known));
            entries
        });
    }

    /// Forgets a session ended through this box.
    pub fn forget(&self, id: &str) {
        if self.entries.load().contains_key(id) {
            self.entries.rcu(|entries| {
                let mut entries = HashMap::clone(entries);
                entries.remove(id);
                entries
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Viewer;
    use crate::db::users::Role;

    fn who(id: &str) -> SignedIn {
        SignedIn {
            viewer: Viewer {
                id: 1,
                email: "ada@foobar.com".to_owned(),
                display_name: "Ada".to_owned(),
                role: Role::Editor,
            },
            csrf: "csrf".to_owned(),
            session_id: id.to_owned(),
        }
    }

    fn in_an_hour() -> NaiveDateTime {
        Utc::now().naive_utc() + chrono::Duration::hours(1)
    }

    #[test]
    fn kept_for_the_ttl_forgotten_on_sign_out() {
        let known = KnownSessions::new(Duration::from_secs(60));
        assert!(known.get("a").is_none());
        known.keep(&who("a"), in_an_hour());
        known.keep(&who("b"), in_an_hour());
        assert_eq!(known.get("a").map(|w| w.session_id), Some("a".to_owned()));
        known.forget("a");
        assert!(known.get("a").is_none());
        assert!(known.get("b").is_some());
    }

    #[test]
    fn never_past_the_ttl_or_the_session_s_end() {
        let known = KnownSessions::new(Duration::from_millis(50));
        known.keep(&who("a"), in_an_hour());
        known.keep(
            &who("gone"),
            Utc::now().naive_utc() - chrono::Duration::seconds(1),
        );
        assert!(known.get("a").is_some());
        assert!(known.get("gone").is_none(), "expired");
        std::thread::sleep(Duration::from_millis(60));
        assert!(known.get("a").is_none(), "past the TTL");
        let off = KnownSessions::new(Duration::ZERO);
        off.keep(&who("a"), in_an_hour());
        assert!(off.get("a").is_none());
    }
}
