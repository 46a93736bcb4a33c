//! Signing keys: generated on first use, kept in `state_dir/keys/`, one file per key.
//!
//! A key file is named as BIND names its keys, `K<zone>+<algorithm>+<key tag>.pem`
//! (`Kfoobar.com.+013+12345.pem`), mode 0600 in a directory of mode 0700. It holds a few
//! `name: value` lines saying what the key is and where it stands in its life, then the private
//! key in PKCS#8 PEM, as Knot keeps its keys (`openssl pkey -in FILE` reads it):
//!
//! ```text
//! # onebox DNSSEC key. Secret: whoever holds it can sign for the zone.
//! zone: foobar.com.
//! algorithm: 13
//! key-tag: 12345
//! flags: 257
//! state: active
//! created: 2026-12-05T10:00:00Z
//! published: 2026-12-05T10:00:00Z
//! active: 2026-12-05T10:00:00Z
//! -----BEGIN PRIVATE KEY-----
//! ...
//! ```
//!
//! Every key is a combined signing key (flags 257: zone key and secure entry point): one key
//! signs the DNSKEY set and every other set, and the parent's DS points at it, which is what
//! Knot and BIND do by default for these algorithms. A key's state says what it does:
//!
//! - `published`: in the DNSKEY set only (the new key of a rollover, before the swap);
//! - `active`: signs every set, and is what CDS/CDNSKEY and `onebox dnssec ds` show;
//! - `retiring`: the old key after the swap: still published and still signing the DNSKEY
//!   set, so that resolvers holding the old DS keep validating until the parent's DS changes.
//!
//! Changes (a new key, a new state) are written to a temporary file and renamed over the old
//! one, under an exclusive lock on `keys/.lock`, so that `onebox dnssec ...` and a running
//! server never see half a file nor generate two first keys at once.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{
    Algorithm, DigestType, DnsSecError, DnsSecResult, PublicKeyBuf, SigningKey, TBS,
};
use hickory_proto::rr::Name;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};

use crate::config::DnssecAlgorithm;

/// DNSKEY flags of a combined signing key: zone key (bit 7) and secure entry point (bit 15).
pub const CSK_FLAGS: u16 = 257;

