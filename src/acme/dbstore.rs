//! The store in the database (`web.acme.storage = "database"`), for several boxes on one
//! database behind a balancer:
//!
//! - values (the account, the certificates and their private keys) in `acme_store`, one row
//!   per key, each replaced whole by one statement;
//! - the lease on a certificate is a row of the lease table (`db::leases`, the mechanism the
//!   migrations use) named `acme:<certificate>`, taken for [`LEASE_TTL`] and renewed every
//!   [`LEASE_RENEW`] by a task of its own while the order runs, so that a box that dies while
//!   ordering (`kill -9`) holds it at most [`LEASE_TTL`]; given back when the order ends;
//! - the http-01 answers of an order in `acme_challenges` (with an expiry), which every box's
//!   web service looks up for a token it did not publish itself
//!   (`ops::challenges::SharedAnswers`): the CA's validation may reach any box;
//! - every box looks for a certificate another obtained every `web.acme.storage_poll`.
//!
//! The database then holds the account key and the private keys (as Caddy's database storage
//! modules do): it, and its dumps, are as secret as `state_dir/acme/` is.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use super::store::{Secrecy, Store, StoreError};
use crate::db::{self, Db};
use crate::ops::challenges::SharedAnswers;

/// How long a lease on a certificate lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// How often the holder renews it while the order runs.
pub const LEASE_RENEW: Duration = Duration::from_secs(15);

/// How long a published http-01 answer stays answerable (an order is validated within minutes;
/// an answer a dead box left behind goes after this).
const ANSWER_TTL: Duration = Duration::from_secs(15 * 60);

/// The longest lease name the lease table takes.
const LEASE_NAME_MAX: usize = 64;

/// The store in the database.
#[derive(Debug, Clone)]
pub struct DbStore {
    db: Db,
    /// This process, as a lease holder.
    holder: String,
    poll: Duration,
    /// The leases held: each one's renewing task, stopped on release, or when the store goes
    /// (an upgrade's old process stops its ACME task; the lease then expires by itself).
    held: Arc<Mutex<HashMap<String, DropGuard>>>,
}

impl DbStore {
    /// The store in `db`; other boxes' certificates are looked for every `poll`.
    pub fn new(db: Db, poll: Duration) -> Self {
        Self {
            db,
            holder: db::leases::holder_id(),
            poll,
            held: Arc::default(),
        }
    }

    /// Where every box's web service finds the http-01 answers published here.
    pub fn answers(&self) -> Arc<dyn SharedAnswers> {
        Arc::new(Answers(self.db.clone()))
    }

    /// Whether the store can be used now (the database answers, its tables exist).
    pub async fn usable(&self) -> Result<(), StoreError> {
        db::acme::load(&self.db, "accounts").await?;
        Ok(())
    }
}

/// The lease table's name for the lease on `name`.
fn lease_name(name: &str) -> String {
    let mut lease = format!("acme:{name}");
    while lease.len() > LEASE_NAME_MAX {
        lease.pop();
    }
    lease
}

