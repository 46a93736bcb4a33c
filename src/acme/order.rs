//! One issuance (RFC 8555 §7.4), from order to certificate:
//!
//! 1. a new order for the names (with `replaces`, RFC 9773 §5, when renewing a certificate the
//!    CA gave renewal information for);
//! 2. for each pending authorization, the configured challenge's answer is published in
//!    `ops::challenges` (a TXT value, an HTTP token, an `acme-tls/1` certificate); for dns-01,
//!    every reachable name server of the zone must answer it first (`dns01`);
//! 3. the CA is told each challenge is ready, and the order polled until it is ready or invalid
//!    — invalid is reported with the CA's own problem text, per name;
//! 4. the answers are withdrawn (the DNS overlay's serial moves on again);
//! 5. a new ECDSA P-256 key and a CSR for the names finalize the order, and the chain is
//!    fetched.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewOrder,
    OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;

use super::cert::Issued;
use super::client::Busy;
use super::dns01;
use super::store::Store;
use crate::config::{ChallengeKind, DnsConfig};
use crate::ops::challenges::Challenges;

/// How long the CA is given to validate, and then to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(500))
    .backoff(1.5)
    .timeout(Duration::from_secs(180));

/// Why an attempt failed; its text is what the log and `onebox cert status` show.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA refused a request: its problem document.
    #[error("the CA refused: {0}")]
    Refused(String),
    /// The CA asked to come back later (429, 503).
    #[error(transparent)]
    Busy(Busy),
    /// The CA could not validate a name: its problem text, per name.
    #[error("the CA could not validate the challenge answers: {0}")]
    Invalid(String),
    /// The CA could not be reached or answered nonsense.
    #[error("cannot talk to the CA: {0}")]
    Transport(String),
    /// The dns-01 answers did not reach every name server in time.
    #[error("dns-01: {0}")]
    Propagation(String),
    /// Something on this side (a key, a store, a challenge the CA does not offer).
    #[error("{0}")]
    Local(String),
}

impl AcmeError {
    /// When the CA said to retry, if it did.
    pub fn retry_after(&self) -> Option<SystemTime> {
        match self {
            Self::Busy(busy) => busy.retry_after,
            _ => None,
        }
    }

    /// Whether the CA no longer knows the account (a new one is needed).
    pub fn unknown_account(&self) -> bool {
        matches!(self, Self::Refused(text) if text.contains("accountDoesNotExist"))
    }
}

impl From<instant_acme::Error> for AcmeError {
    fn from(error: instant_acme::Error) -> Self {
        match error {
            instant_acme::Error::Api(problem) => Self::Refused(problem_text(&problem)),
            instant_acme::Error::Other(other) => match other.downcast::<Busy>() {
                Ok(busy) => Self::Busy(*busy),
                Err(other) => Self::Transport(crate::ops::chain(other.as_ref()).to_string()),
            },
            other => Self::Transport(crate::ops::chain(&other).to_string()),
        }
    }
}

/// A problem document as one line: `detail (type)`, then its subproblems.
pub fn problem_text(problem: &instant_acme::Problem) -> String {
    let mut text = match (&problem.detail, &problem.r#type) {
        (Some(detail), Some(kind)) => format!("{detail} ({kind})"),
        (Some(text), None) | (None, Some(text)) => text.clone(),
        (None, None) => "no detail given".to_owned(),
    };
    for sub in &problem.subproblems {
        text.push_str("; ");
        text.push_str(&sub.to_string());
    }
    text
}

/// What to order.
#[derive(Debug, Clone)]
pub struct Request {
    /// The certificate's names.
    pub names: Vec<String>,
    /// How they are proved.
    pub challenge: ChallengeKind,
    /// The certificate this one replaces, when the CA gave renewal information for it.
    pub replaces: Option<CertificateIdentifier<'static>>,
}

/// Where answers are published and checked.
#[derive(Debug, Clone)]
pub struct Answering {
    /// The shared challenge answers.
    pub challenges: Challenges,
    /// The DNS service's settings (its listeners and secondaries, for the propagation check).
    pub dns: DnsConfig,
}

/// Orders, proves and fetches one certificate. An http-01 answer is also published through
/// `store`, for the other boxes sharing it, and withdrawn from it when the attempt ends.
pub async fn issue<S: Store>(
    account: &Account,
    request: &Request,
    answering: &Answering,
    store: &S,
) -> Result<Issued, AcmeError> {
    let mut shared = Vec::new();
    let issued = issue_sharing(account, request, answering, store, &mut shared).await;
    for token in &shared {
        store.withdraw_http(token).await;
    }
    issued
}

