//! Throttling of failed sign-ins, in memory: guessing passwords gets slow.
//!
//! Failures are counted per client address and per e-mail address. Once either has
//! `app.signin_max_failures` failures within `app.signin_window` (counted from the first of
//! them), every sign-in for it is refused with 429 and `Retry-After` until that window ends —
//! even with the right password. A successful sign-in clears the e-mail address's count (not
//! the client's: one valid account must not reset the count of a client guessing others).
//!
//! - IPv6 clients are counted per /64, the block one customer usually gets; IPv4 per address.
//! - Memory is bounded: at most [`MAX_TRACKED`] keys; when full, expired entries are dropped,
//!   then the oldest.
//! - The counts live in this process only: they are lost on restart, and several boxes behind a
//!   load balancer each throttle on their own (an attacker gets `signin_max_failures` tries per
//!   box per window). One box is what onebox is for; a shared store would be needed beyond it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The most keys (client addresses and e-mail addresses) tracked at once.
pub const MAX_TRACKED: usize = 10_000;

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A client address (IPv6: its /64).
    Client(IpAddr),
    /// An e-mail address, lower-case.
    Email(String),
}

/// Failures of one key in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the first failure of the window happened.
    start: Instant,
    /// Failures since then.
    failures: u32,
}

/// The failed sign-ins of this process.
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    windows: Mutex<HashMap<Key, Window>>,
}

/// The address of the client, as the web origin put it in the request's extensions (absent
/// when the router is called some other way).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<SocketAddr>().map(|a| a.ip())))
    }
}

