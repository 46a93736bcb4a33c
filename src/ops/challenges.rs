//! ACME challenge answers: published by the ACME client, served by whichever service the
//! challenge type needs, neither knowing the other.
//!
//! - HTTP-01: the key authorization for a token, served by the web service on plain HTTP at
//!   `/.well-known/acme-challenge/<token>`;
//! - TLS-ALPN-01 (RFC 8737): a certificate for a name, presented by the web service's HTTPS
//!   listener to a client that offers only the `acme-tls/1` protocol;
//! - DNS-01: TXT values at `_acme-challenge.<name>`, served by the DNS service as an overlay on
//!   its zones; it watches [`Challenges::txt_records`] and publishes each change as a new zone
//!   version (serial bumped, secondaries notified).
//!
//! When several boxes share ACME's storage (`web.acme.storage = "database"`), the CA's http-01
//! validation may reach a box that did not order: ACME then installs [`SharedAnswers`], where a
//! token this box did not publish is looked for (see [`Challenges::http_answer`]).
//!
//! Reads are lock-free (the web service reads on requests and handshakes); writes are rare.
//! Several values may be published at one name at once (a certificate for `foobar.com` and
//! `*.foobar.com` needs two TXT values at `_acme-challenge.foobar.com`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

/// DNS-01 answers: owner name (lower case, fully qualified with the trailing dot) → TXT values.
pub type TxtRecords = BTreeMap<String, BTreeSet<String>>;

/// HTTP-01 answers other boxes published (ACME's shared storage).
pub trait SharedAnswers: Send + Sync + std::fmt::Debug {
    /// The answer for `token`, if another box published one (`None` too when it cannot be
    /// looked up now).
    fn http(&self, token: &str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>>;
}

/// The shared handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Challenges {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// HTTP-01: token → key authorization.
    http: ArcSwap<HashMap<String, String>>,
    /// TLS-ALPN-01: name (lower case) → the challenge certificate.
    tls_alpn: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    /// DNS-01.
    txt: watch::Sender<TxtRecords>,
    /// HTTP-01 answers of the other boxes, when ACME's storage is shared.
    shared: OnceLock<Arc<dyn SharedAnswers>>,
}

impl Default for Challenges {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                http: ArcSwap::default(),
                tls_alpn: ArcSwap::default(),
                txt: watch::Sender::new(TxtRecords::new()),
                shared: OnceLock::new(),
            }),
        }
    }
}

impl Challenges {
    /// Publishes the HTTP-01 answer for `token`.
    pub fn add_http(&self, token: &str, key_authorization: &str) {
        self.inner.http.rcu(|answers| {
            let mut answers = HashMap::clone(answers);
            answers.insert(token.to_owned(), key_authorization.to_owned());
            answers
        });
    }

    /// Withdraws the HTTP-01 answer for `token`.
    pub fn remove_http(&self, token: &str) {
        self.inner.http.rcu(|answers| {
            let mut answers = HashMap::clone(answers);
            answers.remove(token);
            answers
        });
    }

    /// The HTTP-01 answer for `token`, if one is published.
    pub fn http(&self, token: &str) -> Option<String> {
        self.inner.http.load().get(token).cloned()
    }

    /// Where the answers other boxes publish are found (set once, when ACME starts).
    pub fn share_http(&self, shared: Arc<dyn SharedAnswers>) {
        let _ = self.inner.shared.set(shared);
    }

    /// The HTTP-01 answer for `token`: this box's, else one another box published (when
    /// [`Challenges::share_http`] was called). Only a token of the characters ACME's use
    /// (base64url, RFC 8555 §8.1) is looked up elsewhere.
    pub async fn http_answer(&self, token: &str) -> Option<String> {
        if let Some(answer) = self.http(token) {
            return Some(answer);
        }
        let shared = self.inner.shared.get()?;
        let plausible = !token.is_empty()
            && token.len() <= 255
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plausible {
            return None;
        }
        shared.http(token).await
    }

    /// Publishes the TLS-ALPN-01 certificate for `name`.
    pub fn add_tls_alpn(&self, name: &str, key: Arc<CertifiedKey>) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.inner.tls_alpn.rcu(|answers| {
            let mut answers = HashMap::clone(answers);
            answers.insert(name.clone(), key.clone());
            answers
        });
    }

    /// Withdraws the TLS-ALPN-01 certificate for `name`.
    pub fn remove_tls_alpn(&self, name: &str) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.inner.tls_alpn.rcu(|answers| {
            let mut answers = HashMap::clone(answers);
            answers.remove(&name);
            answers
        });
    }

    /// The TLS-ALPN-01 certificate for `name`, if one is published.
    pub fn tls_alpn(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.inner.tls_alpn.load().get(&name).cloned()
    }

    /// Publishes each TXT `(name, value)` (beside any other value at the name), as one change.
    pub fn add_txt(&self, records: &[(String, String)]) {
        self.inner.txt.send_if_modified(|published| {
            let mut added = false;
            for (name, value) in records {
                added |= published
                    .entry(fqdn(name))
                    .or_default()
                    .insert(value.clone());
            }
            added
        });
    }

    /// Withdraws each TXT `(name, value)` as one change; other values at the names stay.
    pub fn remove_txt(&self, records: &[(String, String)]) {
        self.inner.txt.send_if_modified(|published| {
            let mut removed = false;
            for (name, value) in records {
                let name = fqdn(name);
                let Some(values) = published.get_mut(&name) else {
                    continue;
                };
                removed |= values.remove(value);
                if values.is_empty() {
                    published.remove(&name);
                }
            }
            removed
        });
    }

    /// The DNS-01 answers, now and as they change.
    pub fn txt_records(&self) -> watch::Receiver<TxtRecords> {
        self.inner.txt.subscribe()
    }
}

/// `name` lower case with the trailing dot.
fn fqdn(name: &str) -> String {
    let mut name = name.trim_end_matches('.').to_ascii_lowercase();
    name.push('.');
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_txt_values_at_one_name_come_and_go_independently() {
        let challenges = Challenges::default();
        let mut txt = challenges.txt_records();
        let record = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        challenges.add_txt(&[
            record("_acme-challenge.FOOBAR.com", "one"),
            record("_acme-challenge.foobar.com.", "two"),
        ]);
        assert!(txt.has_changed().expect("open"));
        let values = txt.borrow_and_update()["_acme-challenge.foobar.com."].clone();
        assert_eq!(values.into_iter().collect::<Vec<_>>(), ["one", "two"]);
        challenges.add_txt(&[record("_acme-challenge.www.foobar.com", "three")]);
        challenges.remove_txt(&[record("_acme-challenge.foobar.com", "one")]);
        assert_eq!(
            txt.borrow_and_update()["_acme-challenge.foobar.com."].len(),
            1
        );
        challenges.remove_txt(&[record("_acme-challenge.foobar.com", "absent")]);
        assert!(
            !txt.has_changed().expect("open"),
            "nothing removed, nothing announced"
        );
        challenges.remove_txt(&[
            record("_acme-challenge.foobar.com", "two"),
            record("_acme-challenge.www.foobar.com", "three"),
        ]);
        assert!(txt.borrow_and_update().is_empty());
    }

    #[test]
    fn http_tokens() {
        let challenges = Challenges::default();
        challenges.add_http("tok", "tok.thumb");
        assert_eq!(challenges.http("tok").as_deref(), Some("tok.thumb"));
        challenges.remove_http("tok");
        assert_eq!(challenges.http("tok"), None);
    }
}
