//! Throttling of failed sign-ins, shared through the database: guessing passwords gets slow,
//! on every box at once.
//!
//! Failures are counted per client address and per e-mail address. Once either has
//! `app.signin_max_failures` failures within `app.signin_window` (counted from the first of
//! them), every sign-in for it is refused with 429 and `Retry-After` until that window ends —
//! even with the right password. A successful sign-in clears the e-mail address's count (not
//! the client's: one valid account must not reset the count of a client guessing others).
//!
//! - IPv6 clients are counted per /64, the block one customer usually gets; IPv4 per address.
//! - The counts live in the database (`db::shared`, table `signin_failures`, each subject by
//!   the SHA-256 of `client:<address>` or `email:<address>`), so that several boxes behind a
//!   load balancer share them: a guesser gets `signin_max_failures` tries per window in all,
//!   not per box, and a restart forgets nothing. Counting is one atomic statement per subject
//!   (two boxes counting at once count two). The database watcher deletes expired windows
//!   (`app::health`). Signing in needs the database anyway (the users are there), so a
//!   database that is down costs nothing more than the sign-in itself.
//! - Windows are timed with the boxes' clocks (keep them in sync: NTP).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::db::{Db, DbError, millis, now_ms, shared};

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A client address (IPv6: its /64).
    Client(IpAddr),
    /// An e-mail address, lower-case.
    Email(String),
}

impl Key {
    /// The row's subject: the SHA-256 of the key, in hex (64 characters whatever the address).
    fn subject(&self) -> String {
        let text = match self {
            Self::Client(ip) => format!("client:{ip}"),
            Self::Email(email) => format!("email:{email}"),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        data_encoding::HEXLOWER.encode(digest.as_ref())
    }
}

/// The sign-in limits (`app.signin_max_failures` within `app.signin_window`).
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    window: Duration,
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
        Self {
            max_failures: max_failures.max(1),
            window,
        }
    }

    /// `None` if a sign-in for `email` from `client` may be tried now, else the seconds to
    /// wait (at least 1).
    pub async fn check(
        &self,
        db: &Db,
        client: Option<IpAddr>,
        email: &str,
    ) -> Result<Option<u64>, DbError> {
        let subjects: Vec<String> = keys(client, email).map(|key| key.subject()).collect();
        let found = shared::failures(db, &subjects).await?;
        Ok(self.wait(now_ms(), &found))
    }

    /// The longest wait the windows `found` impose at `now` (ms), if any.
    fn wait(&self, now: i64, found: &[shared::Failures]) -> Option<u64> {
        let window = millis(self.window);
        found
            .iter()
            .filter(|w| w.failures >= self.max_failures)
            .map(|w| w.window_start_ms.saturating_add(window) - now)
            .filter(|left| *left > 0)
            .max()
            .map(|left| u64::try_from(left).unwrap_or(0).div_ceil(1000).max(1))
    }

    /// Counts a failed sign-in for `email` from `client`.
    pub async fn failed(
        &self,
        db: &Db,
        client: Option<IpAddr>,
        email: &str,
    ) -> Result<(), DbError> {
        let now = now_ms();
        for key in keys(client, email) {
            shared::fail(db, &key.subject(), now, now - millis(self.window)).await?;
        }
        Ok(())
    }

    /// Clears the failures of `email` after a successful sign-in.
    pub async fn succeeded(&self, db: &Db, email: &str) -> Result<(), DbError> {
        shared::clear(db, &Key::Email(email.to_lowercase()).subject()).await
    }

    /// Deletes the windows that have ended; returns how many.
    pub async fn purge(&self, db: &Db) -> Result<u64, DbError> {
        shared::purge_failures(db, now_ms() - millis(self.window)).await
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
    fn the_wait_is_what_is_left_of_a_full_window() {
        let throttle = Throttle::new(3, 15 * MINUTE);
        let window = |start, failures| shared::Failures {
            window_start_ms: start,
            failures,
        };
        assert_eq!(throttle.wait(1000, &[window(0, 2)]), None, "not full");
        assert_eq!(throttle.wait(3000, &[window(0, 3)]), Some(15 * 60 - 3));
        assert_eq!(throttle.wait(15 * 60_000 - 1, &[window(0, 3)]), Some(1));
        assert_eq!(throttle.wait(15 * 60_000, &[window(0, 3)]), None, "over");
        assert_eq!(
            throttle.wait(0, &[window(0, 3), window(-60_000, 9)]),
            Some(15 * 60),
            "the longest wait"
        );
    }

    #[tokio::test]
    async fn per_client_and_per_email_through_the_database() {
        let (_dir, db) = crate::db::migrated().await;
        let throttle = Throttle::new(2, MINUTE);
        let check = |client, email: &'static str| {
            let (throttle, db) = (&throttle, &db);
            async move { throttle.check(db, client, email).await.expect("check") }
        };
        // One client guessing many accounts: the client is refused, for any account.
        throttle
            .failed(&db, ip("192.0.2.1"), "a@x.org")
            .await
            .expect("count");
        throttle
            .failed(&db, ip("192.0.2.1"), "b@x.org")
            .await
            .expect("count");
        assert!(check(ip("192.0.2.1"), "c@x.org").await.is_some());
        assert!(check(ip("192.0.2.2"), "c@x.org").await.is_none());
        // Many clients guessing one account: the account is refused, from anywhere.
        throttle
            .failed(&db, ip("198.51.100.1"), "d@x.org")
            .await
            .expect("count");
        throttle
            .failed(&db, ip("198.51.100.2"), "d@x.org")
            .await
            .expect("count");
        assert!(check(ip("203.0.113.9"), "d@x.org").await.is_some());
        assert!(check(None, "d@x.org").await.is_some());
        assert!(check(None, "e@x.org").await.is_none());
        // Success clears the account, not the client.
        throttle.succeeded(&db, "D@x.org").await.expect("clear");
        assert!(check(ip("203.0.113.9"), "d@x.org").await.is_none());
        assert!(check(ip("192.0.2.1"), "z@x.org").await.is_some());
        assert_eq!(throttle.purge(&db).await.expect("purge"), 0, "none over");
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            block("2001:db8:1:2::1".parse().expect("ip")),
            block("2001:db8:1:2:ffff::9".parse().expect("ip"))
        );
        assert_ne!(
            block("2001:db8:1:2::1".parse().expect("ip")),
            block("2001:db8:1:3::1".parse().expect("ip"))
        );
        assert_eq!(
            block("::ffff:192.0.2.1".parse().expect("ip")),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
        assert_ne!(
            Key::Email("a@x.org".into()).subject(),
            Key::Client("192.0.2.1".parse().expect("ip")).subject()
        );
    }
}
