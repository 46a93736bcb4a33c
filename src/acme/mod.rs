//! Automatic HTTPS: onebox obtains and renews its own certificates over ACME (RFC 8555), on
//! instant-acme, while it serves.
//!
//! - `plan` turns `[web.acme]` into what to keep: the names, the challenge (dns-01 by
//!   default when every name is in a zone onebox serves, else http-01), the CA;
//! - `store` keeps the account, certificates and status under `state_dir/acme/` behind a
//!   small interface; `dbstore` keeps the account and certificates in the database instead
//!   (`web.acme.storage = "database"`), for several boxes: one orders at a time under a lease,
//!   each serves what is stored, and http-01 answers are found by every box;
//! - `client` is the HTTP client to the CA (rustls with ring; `Retry-After` understood);
//! - `order` makes one issuance: the answers go to the services through
//!   `ops::challenges` — a TXT overlay on onebox's own zones (dns-01, checked on every
//!   reachable name server first by `dns01`), an HTTP token (http-01), an `acme-tls/1`
//!   certificate (tls-alpn-01);
//! - `manager` keeps the certificate: served from the store at start, ordered in the
//!   background, renewed at the CA's suggested time (ARI, RFC 9773) or `renew_before`,
//!   swapped into `ops::certs` without dropping a connection, failures retried with back-off;
//! - `status` is what `onebox cert status` and `onebox doctor` read.
//!
//! This module sits beside `cli`: it uses `config`, `ops`, the DNS module's zone reader
//! (`dns::zone`) and, for the shared storage, `db`; nothing uses it but the command line and
//! the doctor.

mod cert;
mod client;
mod dbstore;
mod dns01;
mod manager;
mod order;
mod plan;
mod schedule;
mod status;
pub mod store;

pub use cert::CertInfo;
pub use manager::rfc3339;
pub use status::{CertStatus, status};

use tokio_util::sync::CancellationToken;

use self::client::Http;
use self::dbstore::DbStore;
use self::manager::Manager;
use self::order::Answering;
use self::plan::Plan;
use self::store::FileStore;
use crate::config::{AcmeStorage, Config};
use crate::db::Db;
use crate::ops::certs::Certificates;
use crate::ops::challenges::Challenges;
use crate::ops::ready::Readiness;

/// Why ACME could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration asks for something that cannot work.
    #[error("{0}")]
    Config(String),
    /// The HTTP client to the CA could not be built.
    #[error(transparent)]
    Client(#[from] client::ClientError),
}

/// Whether `[web.acme]` can work with this configuration (the names, the challenge, the zones
/// and listeners it needs, the root certificates); `Err` says which key to fix.
pub fn check(config: &Config) -> Result<(), String> {
    Plan::from_config(config)?;
    Http::new(&config.web.acme.ca_roots).map_err(|e| crate::ops::chain(&e).to_string())?;
    Ok(())
}

/// ACME, ready to run.
pub struct Acme {
    kept: Kept,
}

/// The manager, on the configured storage.
enum Kept {
    Files(Box<Manager<FileStore>>),
    Database(Box<Manager<DbStore>>, DbStore),
}

impl Acme {
    /// Reads `[web.acme]` and what the store holds, and puts a stored certificate in service
    /// at once; `None` when ACME is off. The services answer challenges through `challenges`
    /// and serve what lands in `certificates`. `database` is the application's, for
    /// `web.acme.storage = "database"`.
    pub async fn start(
        config: &Config,
        certificates: &Certificates,
        challenges: &Challenges,
        database: Option<&Db>,
    ) -> Result<Option<Self>, StartError> {
        let acme = &config.web.acme;
        if !acme.enabled {
            return Ok(None);
        }
        let plan = Plan::from_config(config).map_err(StartError::Config)?;
        let http = Http::new(&acme.ca_roots)?;
        let local = FileStore::new(&config.state_dir);
        let status = status::load_status(&local, &plan);
        let answering = Answering {
            challenges: challenges.clone(),
            dns: config.dns.clone(),
        };
        let kept = match acme.storage {
            AcmeStorage::Files => {
                let current = manager::load_issued(&local, &plan).await;
                announce(&plan, current.as_ref(), &local.root().display().to_string());
                let manager = Manager::new(
                    plan,
                    local.clone(),
                    local,
                    http,
                    certificates.clone(),
                    answering,
                    current,
                    status,
                );
                Kept::Files(Box::new(manager))
            }
            AcmeStorage::Database => {
                let Some(database) = database else {
                    return Err(StartError::Config(
                        "key web.acme.storage: \"database\" needs the database (app.enabled)"
                            .to_owned(),
                    ));
                };
                let store = DbStore::new(database.clone(), acme.storage_poll);
                challenges.share_http(store.answers());
                // The database may be down or not migrated yet: then the poll brings it.
                let current = manager::load_issued(&store, &plan).await;
                announce(&plan, current.as_ref(), "the database");
                if !plan.orders {
                    tracing::info!(
                        names = %plan.names.join(" "),
                        "acme: this box serves the names' zone as a secondary; its primary \
                         orders the certificate (dns-01), and this box serves what it stores"
                    );
                }
                let manager = Manager::new(
                    plan,
                    store.clone(),
                    local,
                    http,
                    certificates.clone(),
                    answering,
                    current,
                    status,
                );
                Kept::Database(Box::new(manager), store)
            }
        };
        Ok(Some(Self { kept }))
    }

    /// Keeps the certificate until `shutdown`, starting once the DNS and web services are
    /// ready in `readiness` (listening, zones loaded): a CA asked to validate before then would
    /// find nobody to answer, and count a failed validation.
    pub async fn run(self, readiness: Readiness, shutdown: CancellationToken) {
        while !(readiness.is_ready("dns") && readiness.is_ready("web")) {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                () = shutdown.cancelled() => return,
            }
        }
        match self.kept {
            Kept::Files(manager) => manager.run(shutdown).await,
            Kept::Database(manager, store) => {
                // Nothing is ordered before the tables are there (the migrations are applied
                // at start, by one box) and the database answers.
                let mut told = false;
                while let Err(error) = store.usable().await {
                    if !told {
                        tracing::info!(
                            error = %crate::ops::chain(&error),
                            "acme: waiting for the database (web.acme.storage = \"database\")"
                        );
                        told = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
                manager.run(shutdown).await;
            }
        }
    }
}

/// Says what is served at start, from `place`.
fn announce(plan: &Plan, current: Option<&cert::Issued>, place: &str) {
    match current {
        Some(issued) => tracing::info!(
            names = %issued.info.names.join(" "),
            not_after = %manager::rfc3339(issued.info.not_after),
            storage = place,
            "acme: serving the stored certificate"
        ),
        None if !plan.orders => tracing::info!(
            names = %plan.names.join(" "),
            storage = place,
            "acme: no certificate stored yet; serving one when the zone's primary stores it"
        ),
        None => tracing::info!(
            names = %plan.names.join(" "),
            challenge = plan.challenge.as_str(),
            ca = %plan.directory,
            "acme: no certificate stored yet; ordering one in the background"
        ),
    }
}
