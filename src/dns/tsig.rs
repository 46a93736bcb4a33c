//! TSIG (RFC 8945): messages signed with a secret shared between two servers.
//!
//! A TSIG RR is the last record of a message's additional section. Its MAC is an HMAC (ring's,
//! SHA-256, -384 or -512) over what §4.3.3 lists, which this module computes over the bytes of
//! the message as sent:
//!
//! - a request: the message without its TSIG (ARCOUNT one less, the ID the original one), then
//!   the TSIG variables — key name and algorithm in canonical form, class ANY, TTL 0, time
//!   signed, fudge, error, other data;
//! - the first (or only) response to it: the request's MAC (length first), the response
//!   without its TSIG, the variables;
//! - each later message of a transfer (§5.3.1): the previous MAC, the messages since it (here
//!   each message is signed, so just this one), and the timers (time signed, fudge) only.
//!
//! A server checks a signed request in the RFC's order (§5.2): the key and algorithm
//! (BADKEY: NOTAUTH, unsigned reply), the MAC (BADSIG: NOTAUTH, unsigned), the time within the
//! fudge (BADTIME: NOTAUTH, signed, the server's time in the other data), a truncated MAC
//! (BADTRUNC: onebox requires the full MAC). A MAC longer than the algorithm's, or shorter
//! than half of it or 10 bytes, is FORMERR. [`verify_request`] does this; the [`Signer`] it
//! returns signs the reply, or every message of a transfer. Clients (NOTIFY, the secondary's
//! transfers) sign with [`sign_request`] and check responses with a [`Verifier`], which also
//! accepts unsigned messages between signed ones, as the RFC allows (up to 99).
//!
//! Reading the clock is the one impurity this adds to answering, and only for signed queries.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::config::{DnsConfig, TsigKey};

/// The TSIG RR type.
pub(crate) const TSIG: u16 = 250;
/// Class ANY, the TSIG RR's class.
const CLASS_ANY: u16 = 255;
/// Seconds of clock difference allowed between signer and verifier (RFC 8945 §10: 300).
pub(crate) const FUDGE: u16 = 300;

/// The TSIG error codes (the TSIG RR's Error field, RFC 8945 §3).
pub(crate) const BADSIG: u16 = 16;
/// The key is not known (or not with this algorithm).
pub(crate) const BADKEY: u16 = 17;
/// The time signed is outside the fudge.
pub(crate) const BADTIME: u16 = 18;
/// The MAC is truncated beyond what is accepted.
pub(crate) const BADTRUNC: u16 = 22;

/// A TSIG error code's name, for logs.
pub(crate) fn error_name(code: u16) -> String {
    match code {
        0 => "NOERROR".to_owned(),
        BADSIG => "BADSIG".to_owned(),
        BADKEY => "BADKEY".to_owned(),
        BADTIME => "BADTIME".to_owned(),
        BADTRUNC => "BADTRUNC".to_owned(),
        other => format!("error {other}"),
    }
}

/// The HMAC algorithms onebox signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// `hmac-sha256.`
    HmacSha256,
    /// `hmac-sha384.`
    HmacSha384,
    /// `hmac-sha512.`
    HmacSha512,
}

