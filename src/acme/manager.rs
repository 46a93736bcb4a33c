//! The certificate's life while onebox serves: load what the store holds, serve it, order
//! when there is nothing usable or renewal is due, retry failures with back-off.
//!
//! The loop, one step at a time:
//!
//! 1. waiting out a failure's back-off (or the CA's `Retry-After`), if there is one;
//! 2. without a usable certificate (none, expired, or not covering the configured names),
//!    order at once — the old certificate (or the development one) serves meanwhile;
//! 3. otherwise, when renewal information is due for a refresh, ask the CA (RFC 9773; its
//!    `Retry-After` paces the next ask); a suggested window replaces `renew_before`;
//! 4. at the renewal time, order; until then, sleep.
//!
//! An order takes the store's lease on the certificate first and re-reads the store (another
//! process sharing it may have renewed meanwhile). A new certificate is stored, then swapped
//! into the shared certificates handle: the next handshake gets it, open connections keep the
//! old one. A failure is logged once, with the CA's own text, and recorded for
//! `onebox cert status`.
//!
//! When the store is shared by several boxes (the database), each box also looks in it every
//! `web.acme.storage_poll` and serves a newer certificate another box stored; a box that does
//! not order (`Plan::orders`) only does that. The status (`status.json`: next renewal, last
//! error) is this box's own, in `state_dir`, whatever the store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::{Account, NewAccount};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::cert::Issued;
use super::client::Http;
use super::order::{self, AcmeError, Answering, Request};
use super::plan::Plan;
use super::schedule;
use super::store::{FileStore, Secrecy, Store, StoreError};
use crate::ops::certs::{Certificates, Source};

/// How long to wait for another process's lease before looking again.
const LEASE_WAIT: Duration = Duration::from_secs(60);

/// Renewal information is asked for again after this long when the CA did not say.
const ARI_DEFAULT_POLL: Duration = Duration::from_secs(6 * 3600);

/// What `onebox cert status` reads besides the certificate (`status.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The names ordered.
    pub names: Vec<String>,
    /// The challenge used.
    pub challenge: String,
    /// When the certificate will be renewed (Unix seconds).
    pub next_renewal: Option<u64>,
    /// Why then: `renew_before`, or the CA's window.
    pub renewal_basis: Option<String>,
    /// The next attempt after failures (Unix seconds).
    pub next_attempt: Option<u64>,
    /// Failures in a row.
    pub failures: u32,
    /// The last failure.
    pub last_error: Option<LastError>,
}

/// One failure, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// When (Unix seconds).
    pub at: u64,
    /// What the CA (or the network) said.
    pub message: String,
}

/// The account as stored: its credentials and the contacts it was registered with.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    contact: Vec<String>,
    credentials: instant_acme::AccountCredentials,
}

/// The renewal information last received.
#[derive(Debug, Default)]
struct Ari {
    /// The window, and the time drawn in it.
    window: Option<(SystemTime, SystemTime, SystemTime)>,
    /// When to ask again.
    next_poll: Option<SystemTime>,
}

/// One managed certificate.
pub struct Manager<S: Store> {
    plan: Plan,
    store: S,
    /// Where this box's status is kept (`state_dir/acme/`, whatever `store` is).
    local: FileStore,
    /// When to look in a shared store for a certificate another box stored next.
    next_poll: SystemTime,
    http: Http,
    certificates: Certificates,
    answering: Answering,
    current: Option<Issued>,
    status: Status,
    ari: Ari,
    /// After a failure: not before then.
    retry_at: Option<SystemTime>,
    /// The CA no longer knows the stored account: make a new one.
    new_account: bool,
    /// Whether the status was saved since the start.
    status_saved: bool,
}