/// What a key does now (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// In the DNSKEY set, signing nothing: a rollover's new key before the swap.
    Published,
    /// Signs every set; shown in CDS/CDNSKEY and by `onebox dnssec ds`.
    Active,
    /// A rollover's old key after the swap: published, signing the DNSKEY set only.
    Retiring,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            KeyState::Published => "published",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "published" => Some(KeyState::Published),
            "active" => Some(KeyState::Active),
            "retiring" => Some(KeyState::Retiring),
            _ => None,
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a key entered each state (Unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTimes {
    /// Generated.
    pub created: i64,
    /// Put in the DNSKEY set.
    pub published: Option<i64>,
    /// Started signing every set.
    pub active: Option<i64>,
    /// Stopped signing all but the DNSKEY set (the rollover's swap).
    pub retiring: Option<i64>,
}

/// One signing key of one zone, loaded and ready to sign.
#[derive(Clone)]
pub struct ZoneKey {
    /// The zone it signs (lower case).
    pub zone: Name,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its key tag (RFC 4034 Appendix B).
    pub tag: u16,
    /// What it does now.
    pub state: KeyState,
    /// When it got there.
    pub times: KeyTimes,
    /// The file it is kept in.
    pub path: PathBuf,
    dnskey: DNSKEY,
    signer: Arc<RingKey>,
}

impl fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneKey")
            .field("zone", &self.zone)
            .field("algorithm", &self.algorithm)
            .field("tag", &self.tag)
            .field("state", &self.state)
            .field("times", &self.times)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ZoneKey {
    /// The DNSKEY record data of this key.
    pub fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    /// The DS record data the parent zone publishes for this key (SHA-256, RFC 4509; the digest
    /// every validator must support, RFC 8624).
    pub fn ds(&self) -> Result<DS, KeyError> {
        let digest = self
            .dnskey
            .to_digest(&self.zone, DigestType::SHA256)
            .map_err(|e| KeyError::Crypto(format!("cannot digest the DNSKEY: {e}")))?;
        Ok(DS::new(
            self.tag,
            self.algorithm,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// Signs `data` (the canonical signed data of an RRset).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer
            .sign(&TBS::from(data))
            .map_err(|e| KeyError::Crypto(format!("signing failed: {e}")))
    }

    /// Whether the key signs every RRset of the zone.
    pub fn signs_zone(&self) -> bool {
        self.state == KeyState::Active
    }

    /// Whether the key signs the DNSKEY RRset.
    pub fn signs_keys(&self) -> bool {
        matches!(self.state, KeyState::Active | KeyState::Retiring)
    }

    /// Moves the key to `state` at `now`, in memory (see [`KeyStore::save`]).
    pub fn set_state(&mut self, state: KeyState, now: i64) {
        self.state = state;
        match state {
            KeyState::Published => self.times.published = Some(now),
            KeyState::Active => self.times.active = Some(now),
            KeyState::Retiring => self.times.retiring = Some(now),
        }
    }
}

/// Why keys could not be loaded, generated or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file or directory could not be read or written.
    #[error("{}: {what}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// A key file holds something onebox cannot use.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// The 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Generating a key, or signing, failed in the crypto library.
    #[error("{0}")]
    Crypto(String),
}

/// The key directory, `state_dir/keys/`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The key directory of `state_dir` (not created until a key is written).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("keys"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the store's lock (blocking), creating the directory if needed.
    pub fn lock(&self) -> Result<StoreLock, KeyError> {
        if !self.dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|source| self.io(&self.dir, "cannot create the key directory", source))?;
        }
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| self.io(&path, "cannot open the lock file", source))?;
        file.lock()
            .map_err(|source| self.io(&path, "cannot lock", source))?;
        Ok(StoreLock { _file: file })
    }

    /// Every key of `zone`, ordered by creation time then tag. A missing directory holds none.
    pub fn load(&self, zone: &Name) -> Result<Vec<ZoneKey>, KeyError> {
        let zone = zone.to_lowercase();
        let prefix = format!("K{}+", zone_label(&zone));
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io(&self.dir, "cannot read the key directory", source)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|source| self.io(&self.dir, "cannot read the key directory", source))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if file_name.starts_with(&prefix) && file_name.ends_with(".pem") {
                keys.push(read_key(&entry.path(), &zone)?);
            }
        }
        keys.sort_by_key(|k| (k.times.created, k.tag));
        Ok(keys)
    }

    /// The keys of `zone`, generating an active key of `algorithm` if the zone has none yet
    /// ("keys are generated on first use"). Takes the lock.
    pub fn ensure(
        &self,
        zone: &Name,
        algorithm: DnssecAlgorithm,
        now: i64,
    ) -> Result<Vec<ZoneKey>, KeyError> {
        let _lock = self.lock()?;
        let mut keys = self.load(zone)?;
        if keys.is_empty() {
            let key = self.generate(zone, algorithm, KeyState::Active, now, &keys)?;
            tracing::info!(zone = %key.zone, tag = key.tag, algorithm = %key.algorithm, file = %key.path.display(), "DNSSEC key generated");
            keys.push(key);
        }
        Ok(keys)
    }

    /// Generates and writes a new key of `zone` in `state`, with a tag none of `existing` has.
    /// The caller holds the lock.
    pub fn generate(
        &self,
        zone: &Name,
        algorithm: DnssecAlgorithm,
        state: KeyState,
        now: i64,
        existing: &[ZoneKey],
    ) -> Result<ZoneKey, KeyError> {
        let zone = zone.to_lowercase();
        let (algorithm, pkcs8) = loop {
            let (algorithm, pkcs8) = generate_pkcs8(algorithm)?;
            let signer = RingKey::from_pkcs8(algorithm, &pkcs8)
                .map_err(|e| KeyError::Crypto(format!("the new key does not load: {e}")))?;
            let tag = dnskey_of(&signer)?.1;
            if existing.iter().all(|k| k.tag != tag) {
                break (algorithm, pkcs8);
            }
        };
        let signer = RingKey::from_pkcs8(algorithm, &pkcs8)
            .map_err(|e| KeyError::Crypto(format!("the new key does not load: {e}")))?;
        let (dnskey, tag) = dnskey_of(&signer)?;
        let mut key = ZoneKey {
            path: self.dir.join(file_name(&zone, algorithm, tag)),
            zone,
            algorithm,
            tag,
            state,
            times: KeyTimes {
                created: now,
                ..KeyTimes::default()
            },
            dnskey,
            signer: Arc::new(signer),
        };
        key.times.published = Some(now);
        if state == KeyState::Active {
            key.times.active = Some(now);
        }
        let text = format!("{}{}", header(&key), pem(&pkcs8));
        self.write(&key.path, &text)?;
        Ok(key)
    }

    /// Writes `key`'s state and times back to its file (the private key is kept as it is).
    /// The caller holds the lock.
    pub fn save(&self, key: &ZoneKey) -> Result<(), KeyError> {
        let text = fs::read_to_string(&key.path)
            .map_err(|source| self.io(&key.path, "cannot read the key file", source))?;
        let Some(at) = text.find(PEM_BEGIN) else {
            return Err(invalid(&key.path, 0, "no private key in the file"));
        };
        let text = format!("{}{}", header(key), &text[at..]);
        self.write(&key.path, &text)
    }

    /// Deletes `key`'s file: the key is gone from the zone for good. The caller holds the lock.
    pub fn remove(&self, key: &ZoneKey) -> Result<(), KeyError> {
        fs::remove_file(&key.path)
            .map_err(|source| self.io(&key.path, "cannot delete the key file", source))?;
        self.sync_dir()
    }

    /// Writes `text` to `path` (mode 0600) through a temporary file renamed over it.
    fn write(&self, path: &Path, text: &str) -> Result<(), KeyError> {
        let tmp = path.with_extension("pem.tmp");
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|source| self.io(&tmp, "cannot create the key file", source))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| self.io(&tmp, "cannot write the key file", source))?;
        fs::rename(&tmp, path).map_err(|source| self.io(path, "cannot rename into", source))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), KeyError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| self.io(&self.dir, "cannot sync the key directory", source))
    }

    fn io(&self, path: &Path, what: &'static str, source: io::Error) -> KeyError {
        KeyError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    }
}