impl Algorithm {
    /// The algorithm a configuration names (`hmac-sha256`, ...).
    pub(crate) fn from_config(name: &str) -> Option<Self> {
        match name.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "hmac-sha384" => Some(Self::HmacSha384),
            "hmac-sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// The algorithm's name in wire form (canonical: lower case, uncompressed).
    fn wire(self) -> &'static [u8] {
        match self {
            Self::HmacSha256 => b"\x0bhmac-sha256\x00",
            Self::HmacSha384 => b"\x0bhmac-sha384\x00",
            Self::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256 => hmac::HMAC_SHA256,
            Self::HmacSha384 => hmac::HMAC_SHA384,
            Self::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// The length of a full MAC.
    fn mac_len(self) -> usize {
        self.ring().digest_algorithm().output_len()
    }
}

/// One TSIG key.
pub(crate) struct Key {
    name: Name,
    /// The name in canonical wire form (lower case, uncompressed).
    wire: Vec<u8>,
    algorithm: Algorithm,
    hmac: hmac::Key,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// The key `name` for `algorithm` with `secret`.
    pub(crate) fn new(name: &str, algorithm: Algorithm, secret: &[u8]) -> Result<Self, String> {
        let mut name = Name::from_ascii(name).map_err(|e| format!("{name:?}: {e}"))?;
        name.set_fqdn(true);
        let name = name.to_lowercase();
        Ok(Self {
            wire: wire_name(&name),
            name,
            algorithm,
            hmac: hmac::Key::new(algorithm.ring(), secret),
        })
    }

    /// The key's name.
    pub(crate) fn name(&self) -> &Name {
        &self.name
    }
}

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keyring {
    keys: Vec<Arc<Key>>,
}

impl Keyring {
    /// The keys of `[[dns.tsig]]`. A key whose secret cannot be read any more (the
    /// configuration was checked when loaded) is logged and left out: what needs it is refused.
    pub(crate) fn from_config(config: &DnsConfig) -> Self {
        let keys = config
            .tsig
            .iter()
            .filter_map(|key| match load(key) {
                Ok(loaded) => Some(Arc::new(loaded)),
                Err(error) => {
                    tracing::error!(key = %key.name, %error, "TSIG key not loaded; what needs it is refused");
                    None
                }
            })
            .collect();
        Self { keys }
    }

    /// The key named `name` (as the configuration spells it, any case).
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Key>> {
        let mut wanted = Name::from_ascii(name).ok()?;
        wanted.set_fqdn(true);
        let wire = wire_name(&wanted.to_lowercase());
        self.find(&wire).cloned()
    }

    fn find(&self, wire: &[u8]) -> Option<&Arc<Key>> {
        self.keys.iter().find(|key| key.wire == wire)
    }
}

fn load(key: &TsigKey) -> Result<Key, String> {
    let algorithm = Algorithm::from_config(&key.algorithm)
        .ok_or_else(|| format!("unknown algorithm {:?}", key.algorithm))?;
    Key::new(&key.name, algorithm, &key.secret_bytes()?)
}

/// Seconds since the epoch, as TSIG counts time.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A TSIG RR read from a message.
#[derive(Debug, Clone)]
pub(crate) struct Tsig {
    /// Where the RR starts in the message.
    pub start: usize,
    /// The key name, canonical wire form.
    key: Vec<u8>,
    /// The algorithm name, canonical wire form.
    algorithm: Vec<u8>,
    time_signed: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    /// The TSIG error the sender reports.
    pub error: u16,
    other: Vec<u8>,
}

impl Tsig {
    /// The key name, for logs.
    pub(crate) fn key_name(&self) -> String {
        let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(&self.key);
        <Name as hickory_proto::serialize::binary::BinDecodable>::read(&mut decoder)
            .map_or_else(|_| "?".to_owned(), |name| name.to_string())
    }
}

/// Reads the TSIG RR starting at `start` in `message` (which must end with it).
pub(crate) fn read(message: &[u8], start: usize) -> Option<Tsig> {
    let (key, at) = read_name(message, start)?;
    let fixed = message.get(at..at + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    if rtype != TSIG || class != CLASS_ANY || at + 10 + rdlength != message.len() {
        return None;
    }
    let rdata_start = at + 10;
    let (algorithm, at) = read_name(message, rdata_start)?;
    let mut reader = Bytes {
        bytes: message.get(at..)?,
    };
    let time_signed = reader.u48()?;
    let fudge = reader.u16()?;
    let mac_len = usize::from(reader.u16()?);
    let mac = reader.take(mac_len)?.to_vec();
    let original_id = reader.u16()?;
    let error = reader.u16()?;
    let other_len = usize::from(reader.u16()?);
    let other = reader.take(other_len)?.to_vec();
    if !reader.bytes.is_empty() {
        return None;
    }
    Some(Tsig {
        start,
        key,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Why a signed request is not answered normally.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// The TSIG RR is malformed, or its MAC has an impossible length: FORMERR.
    Malformed,
    /// NOTAUTH with this TSIG error, unsigned (BADKEY, BADSIG).
    Unsigned(u16),
    /// NOTAUTH, signed by this signer, which carries the error (BADTIME, BADTRUNC).
    Signed(Signer),
}

/// Checks the TSIG of a request (RFC 8945 §5.2) found in `message` against `keys` at time
/// `now`. The signer signs the response.
pub(crate) fn verify_request(
    keys: &Keyring,
    message: &[u8],
    tsig: &Tsig,
    now: u64,
) -> Result<Signer, Rejection> {
    let Some(key) = keys
        .find(&tsig.key)
        .filter(|key| key.algorithm.wire() == tsig.algorithm.as_slice())
    else {
        return Err(Rejection::Unsigned(BADKEY));
    };
    let full = key.algorithm.mac_len();
    if tsig.mac.len() > full || tsig.mac.len() < (full / 2).max(10) {
        return Err(Rejection::Malformed);
    }
    let mut context = hmac::Context::with_key(&key.hmac);
    update_unsigned(&mut context, message, tsig);
    update_variables(
        &mut context,
        key,
        tsig.time_signed,
        tsig.fudge,
        tsig.error,
        &tsig.other,
    );
    let computed = context.sign();
    let equal: bool = computed.as_ref()[..tsig.mac.len()].ct_eq(&tsig.mac).into();
    if !equal {
        return Err(Rejection::Unsigned(BADSIG));
    }
    let mut signer = Signer::new(key.clone(), tsig.mac.clone(), now);
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        // Signed with the request's time, the server's own in the other data (§5.2.3), so the
        // client can verify it and see the difference.
        signer.time = tsig.time_signed;
        signer.error = BADTIME;
        signer.other = now.to_be_bytes()[2..].to_vec();
        return Err(Rejection::Signed(signer));
    }
    if tsig.mac.len() < full {
        signer.error = BADTRUNC;
        return Err(Rejection::Signed(signer));
    }
    Ok(signer)
}

/// Appends to `reply` (NOTAUTH, its ID the request's) the unsigned TSIG RR of an error reply to
/// the request signed with `tsig` (§5.3.2: MAC empty).
pub(crate) fn append_unsigned(reply: &mut Vec<u8>, tsig: &Tsig, error: u16, now: u64) {
    let id = u16::from_be_bytes([reply[0], reply[1]]);
    append_rr(
        reply,
        &tsig.key,
        &tsig.algorithm,
        now,
        tsig.fudge,
        &[],
        id,
        error,
        &[],
    );
}

/// Signs responses to one signed request: the reply, or each message of a transfer.
#[derive(Debug)]
pub(crate) struct Signer {
    key: Arc<Key>,
    /// The request's MAC, then each message's.
    prior: Vec<u8>,
    time: u64,
    error: u16,
    other: Vec<u8>,
    first: bool,
}

impl Signer {
    fn new(key: Arc<Key>, request_mac: Vec<u8>, now: u64) -> Self {
        Self {
            key,
            prior: request_mac,
            time: now,
            error: 0,
            other: Vec::new(),
            first: true,
        }
    }

    /// The key that signed the request.
    pub(crate) fn key(&self) -> &Arc<Key> {
        &self.key
    }

    /// The TSIG error its first message carries (0: none).
    pub(crate) fn error(&self) -> u16 {
        self.error
    }

    /// The bytes the TSIG RR adds to a message.
    pub(crate) fn overhead(&self) -> usize {
        self.key.wire.len()
            + 10
            + self.key.algorithm.wire().len()
            + 16
            + self.key.algorithm.mac_len()
            + self.other.len()
    }

    /// Appends the TSIG RR to `message` (complete otherwise; ARCOUNT is raised by one).
    pub(crate) fn sign(&mut self, message: &mut Vec<u8>) {
        let mut context = hmac::Context::with_key(&self.key.hmac);
        context.update(&(self.prior.len() as u16).to_be_bytes());
        context.update(&self.prior);
        context.update(message);
        if self.first {
            update_variables(
                &mut context,
                &self.key,
                self.time,
                FUDGE,
                self.error,
                &self.other,
            );
        } else {
            update_timers(&mut context, self.time, FUDGE);
        }
        let mac = context.sign();
        let id = u16::from_be_bytes([message[0], message[1]]);
        append_rr(
            message,
            &self.key.wire,
            self.key.algorithm.wire(),
            self.time,
            FUDGE,
            mac.as_ref(),
            id,
            self.error,
            &self.other,
        );
        self.prior = mac.as_ref().to_vec();
        self.first = false;
    }
}

/// Signs a request (complete otherwise) with `key` at time `now`; returns the MAC, which the
/// [`Verifier`] of the response needs.
pub(crate) fn sign_request(key: &Arc<Key>, message: &mut Vec<u8>, now: u64) -> Vec<u8> {
    let mut context = hmac::Context::with_key(&key.hmac);
    context.update(message);
    update_variables(&mut context, key, now, FUDGE, 0, &[]);
    let mac = context.sign();
    let id = u16::from_be_bytes([message[0], message[1]]);
    append_rr(
        message,
        &key.wire,
        key.algorithm.wire(),
        now,
        FUDGE,
        mac.as_ref(),
        id,
        0,
        &[],
    );
    mac.as_ref().to_vec()
}

/// Why a response did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VerifyError {
    /// The first message, the last one or one of every 100 carries no TSIG.
    #[error("the response is not signed")]
    Unsigned,
    /// The TSIG RR cannot be read.
    #[error("the response's TSIG record is malformed")]
    Malformed,
    /// Signed with another key or algorithm.
    #[error("the response is signed with another key")]
    WrongKey,
    /// The MAC does not verify.
    #[error(
        "the response's signature does not verify (BADSIG): is the secret the same on both sides?"
    )]
    BadSignature,
    /// The time signed is outside the fudge.
    #[error("the response was signed at a time {0} s away from this clock (BADTIME)")]
    BadTime(u64),
    /// The server reports a TSIG error about our request.
    #[error("the server answered {} to our signature", error_name(*.0))]
    Remote(u16),
}

/// Checks the TSIG of the responses to a signed request, message after message.
#[derive(Debug)]
pub(crate) struct Verifier {
    key: Arc<Key>,
    prior: Vec<u8>,
    /// Messages received unsigned since the last signed one.
    unsigned: Vec<u8>,
    pending: usize,
    first: bool,
}

impl Verifier {
    /// Verifies the responses to the request signed with `key`, whose MAC was `request_mac`.
    pub(crate) fn new(key: Arc<Key>, request_mac: Vec<u8>) -> Self {
        Self {
            key,
            prior: request_mac,
            unsigned: Vec::new(),
            pending: 0,
            first: true,
        }
    }

