//! What `onebox cert status` prints and `onebox doctor` judges: per certificate the box
//! serves, its names, issuer, expiry, next renewal and last error — read from the store (the
//! database, with `web.acme.storage = "database"`) and the configured files, without asking
//! the running process. The next renewal and the last error are this box's (`state_dir`).

use std::fmt;
use std::time::SystemTime;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::cert::CertInfo;
use super::dbstore::DbStore;
use super::manager::{Status, from_unix, rfc3339, stored};
use super::plan::Plan;
use super::schedule;
use super::store::FileStore;
use crate::config::{AcmeStorage, Config};

/// One certificate, as the operator sees it.
#[derive(Debug, Clone)]
pub struct CertStatus {
    /// Where it comes from: `acme <directory>`, or a file.
    pub source: String,
    /// The names it is for (for ACME: the configured ones).
    pub names: Vec<String>,
    /// The certificate itself, if there is one.
    pub info: Option<CertInfo>,
    /// ACME only: when it will be renewed, and on what basis.
    pub next_renewal: Option<(SystemTime, String)>,
    /// ACME only: the next attempt after failures.
    pub next_attempt: Option<SystemTime>,
    /// ACME only: the last failure, and how many in a row.
    pub last_error: Option<(SystemTime, String, u32)>,
}

impl CertStatus {
    /// Whether it is managed by ACME (renewed by onebox).
    pub fn is_acme(&self) -> bool {
        self.source.starts_with("acme")
    }
}

/// Every certificate `config` has onebox serve: ACME's, then the configured files (or the
/// development certificate when there are none). `Err` when `[web.acme]` cannot work.
pub async fn status(config: &Config) -> Result<Vec<CertStatus>, String> {
    let mut all = Vec::new();
    if config.web.acme.enabled {
        let plan = Plan::from_config(config)?;
        let local = FileStore::new(&config.state_dir);
        let (issued, kept) = match config.web.acme.storage {
            // As before the database storage: an unreadable file reads as none yet.
            AcmeStorage::Files => (Ok(stored(&local, &plan).await.ok().flatten()), ""),
            AcmeStorage::Database => {
                let db = crate::db::Db::connect(config)
                    .await
                    .map_err(|e| crate::ops::chain(&e).to_string())?;
                let store = DbStore::new(db, config.web.acme.storage_poll);
                (stored(&store, &plan).await, ", kept in the database")
            }
        };
        let issued = issued.map_err(|e| {
            format!(
                "cannot read the ACME certificate: {}",
                crate::ops::chain(&e)
            )
        })?;
        let recorded = load_status(&local, &plan);
        let info = issued.map(|issued| issued.info);
        let next_renewal = match (&info, recorded.next_renewal) {
            (Some(_), Some(at)) => Some((
                from_unix(at),
                recorded.renewal_basis.clone().unwrap_or_default(),
            )),
            (Some(info), None) => Some((
                schedule::renewal_time(info.not_before, info.not_after, plan.renew_before),
                "web.acme.renew_before".to_owned(),
            )),
            (None, _) => None,
        };
        all.push(CertStatus {
            source: format!(
                "acme {} ({}{kept}{})",
                plan.directory,
                plan.challenge.as_str(),
                if plan.orders {
                    ""
                } else {
                    ", ordered by the zone's primary"
                }
            ),
            names: plan.names.clone(),
            info,
            next_renewal,
            next_attempt: recorded.next_attempt.map(from_unix),
            last_error: recorded
                .last_error
                .map(|e| (from_unix(e.at), e.message, recorded.failures)),
        });
    }
    let files: Vec<(String, std::path::PathBuf)> = if config.web.tls.certs.is_empty() {
        let dev = config.state_dir.join("dev-ca").join("cert.pem");
        vec![("development certificate".to_owned(), dev)]
    } else {
        config
            .web
            .tls
            .certs
            .iter()
            .map(|files| ("file".to_owned(), files.cert.clone()))
            .collect()
    };
    for (kind, path) in files {
        let info = CertificateDer::from_pem_file(&path)
            .ok()
            .and_then(|der| CertInfo::parse(&der).ok());
        all.push(CertStatus {
            source: format!("{kind} {}", path.display()),
            names: info.as_ref().map(|i| i.names.clone()).unwrap_or_default(),
            info,
            next_renewal: None,
            next_attempt: None,
            last_error: None,
        });
    }
    Ok(all)
}

/// The recorded status of `plan`'s certificate (default when none).
pub(super) fn load_status(store: &FileStore, plan: &Plan) -> Status {
    store
        .load_now(&plan.cert_key("status.json"))
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = SystemTime::now();
        if self.names.is_empty() {
            writeln!(f, "(no names)")?;
        } else {
            writeln!(f, "{}", self.names.join(" "))?;
        }
        writeln!(f, "  source:       {}", self.source)?;
        match &self.info {
            None => writeln!(f, "  certificate:  none yet")?,
            Some(info) => {
                writeln!(f, "  issuer:       {}", info.issuer)?;
                let left = match info.not_after.duration_since(now) {
                    Ok(left) => format!("in {} days", left.as_secs() / 86_400),
                    Err(_) => "EXPIRED".to_owned(),
                };
                writeln!(f, "  not after:    {} ({left})", rfc3339(info.not_after))?;
                if info.names != self.names {
                    writeln!(f, "  covers:       {}", info.names.join(" "))?;
                }
            }
        }
        if self.is_acme() {
            match &self.next_renewal {
                Some((at, basis)) => {
                    writeln!(f, "  next renewal: {} ({basis})", rfc3339(*at))?;
                }
                None => writeln!(
                    f,
                    "  next renewal: as soon as onebox runs (no certificate yet)"
                )?,
            }
            match &self.last_error {
                None => writeln!(f, "  last error:   none")?,
                Some((at, message, failures)) => {
                    writeln!(
                        f,
                        "  last error:   {} ({failures} in a row): {message}",
                        rfc3339(*at)
                    )?;
                    if let Some(next) = self.next_attempt {
                        writeln!(f, "  next attempt: {}", rfc3339(next))?;
                    }
                }
            }
        }
        Ok(())
    }
}