/// The store's exclusive lock, released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// hickory's algorithm for a configured one.
pub fn algorithm_of(algorithm: DnssecAlgorithm) -> Algorithm {
    match algorithm {
        DnssecAlgorithm::EcdsaP256Sha256 => Algorithm::ECDSAP256SHA256,
        DnssecAlgorithm::Ed25519 => Algorithm::ED25519,
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The zone as it appears in file names: its presentation form, with the final dot.
fn zone_label(zone: &Name) -> String {
    zone.to_ascii()
}

fn file_name(zone: &Name, algorithm: Algorithm, tag: u16) -> String {
    format!(
        "K{}+{:03}+{:05}.pem",
        zone_label(zone),
        u8::from(algorithm),
        tag
    )
}

fn invalid(path: &Path, line: usize, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

fn header(key: &ZoneKey) -> String {
    let mut text = format!(
        "# onebox DNSSEC key. Secret: whoever holds it can sign for the zone.\n\
         zone: {}\nalgorithm: {} ({})\nkey-tag: {}\nflags: {}\nstate: {}\ncreated: {}\n",
        zone_label(&key.zone),
        u8::from(key.algorithm),
        key.algorithm,
        key.tag,
        key.dnskey.flags(),
        key.state,
        timestamp(key.times.created),
    );
    for (label, time) in [
        ("published", key.times.published),
        ("active", key.times.active),
        ("retiring", key.times.retiring),
    ] {
        if let Some(time) = time {
            text.push_str(&format!("{label}: {}\n", timestamp(time)));
        }
    }
    text
}

/// RFC 3339 UTC, to the second.
pub fn timestamp(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

fn pem(der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut text = format!("{PEM_BEGIN}\n");
    for chunk in base64.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(chunk));
        text.push('\n');
    }
    text.push_str(PEM_END);
    text.push('\n');
    text
}

/// Reads one key file of `zone`.
fn read_key(path: &Path, zone: &Name) -> Result<ZoneKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        what: "cannot read the key file",
        source,
    })?;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "DNSSEC key file is readable by others: chmod 600 it");
    }
    let mut fields = Fields::default();
    let mut der_text = String::new();
    let mut in_pem = false;
    let mut pem_line = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if in_pem {
            if line == PEM_END {
                in_pem = false;
                break;
            }
            der_text.push_str(line);
            continue;
        }
        if line == PEM_BEGIN {
            in_pem = true;
            pem_line = n;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(
                path,
                n,
                format!("expected `name: value`, found {line:?}"),
            ));
        };
        fields
            .set(name.trim(), value.trim())
            .map_err(|message| invalid(path, n, message))?;
    }
    if pem_line == 0 || in_pem {
        return Err(invalid(
            path,
            0,
            format!("no complete {PEM_BEGIN} ... {PEM_END} block"),
        ));
    }
    let der = data_encoding::BASE64
        .decode(der_text.as_bytes())
        .map_err(|e| {
            invalid(
                path,
                pem_line,
                format!("the private key is not base64: {e}"),
            )
        })?;
    let file_zone = fields
        .zone
        .ok_or_else(|| invalid(path, 0, "no `zone:` line"))?;
    if &file_zone != zone {
        return Err(invalid(
            path,
            0,
            format!("the file says it is a key of {file_zone}, but its name says {zone}"),
        ));
    }
    let algorithm = fields
        .algorithm
        .ok_or_else(|| invalid(path, 0, "no `algorithm:` line"))?;
    let signer = RingKey::from_pkcs8(algorithm, &der).map_err(|e| {
        invalid(
            path,
            pem_line,
            format!("the private key is not a PKCS#8 {algorithm} key: {e}"),
        )
    })?;
    let flags = fields.flags.unwrap_or(CSK_FLAGS);
    if flags != CSK_FLAGS {
        return Err(invalid(
            path,
            0,
            format!("flags {flags}: onebox uses combined signing keys only (flags 257)"),
        ));
    }
    let (dnskey, tag) = dnskey_of(&signer)?;
    if let Some(written) = fields.tag
        && written != tag
    {
        return Err(invalid(
            path,
            0,
            format!("key-tag {written} does not match the key (its tag is {tag})"),
        ));
    }
    let state = fields
        .state
        .ok_or_else(|| invalid(path, 0, "no `state:` line"))?;
    let created = fields
        .times
        .created
        .ok_or_else(|| invalid(path, 0, "no `created:` line"))?;
    Ok(ZoneKey {
        zone: file_zone,
        algorithm,
        tag,
        state,
        times: KeyTimes {
            created,
            ..fields.times.clone_times()
        },
        path: path.to_owned(),
        dnskey,
        signer: Arc::new(signer),
    })
}