    /// Checks the next response message at time `now`.
    pub(crate) fn verify(&mut self, message: &[u8], now: u64) -> Result<(), VerifyError> {
        let start = locate(message).map_err(|()| VerifyError::Malformed)?;
        let Some(start) = start else {
            if self.first || self.pending >= 99 {
                return Err(VerifyError::Unsigned);
            }
            self.unsigned.extend_from_slice(message);
            self.pending += 1;
            return Ok(());
        };
        let tsig = read(message, start).ok_or(VerifyError::Malformed)?;
        if tsig.error != 0 && tsig.mac.is_empty() {
            return Err(VerifyError::Remote(tsig.error));
        }
        if tsig.key != self.key.wire || tsig.algorithm != self.key.algorithm.wire() {
            return Err(VerifyError::WrongKey);
        }
        if tsig.mac.len() != self.key.algorithm.mac_len() {
            return Err(VerifyError::BadSignature);
        }
        let mut context = hmac::Context::with_key(&self.key.hmac);
        context.update(&(self.prior.len() as u16).to_be_bytes());
        context.update(&self.prior);
        context.update(&self.unsigned);
        update_unsigned(&mut context, message, &tsig);
        if self.first {
            update_variables(
                &mut context,
                &self.key,
                tsig.time_signed,
                tsig.fudge,
                tsig.error,
                &tsig.other,
            );
        } else {
            update_timers(&mut context, tsig.time_signed, tsig.fudge);
        }
        let computed = context.sign();
        let equal: bool = computed.as_ref().ct_eq(&tsig.mac).into();
        if !equal {
            return Err(VerifyError::BadSignature);
        }
        if tsig.error != 0 {
            return Err(VerifyError::Remote(tsig.error));
        }
        let skew = now.abs_diff(tsig.time_signed);
        if skew > u64::from(tsig.fudge) {
            return Err(VerifyError::BadTime(skew));
        }
        self.prior = tsig.mac;
        self.unsigned.clear();
        self.pending = 0;
        self.first = false;
        Ok(())
    }

