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
//! The kept sessions are one map behind a read-write lock, held for a lookup or an insert and
//! nothing else. (An immutable map swapped whole, as the page cache is, would copy every kept
//! session on each insert: with a thousand readers signed in, a million copies a second.) At
//! most [`MAX_ENTRIES`] are kept: a full map first drops those past the TTL, and starts afresh
//! if none is.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};

use super::SignedIn;

/// The most sessions kept at once.
pub const MAX_ENTRIES: usize = 1024;

/// The sessions found in the database within the TTL.
#[derive(Debug)]
pub struct KnownSessions {
    ttl: Duration,
    entries: RwLock<HashMap<String, Known>>,
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
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The session with digest `id`, if it was found within the TTL and has not expired.
    pub fn get(&self, id: &str) -> Option<SignedIn> {
        // Nothing panics while the lock is held: a poisoned map is still whole.
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let known = entries.get(id)?;
        (known.found.elapsed() < self.ttl && known.expires_at > Utc::now().naive_utc())
            .then(|| known.who.clone())
    }

    /// Keeps a session just found in the database.
    pub fn keep(&self, who: &SignedIn, expires_at: NaiveDateTime) {
        if self.ttl.is_zero() {
            return;
        }
        let known = Known {
            found: Instant::now(),
            expires_at,
            who: who.clone(),
        };
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, known| known.found.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(who.session_id.clone(), known);
    }

    /// Forgets a session ended through this box.
    pub fn forget(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
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

    #[test]
    fn a_full_map_drops_the_sessions_past_the_ttl_first() {
        let known = KnownSessions::new(Duration::from_secs(1));
        for n in 0..MAX_ENTRIES - 2 {
            known.keep(&who(&format!("old{n}")), in_an_hour());
        }
        std::thread::sleep(Duration::from_millis(1100));
        known.keep(&who("new0"), in_an_hour());
        known.keep(&who("new1"), in_an_hour());
        // Full: the old ones go, the new ones stay.
        known.keep(&who("new2"), in_an_hour());
        for id in ["new0", "new1", "new2"] {
            assert!(known.get(id).is_some(), "{id}");
        }
        assert_eq!(known.entries.read().map(|e| e.len()).ok(), Some(3));
        // Full of sessions within the TTL: it starts afresh.
        for n in 0..MAX_ENTRIES {
            known.keep(&who(&format!("more{n}")), in_an_hour());
        }
        assert!(known.entries.read().is_ok_and(|e| e.len() < MAX_ENTRIES));
    }
}