/// The header lines of a key file, as read.
#[derive(Default)]
struct Fields {
    zone: Option<Name>,
    algorithm: Option<Algorithm>,
    tag: Option<u16>,
    flags: Option<u16>,
    state: Option<KeyState>,
    times: OptionalTimes,
}

#[derive(Default)]
struct OptionalTimes {
    created: Option<i64>,
    published: Option<i64>,
    active: Option<i64>,
    retiring: Option<i64>,
}

impl OptionalTimes {
    fn clone_times(&self) -> KeyTimes {
        KeyTimes {
            created: self.created.unwrap_or_default(),
            published: self.published,
            active: self.active,
            retiring: self.retiring,
        }
    }
}

impl Fields {
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let number = |value: &str| -> Result<u16, String> {
            let digits = value.split_whitespace().next().unwrap_or_default();
            digits
                .parse::<u16>()
                .map_err(|_| format!("{name}: expected a number, found {value:?}"))
        };
        let time = |value: &str| -> Result<Option<i64>, String> {
            parse_time(value).map(Some).ok_or_else(|| {
                format!("{name}: expected a time like 2026-12-05T10:00:00Z, found {value:?}")
            })
        };
        match name {
            "zone" => {
                let mut zone = Name::from_ascii(value)
                    .map_err(|e| format!("zone: {value:?} is not a name: {e}"))?;
                zone.set_fqdn(true);
                self.zone = Some(zone.to_lowercase());
            }
            "algorithm" => {
                let algorithm = Algorithm::from_u8(number(value)? as u8);
                if !matches!(algorithm, Algorithm::ECDSAP256SHA256 | Algorithm::ED25519) {
                    return Err(format!(
                        "algorithm {value}: onebox signs with 13 (ECDSAP256SHA256) or 15 (ED25519)"
                    ));
                }
                self.algorithm = Some(algorithm);
            }
            "key-tag" => self.tag = Some(number(value)?),
            "flags" => self.flags = Some(number(value)?),
            "state" => {
                self.state = Some(KeyState::parse(value).ok_or_else(|| {
                    format!("state {value:?}: expected published, active or retiring")
                })?);
            }
            "created" => self.times.created = time(value)?,
            "published" => self.times.published = time(value)?,
            "active" => self.times.active = time(value)?,
            "retiring" => self.times.retiring = time(value)?,
            other => return Err(format!("unknown line `{other}:`")),
        }
        Ok(())
    }
}