/// [`issue`], the tokens published through `store` noted in `shared`.
async fn issue_sharing<S: Store>(
    account: &Account,
    request: &Request,
    answering: &Answering,
    store: &S,
    shared: &mut Vec<String>,
) -> Result<Issued, AcmeError> {
    let identifiers: Vec<Identifier> = request
        .names
        .iter()
        .map(|name| Identifier::Dns(name.clone()))
        .collect();
    let mut order = match &request.replaces {
        None => account.new_order(&NewOrder::new(&identifiers)).await?,
        Some(replaces) => {
            let new_order = NewOrder::new(&identifiers).replaces(replaces.clone());
            match account.new_order(&new_order).await.map_err(AcmeError::from) {
                Ok(order) => order,
                Err(error @ AcmeError::Busy(_)) => return Err(error),
                Err(error) => {
                    // RFC 9773 §5: a CA may refuse the replacement (alreadyReplaced), or
                    // not know the field; the certificate is needed all the same.
                    tracing::info!(error = %crate::ops::chain(&error), "acme: the CA did not take the order as a replacement; ordering without `replaces`");
                    account.new_order(&NewOrder::new(&identifiers)).await?
                }
            }
        }
    };
    tracing::info!(names = %request.names.join(" "), order = order.url(), challenge = request.challenge.as_str(), "acme: order placed");
    let kind = challenge_type(request.challenge);

    // Publish every pending authorization's answer.
    let mut published = Published::new(answering.challenges.clone());
    let mut expected = dns01::Expected::new();
    let mut pending = 0usize;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        match authorization.status {
            AuthorizationStatus::Pending => pending += 1,
            AuthorizationStatus::Valid => continue,
            status => {
                return Err(AcmeError::Local(format!(
                    "the authorization for {} is {status:?}",
                    authorization.identifier()
                )));
            }
        }
        let identifier = authorization.identifier().to_string();
        let Some(challenge) = authorization.challenge(kind.clone()) else {
            return Err(AcmeError::Local(format!(
                "the CA offers no {} challenge for {identifier} (key web.acme.challenge)",
                request.challenge.as_str()
            )));
        };
        let domain = identifier.trim_start_matches("*.").to_owned();
        let key_authorization = challenge.key_authorization();
        match request.challenge {
            ChallengeKind::Dns01 => {
                let owner = format!("_acme-challenge.{domain}.");
                let value = key_authorization.dns_value();
                published.txt.push((owner.clone(), value.clone()));
                expected.entry(owner).or_default().insert(value);
            }
            ChallengeKind::Http01 => {
                published.http(&challenge.token, key_authorization.as_str());
                shared.push(challenge.token.clone());
                store
                    .publish_http(&challenge.token, key_authorization.as_str())
                    .await
                    .map_err(|e| AcmeError::Local(crate::ops::chain(&e).to_string()))?;
            }
            ChallengeKind::TlsAlpn01 => {
                let key = alpn_certificate(&domain, key_authorization.digest().as_ref())?;
                published.tls_alpn(&domain, key);
            }
        }
    }
    if !published.txt.is_empty() {
        // Every TXT value at once: one new version of each zone.
        answering.challenges.add_txt(&published.txt);
        await_propagation(&answering.dns, &request.names, &expected).await?;
    }
    tracing::debug!(pending, "acme: challenge answers published");

    // Tell the CA, then wait for its verdict.
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        if authorization.status != AuthorizationStatus::Pending {
            continue;
        }
        if let Some(mut challenge) = authorization.challenge(kind.clone()) {
            challenge.set_ready().await?;
        }
    }
    let verdict = match order.poll_ready(&POLL).await {
        Ok(OrderStatus::Invalid) => Err(None),
        Ok(_) => Ok(()),
        // The order's own error: the reasons per name, from the authorizations, say more.
        Err(instant_acme::Error::Api(problem)) => Err(Some(problem_text(&problem))),
        Err(error) => {
            drop(published);
            return Err(error.into());
        }
    };
    if let Err(order_problem) = verdict {
        let why = invalid_reasons(&mut order, &kind)
            .await
            .or(order_problem)
            .unwrap_or_else(|| "the order became invalid without a reason given".to_owned());
        drop(published);
        return Err(AcmeError::Invalid(why));
    }
    // Validated: the answers go (the DNS overlay is published again without them).
    drop(published);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(local)?;
    let mut params = CertificateParams::new(request.names.clone()).map_err(local)?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(local)?;
    order.finalize_csr(csr.der()).await?;
    let chain = order.poll_certificate(&POLL).await?;
    Issued::new(chain, key.serialize_pem()).map_err(|e| AcmeError::Local(e.to_string()))
}