impl Store for DbStore {
    async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(db::acme::load(&self.db, key).await?)
    }

    async fn save(&self, key: &str, value: &[u8], _secrecy: Secrecy) -> Result<(), StoreError> {
        Ok(db::acme::save(&self.db, key, value).await?)
    }

    async fn lease(&self, name: &str) -> Result<bool, StoreError> {
        if self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
        {
            return Ok(false);
        }
        let lease = lease_name(name);
        db::leases::ensure_table(&self.db).await?;
        match db::leases::acquire(&self.db, &lease, &self.holder, LEASE_TTL).await? {
            db::leases::Acquired::Taken { holder, expires_in } => {
                tracing::debug!(
                    lease,
                    holder,
                    expires_in_s = expires_in.as_secs(),
                    "acme: another onebox holds the certificate's lease"
                );
                return Ok(false);
            }
            db::leases::Acquired::Held => {}
        }
        let stop = CancellationToken::new();
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), stop.clone().drop_guard());
        let (db, holder) = (self.db.clone(), self.holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(LEASE_RENEW) => {}
                    () = stop.cancelled() => return,
                }
                match db::leases::acquire(&db, &lease, &holder, LEASE_TTL).await {
                    Ok(db::leases::Acquired::Held) => {}
                    Ok(db::leases::Acquired::Taken { holder: other, .. }) => tracing::error!(
                        lease,
                        other,
                        "acme: the certificate's lease expired and was taken while ordering"
                    ),
                    Err(error) => tracing::warn!(
                        lease,
                        error = %crate::ops::chain(&error),
                        "acme: cannot renew the certificate's lease"
                    ),
                }
            }
        });
        Ok(true)
    }

    async fn release(&self, name: &str) {
        let stop = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let Some(stop) = stop else {
            return;
        };
        // Stops the renewing task.
        drop(stop);
        if let Err(error) = db::leases::release(&self.db, &lease_name(name), &self.holder).await {
            tracing::warn!(
                error = %crate::ops::chain(&error),
                "acme: cannot give the certificate's lease back; it expires by itself"
            );
        }
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.poll)
    }

    async fn publish_http(&self, token: &str, key_authorization: &str) -> Result<(), StoreError> {
        let expires = db::now_ms().saturating_add(db::millis(ANSWER_TTL));
        Ok(db::acme::publish_answer(&self.db, token, key_authorization, expires).await?)
    }

    async fn withdraw_http(&self, token: &str) {
        if let Err(error) = db::acme::withdraw_answer(&self.db, token).await {
            tracing::warn!(
                error = %crate::ops::chain(&error),
                "acme: cannot withdraw an http-01 answer from the database; it expires by itself"
            );
        }
    }
}

/// The http-01 answers in the database, as the web service looks them up.
#[derive(Debug)]
struct Answers(Db);

impl SharedAnswers for Answers {
    fn http(&self, token: &str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        let token = token.to_owned();
        Box::pin(async move {
            match db::acme::answer(&self.0, &token).await {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::warn!(
                        error = %crate::ops::chain(&error),
                        "acme: cannot look up an http-01 answer in the database"
                    );
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, DbStore, Db) {
        let (dir, db) = db::migrated().await;
        (dir, DbStore::new(db.clone(), Duration::from_secs(1)), db)
    }

    #[tokio::test]
    async fn one_box_holds_a_certificates_lease_until_it_gives_it_back() {
        let (_dir, first, db) = store().await;
        // Another box on the same database: a holder of its own.
        let second = DbStore::new(db, Duration::from_secs(1));
        assert!(first.lease("www.foobar.com").await.expect("lease"));
        assert!(!first.lease("www.foobar.com").await.expect("again"));
        assert!(!second.lease("www.foobar.com").await.expect("other box"));
        assert!(second.lease("other").await.expect("another name"));
        first.release("www.foobar.com").await;
        assert!(second.lease("www.foobar.com").await.expect("released"));
        second.release("www.foobar.com").await;
        second.release("other").await;
    }

    #[tokio::test]
    async fn values_and_answers_are_seen_by_every_box() {
        let (_dir, first, db) = store().await;
        let second = DbStore::new(db, Duration::from_secs(1));
        first.usable().await.expect("usable");
        first
            .save("certs/x/key.pem", b"secret", Secrecy::Secret)
            .await
            .expect("save");
        assert_eq!(
            second
                .load("certs/x/key.pem")
                .await
                .expect("load")
                .as_deref(),
            Some(&b"secret"[..])
        );
        first
            .publish_http("tok", "tok.print")
            .await
            .expect("publish");
        let answers = second.answers();
        assert_eq!(answers.http("tok").await.as_deref(), Some("tok.print"));
        first.withdraw_http("tok").await;
        assert_eq!(answers.http("tok").await, None);
    }

    #[test]
    fn lease_names_fit_the_table() {
        assert_eq!(lease_name("www.foobar.com"), "acme:www.foobar.com");
        assert_eq!(lease_name(&"a".repeat(300)).len(), LEASE_NAME_MAX);
    }
}