/// The DNSKEY of a key, and its tag.
fn dnskey_of(signer: &RingKey) -> Result<(DNSKEY, u16), KeyError> {
    let public = signer
        .to_public_key()
        .map_err(|e| KeyError::Crypto(format!("no public key: {e}")))?;
    let dnskey = DNSKEY::with_flags(CSK_FLAGS, public);
    let tag = dnskey
        .calculate_key_tag()
        .map_err(|e| KeyError::Crypto(format!("no key tag: {e}")))?;
    Ok((dnskey, tag))
}

fn generate_pkcs8(algorithm: DnssecAlgorithm) -> Result<(Algorithm, Vec<u8>), KeyError> {
    let rng = SystemRandom::new();
    let crypto =
        |e: ring::error::Unspecified| KeyError::Crypto(format!("key generation failed: {e}"));
    Ok(match algorithm {
        DnssecAlgorithm::EcdsaP256Sha256 => (
            Algorithm::ECDSAP256SHA256,
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(crypto)?
                .as_ref()
                .to_vec(),
        ),
        DnssecAlgorithm::Ed25519 => (
            Algorithm::ED25519,
            Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(crypto)?
                .as_ref()
                .to_vec(),
        ),
    })
}

/// A private key held by ring, signing for hickory-proto (its `SigningKey`): ring is the tree's
/// one crypto provider.
enum RingKey {
    Ecdsa(EcdsaKeyPair, SystemRandom),
    Ed25519(Ed25519KeyPair),
}

impl RingKey {
    fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<Self, String> {
        match algorithm {
            Algorithm::ECDSAP256SHA256 => {
                let rng = SystemRandom::new();
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map(|key| RingKey::Ecdsa(key, rng))
                    .map_err(|e| e.to_string())
            }
            Algorithm::ED25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(RingKey::Ed25519)
                .map_err(|e| e.to_string()),
            other => Err(format!("algorithm {other} is not supported")),
        }
    }
}

impl SigningKey for RingKey {
    fn sign(&self, tbs: &TBS) -> DnsSecResult<Vec<u8>> {
        match self {
            RingKey::Ecdsa(key, rng) => key
                .sign(rng, tbs.as_ref())
                .map(|sig| sig.as_ref().to_vec())
                .map_err(DnsSecError::from),
            RingKey::Ed25519(key) => Ok(key.sign(tbs.as_ref()).as_ref().to_vec()),
        }
    }