/// Waits until the zones' name servers answer `expected`.
async fn await_propagation(
    dns: &DnsConfig,
    names: &[String],
    expected: &dns01::Expected,
) -> Result<(), AcmeError> {
    let mut zones = BTreeSet::new();
    for name in names {
        let base = name.trim_start_matches("*.");
        let Some(zone) = dns01::zone_of(dns, base) else {
            return Err(AcmeError::Local(format!(
                "{name} is in no zone onebox serves (dns.zones_dir): dns-01 cannot be answered"
            )));
        };
        zones.insert(zone);
    }
    for (zone, file) in zones {
        let servers = dns01::name_servers(dns, &zone, &file).await;
        let inside: dns01::Expected = expected
            .iter()
            .filter(|(owner, _)| {
                hickory_proto::rr::Name::from_ascii(owner.as_str()).is_ok_and(|o| zone.zone_of(&o))
            })
            .map(|(owner, values)| (owner.clone(), values.clone()))
            .collect();
        let checked = dns01::await_propagation(&servers, &inside)
            .await
            .map_err(AcmeError::Propagation)?;
        let checked: Vec<String> = checked.iter().map(ToString::to_string).collect();
        tracing::info!(zone = %zone, servers = %checked.join(" "), "dns-01: every reachable name server answers the challenge");
    }
    Ok(())
}

/// The CA's reasons, per name, for an invalid order (`None` if it gave none).
async fn invalid_reasons(order: &mut instant_acme::Order, kind: &ChallengeType) -> Option<String> {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let Ok(mut authorization) = authorization else {
            continue;
        };
        let identifier = authorization.identifier().to_string();
        let Ok(state) = authorization.refresh().await else {
            continue;
        };
        if state.status == AuthorizationStatus::Valid {
            continue;
        }
        let problem = state
            .challenges
            .iter()
            .filter(|c| &c.r#type == kind)
            .find_map(|c| c.error.as_ref())
            .map_or_else(|| format!("{:?}", state.status), problem_text);
        reasons.push(format!("{identifier}: {problem}"));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn challenge_type(kind: ChallengeKind) -> ChallengeType {
    match kind {
        ChallengeKind::Dns01 => ChallengeType::Dns01,
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
    }
}

/// The self-signed certificate a TLS-ALPN-01 validation sees (RFC 8737 §3): the name, and the
/// critical acmeIdentifier extension holding the SHA-256 of the key authorization.
fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(local)?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(local)?;
    let cert = params.self_signed(&key).map_err(local)?;
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| AcmeError::Local(e.to_string()))?;
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AcmeError::Local(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

fn local(error: rcgen::Error) -> AcmeError {
    AcmeError::Local(format!("key or CSR: {error}"))
}

/// The answers published for one issuance; withdrawn when dropped, however the attempt ends.
struct Published {
    challenges: Challenges,
    /// TXT `(owner, value)`s, published together once all are known.
    txt: Vec<(String, String)>,
    http: Vec<String>,
    tls_alpn: Vec<String>,
}

impl Published {
    fn new(challenges: Challenges) -> Self {
        Self {
            challenges,
            txt: Vec::new(),
            http: Vec::new(),
            tls_alpn: Vec::new(),
        }
    }

    fn http(&mut self, token: &str, key_authorization: &str) {
        self.challenges.add_http(token, key_authorization);
        self.http.push(token.to_owned());
    }

    fn tls_alpn(&mut self, name: &str, key: Arc<CertifiedKey>) {
        self.challenges.add_tls_alpn(name, key);
        self.tls_alpn.push(name.to_owned());
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        self.challenges.remove_txt(&self.txt);
        for token in &self.http {
            self.challenges.remove_http(token);
        }
        for name in &self.tls_alpn {
            self.challenges.remove_tls_alpn(name);
        }
    }
}