impl Throttle {
    /// Refuses a key after `max_failures` failures within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, MAX_TRACKED)
    }

    fn with_capacity(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            capacity: capacity.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `None` if a sign-in for `email` from `client` may be tried now, else the seconds to
    /// wait (at least 1).
    pub fn check(&self, client: Option<IpAddr>, email: &str) -> Option<u64> {
        self.check_at(Instant::now(), client, email)
    }

    /// Counts a failed sign-in for `email` from `client`.
    pub fn failed(&self, client: Option<IpAddr>, email: &str) {
        self.failed_at(Instant::now(), client, email);
    }

    /// Clears the failures of `email` after a successful sign-in.
    pub fn succeeded(&self, email: &str) {
        self.lock().remove(&Key::Email(email.to_lowercase()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        // A panic while holding the lock cannot leave the map inconsistent: use it anyway.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_at(&self, now: Instant, client: Option<IpAddr>, email: &str) -> Option<u64> {
        let windows = self.lock();
        keys(client, email)
            .filter_map(|key| windows.get(&key))
            .filter(|w| w.failures >= self.max_failures)
            .filter_map(|w| (w.start + self.window).checked_duration_since(now))
            .filter(|left| !left.is_zero())
            .max()
            .map(|left| left.as_secs_f64().ceil().max(1.0) as u64)
    }

    fn failed_at(&self, now: Instant, client: Option<IpAddr>, email: &str) {
        let mut windows = self.lock();
        for key in keys(client, email) {
            if !windows.contains_key(&key) && windows.len() >= self.capacity {
                self.make_room(&mut windows, now);
            }
            let window = windows.entry(key).or_insert(Window {
                start: now,
                failures: 0,
            });
            if now.duration_since(window.start) >= self.window {
                *window = Window {
                    start: now,
                    failures: 0,
                };
            }
            window.failures = window.failures.saturating_add(1);
        }
    }

    /// Drops expired windows; if none had expired, the oldest one.
    fn make_room(&self, windows: &mut HashMap<Key, Window>, now: Instant) {
        let before = windows.len();
        windows.retain(|_, w| now.duration_since(w.start) < self.window);
        if windows.len() < before {
            return;
        }
        let oldest = windows
            .iter()
            .min_by_key(|(_, w)| w.start)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            windows.remove(&key);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// The keys a sign-in counts against.
fn keys(client: Option<IpAddr>, email: &str) -> impl Iterator<Item = Key> {
    let client = client.map(|ip| Key::Client(block(ip)));
    client
        .into_iter()
        .chain(std::iter::once(Key::Email(email.to_lowercase())))
}

/// An IPv4 address itself (or an IPv4-mapped IPv6 one); the /64 of an IPv6 address.
fn block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from_bits(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn refused_after_max_failures_until_the_window_ends() {
        let throttle = Throttle::new(3, 15 * MINUTE);
        let t0 = Instant::now();
        let me = ip("192.0.2.1");
        for n in 0..3 {
            assert_eq!(throttle.check_at(t0, me, "a@x.org"), None, "try {n}");
            throttle.failed_at(t0 + Duration::from_secs(n), me, "a@x.org");
        }
        let wait = throttle.check_at(t0 + Duration::from_secs(3), me, "a@x.org");
        assert_eq!(wait, Some(15 * 60 - 3));
        assert_eq!(
            throttle.check_at(t0 + 15 * MINUTE - Duration::from_millis(1), me, "a@x.org"),
            Some(1)
        );
        assert_eq!(throttle.check_at(t0 + 15 * MINUTE, me, "a@x.org"), None);
        // The next failure starts a new window.
        throttle.failed_at(t0 + 16 * MINUTE, me, "a@x.org");
        assert_eq!(throttle.check_at(t0 + 16 * MINUTE, me, "a@x.org"), None);
    }

    #[test]
    fn per_client_and_per_email() {
        let throttle = Throttle::new(2, MINUTE);
        let t0 = Instant::now();
        // One client guessing many accounts: the client is refused, for any account.
        throttle.failed_at(t0, ip("192.0.2.1"), "a@x.org");
        throttle.failed_at(t0, ip("192.0.2.1"), "b@x.org");
        assert!(throttle.check_at(t0, ip("192.0.2.1"), "c@x.org").is_some());
        assert!(throttle.check_at(t0, ip("192.0.2.2"), "c@x.org").is_none());
        // Many clients guessing one account: the account is refused, from anywhere.
        throttle.failed_at(t0, ip("198.51.100.1"), "d@x.org");
        throttle.failed_at(t0, ip("198.51.100.2"), "D@X.org");
        assert!(
            throttle
                .check_at(t0, ip("203.0.113.9"), "d@x.org")
                .is_some()
        );
        // No client address: the account alone.
        assert!(throttle.check_at(t0, None, "d@x.org").is_some());
        assert!(throttle.check_at(t0, None, "e@x.org").is_none());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let throttle = Throttle::new(2, MINUTE);
        let t0 = Instant::now();
        throttle.failed_at(t0, ip("2001:db8:1:2::1"), "a@x.org");
        throttle.failed_at(t0, ip("2001:db8:1:2:ffff::9"), "b@x.org");
        assert!(
            throttle
                .check_at(t0, ip("2001:db8:1:2::77"), "c@x.org")
                .is_some()
        );
        assert!(
            throttle
                .check_at(t0, ip("2001:db8:1:3::1"), "c@x.org")
                .is_none()
        );
        assert_eq!(
            block("::ffff:192.0.2.1".parse().expect("ip")),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn success_clears_the_account_not_the_client() {
        let throttle = Throttle::new(2, MINUTE);
        let t0 = Instant::now();
        throttle.failed_at(t0, ip("192.0.2.1"), "a@x.org");
        throttle.failed_at(t0, ip("192.0.2.1"), "a@x.org");
        throttle.succeeded("A@x.org");
        assert!(throttle.check_at(t0, ip("192.0.2.2"), "a@x.org").is_none());
        assert!(throttle.check_at(t0, ip("192.0.2.1"), "z@x.org").is_some());
    }

    #[test]
    fn memory_is_bounded() {
        let throttle = Throttle::with_capacity(5, MINUTE, 10);
        let t0 = Instant::now();
        for n in 0..100u32 {
            let at = t0 + Duration::from_millis(u64::from(n));
            throttle.failed_at(at, None, &format!("user{n}@x.org"));
            assert!(throttle.tracked() <= 10);
        }
        // The newest are kept, the oldest went first.
        throttle.failed_at(t0 + Duration::from_millis(100), None, "user99@x.org");
        assert_eq!(throttle.tracked(), 10);
        // After the window, expired entries go and make room at once.
        throttle.failed_at(t0 + 2 * MINUTE, None, "late@x.org");
        assert_eq!(throttle.tracked(), 1);
    }
}