    /// Whether the last message verified was signed (a transfer must end signed).
    pub(crate) fn finished(&self) -> Result<(), VerifyError> {
        if self.pending == 0 && !self.first {
            Ok(())
        } else {
            Err(VerifyError::Unsigned)
        }
    }
}

/// Feeds the message without its TSIG RR, as its signer saw it: ARCOUNT one less, the original
/// ID.
fn update_unsigned(context: &mut hmac::Context, message: &[u8], tsig: &Tsig) {
    let mut header = [0u8; 12];
    header.copy_from_slice(&message[..12]);
    header[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[10..12].copy_from_slice(&arcount.to_be_bytes());
    context.update(&header);
    context.update(&message[12..tsig.start]);
}

/// The TSIG variables (§4.3.3).
fn update_variables(
    context: &mut hmac::Context,
    key: &Key,
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) {
    context.update(&key.wire);
    context.update(&CLASS_ANY.to_be_bytes());
    context.update(&0u32.to_be_bytes());
    context.update(key.algorithm.wire());
    context.update(&time.to_be_bytes()[2..]);
    context.update(&fudge.to_be_bytes());
    context.update(&error.to_be_bytes());
    context.update(&(other.len() as u16).to_be_bytes());
    context.update(other);
}

/// The TSIG timers (§5.3.1): time signed and fudge.
fn update_timers(context: &mut hmac::Context, time: u64, fudge: u16) {
    context.update(&time.to_be_bytes()[2..]);
    context.update(&fudge.to_be_bytes());
}

/// Appends a TSIG RR to `message` and raises its ARCOUNT.
#[allow(clippy::too_many_arguments)]
fn append_rr(
    message: &mut Vec<u8>,
    key: &[u8],
    algorithm: &[u8],
    time: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) {
    let rdlength = algorithm.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + other.len();
    message.extend_from_slice(key);
    message.extend_from_slice(&TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdlength as u16).to_be_bytes());
    message.extend_from_slice(algorithm);
    message.extend_from_slice(&time.to_be_bytes()[2..]);
    message.extend_from_slice(&fudge.to_be_bytes());
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&original_id.to_be_bytes());
    message.extend_from_slice(&error.to_be_bytes());
    message.extend_from_slice(&(other.len() as u16).to_be_bytes());
    message.extend_from_slice(other);
    let arcount = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
}