    fn to_public_key(&self) -> DnsSecResult<PublicKeyBuf> {
        Ok(match self {
            // RFC 6605 §4: the point's x and y, without SEC1's leading 0x04.
            RingKey::Ecdsa(key, _) => PublicKeyBuf::new(
                key.public_key().as_ref()[1..].to_vec(),
                Algorithm::ECDSAP256SHA256,
            ),
            RingKey::Ed25519(key) => {
                PublicKeyBuf::new(key.public_key().as_ref().to_vec(), Algorithm::ED25519)
            }
        })
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            RingKey::Ecdsa(..) => Algorithm::ECDSAP256SHA256,
            RingKey::Ed25519(_) => Algorithm::ED25519,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::dnssec::Verifier;

    use super::*;

    fn zone() -> Name {
        Name::from_str("Example.COM.").unwrap()
    }

    #[test]
    fn a_first_key_is_generated_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let keys = store
            .ensure(&zone(), DnssecAlgorithm::EcdsaP256Sha256, 1_000)
            .unwrap();
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(key.state, KeyState::Active);
        assert_eq!(key.algorithm, Algorithm::ECDSAP256SHA256);
        assert_eq!(
            key.path.file_name().unwrap().to_str().unwrap(),
            format!("Kexample.com.+013+{:05}.pem", key.tag)
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key.path), 0o600);
        assert_eq!(mode(store.dir()), 0o700);

        let again = store
            .ensure(&zone(), DnssecAlgorithm::Ed25519, 2_000)
            .unwrap();
        assert_eq!(again.len(), 1, "no second key");
        assert_eq!(again[0].tag, key.tag);
        assert_eq!(again[0].times, key.times);
        assert_eq!(again[0].dnskey(), key.dnskey());
    }

    #[test]
    fn signatures_verify_with_the_published_dnskey() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        for algorithm in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
            let _lock = store.lock().unwrap();
            let key = store
                .generate(&zone(), algorithm, KeyState::Active, 5, &[])
                .unwrap();
            let signature = key.sign(b"data").unwrap();
            key.dnskey().verify(b"data", &signature).unwrap();
            assert!(key.dnskey().verify(b"other", &signature).is_err());
            let loaded = read_key(&key.path, &zone().to_lowercase()).unwrap();
            loaded.dnskey().verify(b"data", &signature).unwrap();
            assert_eq!(loaded.dnskey().flags(), 257);
        }
    }

    #[test]
    fn ds_digest_matches_rfc_4509_for_a_known_key() {
        // The DNSKEY and DS of RFC 6605 §6.1 (P-256 example).
        let public = data_encoding::BASE64
            .decode(
                b"GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==",
            )
            .unwrap();
        let dnskey = DNSKEY::with_flags(257, PublicKeyBuf::new(public, Algorithm::ECDSAP256SHA256));
        assert_eq!(dnskey.calculate_key_tag().unwrap(), 55648);
        let digest = dnskey
            .to_digest(&Name::from_str("example.net.").unwrap(), DigestType::SHA256)
            .unwrap();
        assert_eq!(
            data_encoding::HEXUPPER.encode(digest.as_ref()),
            "B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17"
        );
    }

    #[test]
    fn state_changes_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let _lock = store.lock().unwrap();
        let mut key = store
            .generate(
                &zone(),
                DnssecAlgorithm::EcdsaP256Sha256,
                KeyState::Published,
                10,
                &[],
            )
            .unwrap();
        key.set_state(KeyState::Active, 20);
        store.save(&key).unwrap();
        let loaded = store.load(&zone()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].state, KeyState::Active);
        assert_eq!(loaded[0].times.published, Some(10));
        assert_eq!(loaded[0].times.active, Some(20));
        store.remove(&key).unwrap();
        assert!(store.load(&zone()).unwrap().is_empty());
    }

    #[test]
    fn broken_key_files_are_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let _lock = store.lock().unwrap();
        let key = store
            .generate(
                &zone(),
                DnssecAlgorithm::EcdsaP256Sha256,
                KeyState::Active,
                10,
                &[],
            )
            .unwrap();
        let text = fs::read_to_string(&key.path).unwrap();
        fs::write(&key.path, text.replace("state: active", "state: sleeping")).unwrap();
        let error = store.load(&zone()).unwrap_err().to_string();
        assert!(error.contains(":6: state \"sleeping\""), "{error}");

        let wrong = format!("key-tag: {}", key.tag.wrapping_add(1));
        fs::write(
            &key.path,
            text.replace(&format!("key-tag: {}", key.tag), &wrong),
        )
        .unwrap();
        let error = store.load(&zone()).unwrap_err().to_string();
        assert!(error.contains("does not match the key"), "{error}");
    }
}