impl<S: Store> Manager<S> {
    /// A manager serving `current` (what the store held) from the start.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: Plan,
        store: S,
        local: FileStore,
        http: Http,
        certificates: Certificates,
        answering: Answering,
        current: Option<Issued>,
        status: Status,
    ) -> Self {
        let mut manager = Self {
            plan,
            store,
            local,
            next_poll: SystemTime::now(),
            http,
            certificates,
            answering,
            current: None,
            status,
            ari: Ari::default(),
            retry_at: None,
            new_account: false,
            status_saved: false,
        };
        manager.status.names = manager.plan.names.clone();
        manager.status.challenge = manager.plan.challenge.as_str().to_owned();
        if let Some(at) = manager.status.next_attempt.map(from_unix)
            && at > SystemTime::now()
        {
            // The back-off of a previous run still holds: a restart does not reset it.
            manager.retry_at = Some(at);
        }
        manager.install(current);
        manager
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let mut now = SystemTime::now();
            if let Some(every) = self.store.poll_interval()
                && self.next_poll <= now
            {
                self.look_for_newer().await;
                now = SystemTime::now();
                self.next_poll = now + every;
            }
            let wake = match self.next_step(now) {
                Step::Wait(until) => until,
                Step::PollAri => {
                    self.poll_ari().await;
                    continue;
                }
                Step::Order(why) => {
                    tracing::info!(names = %self.plan.names.join(" "), why, "acme: ordering a certificate");
                    self.attempt().await;
                    continue;
                }
            };
            let wake = match self.store.poll_interval() {
                Some(_) => wake.min(self.next_poll),
                None => wake,
            };
            let next_renewal = self.renewal_time().map(to_unix);
            if next_renewal != self.status.next_renewal || !self.status_saved {
                self.status.next_renewal = next_renewal;
                self.save_status().await;
            }
            let wait = wake.duration_since(now).unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// What to do now.
    fn next_step(&self, now: SystemTime) -> Step {
        if !self.plan.orders {
            // The zone's primary orders; the poll brings what it stores.
            return Step::Wait(self.next_poll);
        }
        if let Some(at) = self.retry_at
            && at > now
        {
            return Step::Wait(at);
        }
        let Some(current) = &self.current else {
            return Step::Order("no certificate yet");
        };
        if !current.info.covers(&self.plan.names) {
            return Step::Order("the certificate does not cover every configured name");
        }
        if !current.info.valid_at(now) {
            return Step::Order("the certificate expired");
        }
        match self.ari.next_poll {
            Some(at) if at <= now => return Step::PollAri,
            None if current.info.ari_id.is_some() => return Step::PollAri,
            _ => {}
        }
        let renewal = self.renewal_time().unwrap_or(now);
        if renewal <= now {
            return Step::Order("renewal is due");
        }
        let wake = self.ari.next_poll.map_or(renewal, |at| at.min(renewal));
        Step::Wait(wake)
    }

    /// When the current certificate is to be renewed: the CA's window if it gave one, else
    /// `renew_before` (capped at half the lifetime).
    fn renewal_time(&self) -> Option<SystemTime> {
        let current = self.current.as_ref()?;
        if let Some((_, _, chosen)) = self.ari.window {
            return Some(chosen);
        }
        Some(schedule::renewal_time(
            current.info.not_before,
            current.info.not_after,
            self.plan.renew_before,
        ))
    }

    /// Asks the CA for renewal information about the current certificate.
    async fn poll_ari(&mut self) {
        let now = SystemTime::now();
        let Some(id) = self
            .current
            .as_ref()
            .and_then(|c| c.info.certificate_identifier())
        else {
            self.ari.next_poll = Some(now + ARI_DEFAULT_POLL);
            return;
        };
        let asked = async {
            let account = self.account().await?;
            account.renewal_info(&id).await.map_err(AcmeError::from)
        };
        match asked.await {
            Ok((info, retry)) => {
                let window = &info.suggested_window;
                let start = offset_time(window.start);
                let end = offset_time(window.end);
                let chosen = match self.ari.window {
                    Some((s, e, chosen)) if s == start && e == end => chosen,
                    _ => {
                        let chosen = schedule::in_window(start, end, schedule::random());
                        tracing::info!(
                            window_start = %rfc3339(start),
                            window_end = %rfc3339(end),
                            renewal = %rfc3339(chosen),
                            explanation = info.explanation_url.as_deref().unwrap_or(""),
                            "acme: the CA's renewal window (ARI) sets the renewal time"
                        );
                        chosen
                    }
                };
                self.ari.window = Some((start, end, chosen));
                self.status.renewal_basis = Some(format!(
                    "the CA's renewal window {} to {}",
                    rfc3339(start),
                    rfc3339(end)
                ));
                let retry = retry.clamp(Duration::from_secs(1), Duration::from_secs(86_400));
                self.ari.next_poll = Some(now + retry);
            }
            Err(AcmeError::Transport(text)) if text.contains("renewal information") => {
                // The CA offers no ARI: renew_before it is; ask again in a day.
                self.ari.next_poll = Some(now + Duration::from_secs(86_400));
            }
            Err(error) => {
                tracing::debug!(error = %crate::ops::chain(&error), "acme: no renewal information");
                self.ari.next_poll = Some(now + schedule::backoff(1, error.retry_after(), now));
            }
        }
    }

    /// One order, start to end, with its outcome recorded.
    async fn attempt(&mut self) {
        let name = self.plan.cert_id.clone();
        match self.store.lease(&name).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    certificate = name,
                    "acme: another onebox process is ordering this certificate; looking again later"
                );
                self.retry_at = Some(SystemTime::now() + LEASE_WAIT);
                return;
            }
            Err(error) => {
                let error = AcmeError::Local(crate::ops::chain(&error).to_string());
                self.failed(error).await;
                return;
            }
        }
        match self.adopt_stored().await {
            Ok(false) => {}
            Ok(true) => {
                self.store.release(&name).await;
                return;
            }
            Err(error) => {
                // Unknown whether another box renewed: no order on a guess.
                let error = AcmeError::Local(crate::ops::chain(&error).to_string());
                self.store.release(&name).await;
                self.failed(error).await;
                return;
            }
        }
        let request = Request {
            names: self.plan.names.clone(),
            challenge: self.plan.challenge,
            replaces: self
                .ari
                .window
                .and(self.current.as_ref())
                .and_then(|c| c.info.certificate_identifier()),
        };
        let outcome = async {
            let account = self.account().await?;
            order::issue(&account, &request, &self.answering, &self.store).await
        }
        .await;
        let outcome = match outcome {
            Ok(issued) => self.keep(issued).await,
            Err(error) => Err(error),
        };
        self.store.release(&name).await;
        match outcome {
            Ok(()) => {}
            Err(error) => self.failed(error).await,
        }
    }

    /// Stores and serves a new certificate.
    async fn keep(&mut self, issued: Issued) -> Result<(), AcmeError> {
        let store_error =
            |e: super::store::StoreError| AcmeError::Local(crate::ops::chain(&e).to_string());
        self.store
            .save(
                &self.plan.cert_key("key.pem"),
                issued.key_pem.as_bytes(),
                Secrecy::Secret,
            )
            .await
            .map_err(store_error)?;
        self.store
            .save(
                &self.plan.cert_key("cert.pem"),
                issued.chain_pem.as_bytes(),
                Secrecy::Public,
            )
            .await
            .map_err(store_error)?;
        let (names, issuer, not_after) = (
            issued.info.names.join(" "),
            issued.info.issuer.clone(),
            issued.info.not_after,
        );
        self.install(Some(issued));
        self.retry_at = None;
        self.status.failures = 0;
        self.status.next_attempt = None;
        self.status.last_error = None;
        self.ari = Ari::default();
        // Saved before it is logged, as a failure is (see `failed`).
        self.save_status().await;
        tracing::info!(
            names,
            issuer,
            not_after = %rfc3339(not_after),
            "acme: certificate obtained and now served"
        );
        Ok(())
    }

    /// Serves `issued` (or nothing from ACME).
    fn install(&mut self, issued: Option<Issued>) {
        let served = issued.iter().map(Issued::served).collect();
        self.certificates.replace(Source::Acme, served);
        self.current = issued;
        self.status.renewal_basis = Some(format!(
            "web.acme.renew_before ({})",
            humantime_serde::re::humantime::format_duration(self.plan.renew_before)
        ));
    }

    /// Takes the stored certificate when it is better than the current one (another process
    /// renewed it) and not due for renewal itself. Returns whether it did.
    async fn adopt_stored(&mut self) -> Result<bool, StoreError> {
        let Some(stored) = self.stored_newer().await? else {
            return Ok(false);
        };
        let due = schedule::renewal_time(
            stored.info.not_before,
            stored.info.not_after,
            self.plan.renew_before,
        ) <= SystemTime::now();
        if due {
            return Ok(false);
        }
        self.adopt(stored);
        Ok(true)
    }

    /// A shared store's poll: serves a newer certificate another box stored, whether or not
    /// it is due (if it is, this box's own schedule then orders, under the lease).
    async fn look_for_newer(&mut self) {
        match self.stored_newer().await {
            Ok(Some(stored)) => self.adopt(stored),
            Ok(None) => {}
            Err(error) => tracing::warn!(
                error = %crate::ops::chain(&error),
                "acme: cannot look for a newer certificate in the shared storage"
            ),
        }
    }

    /// The stored certificate, when it is not the one served, is newer, covers the names and
    /// is valid now.
    async fn stored_newer(&self) -> Result<Option<Issued>, StoreError> {
        let chain = self.store.load(&self.plan.cert_key("cert.pem")).await?;
        let unchanged = match (&chain, &self.current) {
            (None, _) => true,
            (Some(chain), Some(current)) => chain.as_slice() == current.chain_pem.as_bytes(),
            (Some(_), None) => false,
        };
        if unchanged {
            return Ok(None);
        }
        let Some(stored) = stored(&self.store, &self.plan).await? else {
            return Ok(None);
        };
        let newer = self
            .current
            .as_ref()
            .is_none_or(|current| stored.info.not_after > current.info.not_after);
        let usable =
            stored.info.covers(&self.plan.names) && stored.info.valid_at(SystemTime::now());
        Ok((newer && usable).then_some(stored))
    }

    /// Serves `stored`, which another onebox process stored.
    fn adopt(&mut self, stored: Issued) {
        tracing::info!(
            not_after = %rfc3339(stored.info.not_after),
            "acme: serving the certificate another onebox process stored"
        );
        self.install(Some(stored));
        self.ari = Ari::default();
        self.retry_at = None;
        self.status.failures = 0;
        self.status.next_attempt = None;
        self.status.last_error = None;
        self.status_saved = false;
    }

    /// Records a failure and schedules the retry.
    async fn failed(&mut self, error: AcmeError) {
        let now = SystemTime::now();
        if error.unknown_account() {
            self.new_account = true;
        }
        self.status.failures += 1;
        let wait = schedule::backoff(self.status.failures, error.retry_after(), now);
        self.retry_at = Some(now + wait);
        let message = crate::ops::chain(&error).to_string();
        // The status is saved before the line is logged: whoever reads the log line and then
        // `onebox cert status` sees the failure there too.
        self.status.last_error = Some(LastError {
            at: to_unix(now),
            message: message.clone(),
        });
        self.status.next_attempt = Some(to_unix(now + wait));
        self.save_status().await;
        tracing::error!(
            names = %self.plan.names.join(" "),
            error = %message,
            failures = self.status.failures,
            retry_in_s = wait.as_secs(),
            still_serving = self.current.as_ref().map_or("the development or configured certificate", |_| "the previous ACME certificate"),
            "acme: could not obtain a certificate"
        );
    }

    /// The account at the CA: the stored one, or a new one (stored).
    async fn account(&mut self) -> Result<Account, AcmeError> {
        let key = self.plan.account_key();
        let stored = if self.new_account {
            None
        } else {
            self.store
                .load(&key)
                .await
                .map_err(|e| AcmeError::Local(crate::ops::chain(&e).to_string()))?
                .and_then(|bytes| serde_json::from_slice::<StoredAccount>(&bytes).ok())
        };
        let builder = || Account::builder_with_http(Box::new(self.http.clone()));
        if let Some(stored) = stored {
            let account = builder().from_credentials(stored.credentials).await?;
            if stored.contact != self.plan.contact {
                let contact: Vec<&str> = self.plan.contact.iter().map(String::as_str).collect();
                account.update_contacts(&contact).await?;
                self.save_account(&account_credentials(&self.store, &key).await?)
                    .await?;
                tracing::info!(contact = ?self.plan.contact, "acme: account contacts updated");
            }
            return Ok(account);
        }
        let contact: Vec<&str> = self.plan.contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = builder()
            .create(&new, self.plan.directory.clone(), None)
            .await?;
        self.save_account(&credentials).await?;
        self.new_account = false;
        tracing::info!(ca = %self.plan.directory, account = account.id(), "acme: account created");
        Ok(account)
    }

    async fn save_account(
        &self,
        credentials: &instant_acme::AccountCredentials,
    ) -> Result<(), AcmeError> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            contact: &'a [String],
            credentials: &'a instant_acme::AccountCredentials,
        }
        let json = serde_json::to_vec_pretty(&Borrowed {
            contact: &self.plan.contact,
            credentials,
        })
        .map_err(|e| AcmeError::Local(e.to_string()))?;
        self.store
            .save(&self.plan.account_key(), &json, Secrecy::Secret)
            .await
            .map_err(|e| AcmeError::Local(crate::ops::chain(&e).to_string()))
    }

    async fn save_status(&mut self) {
        let Ok(json) = serde_json::to_vec_pretty(&self.status) else {
            return;
        };
        match self
            .local
            .save(&self.plan.cert_key("status.json"), &json, Secrecy::Public)
            .await
        {
            Ok(()) => self.status_saved = true,
            Err(error) => {
                tracing::warn!(error = %crate::ops::chain(&error), "acme: cannot record the certificate's status");
            }
        }
    }
}