/// Where the TSIG RR of `message` starts: the last record of its additional section, if it
/// is a TSIG. `Err` if the message cannot be walked.
pub(crate) fn locate(message: &[u8]) -> Result<Option<usize>, ()> {
    let count = |at: usize| -> Result<usize, ()> {
        let bytes = message.get(at..at + 2).ok_or(())?;
        Ok(usize::from(u16::from_be_bytes([bytes[0], bytes[1]])))
    };
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(message, at).ok_or(())? + 4;
    }
    let mut last = None;
    for i in 0..an + ns + ar {
        let start = at;
        let end = skip_name(message, at).ok_or(())?;
        let fixed = message.get(end..end + 10).ok_or(())?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        at = end + 10 + rdlength;
        if at > message.len() {
            return Err(());
        }
        if rtype == TSIG {
            if i + 1 != an + ns + ar || i < an + ns {
                return Err(());
            }
            last = Some(start);
        }
    }
    Ok(last)
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let label = *message.get(at)?;
        match label {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Reads the name at `at` (following compression pointers) in canonical wire form; returns it
/// and the offset just past it in the message.
fn read_name(message: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::with_capacity(32);
    let mut end = None;
    for _ in 0..128 {
        let label = *message.get(at)?;
        match label {
            0 => {
                name.push(0);
                return Some((name, end.unwrap_or(at + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let low = *message.get(at + 1)?;
                end.get_or_insert(at + 2);
                at = (usize::from(l & 0x3f) << 8) | usize::from(low);
            }
            l if l & 0xc0 == 0 => {
                let bytes = message.get(at + 1..at + 1 + usize::from(l))?;
                name.push(l);
                name.extend(bytes.iter().map(u8::to_ascii_lowercase));
                if name.len() > 255 {
                    return None;
                }
                at += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
    None
}

/// `name` in canonical wire form.
fn wire_name(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire
}

struct Bytes<'a> {
    bytes: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u48(&mut self) -> Option<u64> {
        let b = self.take(6)?;
        Some(b.iter().fold(0u64, |n, &byte| (n << 8) | u64::from(byte)))
    }
}

#[cfg(test)]
#[path = "tsig_tests.rs"]
mod tests;