/// The next step of the loop.
enum Step {
    Wait(SystemTime),
    PollAri,
    Order(&'static str),
}

/// The stored account's credentials again (after a change on the CA's side).
async fn account_credentials<S: Store>(
    store: &S,
    key: &str,
) -> Result<instant_acme::AccountCredentials, AcmeError> {
    let bytes = store
        .load(key)
        .await
        .map_err(|e| AcmeError::Local(crate::ops::chain(&e).to_string()))?
        .ok_or_else(|| AcmeError::Local("the stored account vanished".to_owned()))?;
    serde_json::from_slice::<StoredAccount>(&bytes)
        .map(|stored| stored.credentials)
        .map_err(|e| AcmeError::Local(e.to_string()))
}

/// The certificate the store holds for `plan`, if it is usable.
pub async fn load_issued<S: Store>(store: &S, plan: &Plan) -> Option<Issued> {
    stored(store, plan).await.ok().flatten()
}

/// The certificate the store holds for `plan`: `None` when there is none or it cannot be used
/// (said in a warning), `Err` when the store could not be read.
pub(super) async fn stored<S: Store>(store: &S, plan: &Plan) -> Result<Option<Issued>, StoreError> {
    let Some(chain) = store.load(&plan.cert_key("cert.pem")).await? else {
        return Ok(None);
    };
    let Some(key) = store.load(&plan.cert_key("key.pem")).await? else {
        return Ok(None);
    };
    let (Ok(chain), Ok(key)) = (String::from_utf8(chain), String::from_utf8(key)) else {
        return Ok(None);
    };
    match Issued::new(chain, key) {
        Ok(issued) => Ok(Some(issued)),
        Err(error) => {
            tracing::warn!(error = %crate::ops::chain(&error), certificate = plan.cert_id, "acme: the stored certificate cannot be used; ordering a new one");
            Ok(None)
        }
    }
}

/// Seconds since the epoch.
pub fn to_unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A time from seconds since the epoch.
pub fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn offset_time(time: time::OffsetDateTime) -> SystemTime {
    SystemTime::from(time)
}

/// `2026-12-04T22:14:58Z`.
pub fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{} s after the epoch", to_unix(time)))
}
