//! Answering: one query packet plus the current catalog snapshot in, reply bytes out.
//!
//! Pure: no sockets, no locks, and the clock only for signed queries (`tsig`) and cookies.
//! Both transports call [`Responder::respond_cookie`], which
//!
//! 1. parses the header, the question and the OPT record itself (FORMERR for malformed queries,
//!    NOTIMP for opcodes other than QUERY and NOTIFY, silence for responses), and checks the
//!    COOKIE option (`cookie`: FORMERR when malformed; else the reply carries the client
//!    cookie and a server cookie, and the transport learns whether the server cookie was
//!    valid, for rate limiting);
//! 2. answers NOTIFY for the secondary zones (`secondary`): from a listed primary (signed with
//!    the zone's key when it has one) it triggers the zone's refresh, from anyone else REFUSED;
//! 3. handles what is not a zone lookup: EDNS versions above 0 (BADVERS), classes other than IN
//!    and ANY (REFUSED, but CH TXT `version.bind` and `id.server`), zone transfers (TCP and the
//!    transfer ACL only; NOTIMP for AXFR over UDP);
//! 4. finds the zone (REFUSED outside every zone: no recursion here; SERVFAIL for a secondary
//!    zone expired or not yet transferred, as NSD answers), looks the name up in it (`lookup`)
//!    and encodes the result (`reply`) — QCLASS ANY as IN, without AA;
//! 5. fits the reply to the transport: over UDP, the client's EDNS payload size (512 without
//!    EDNS, at most 1232) — dropping additional data when that suffices, else setting TC.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ipnet::IpNet;

use super::catalog::{Catalog, ZoneData};
use super::cookie::{self, Cookies, Status as CookieStatus};
use super::journal::Diff;
use super::lookup::{self, Want};
use super::reply::{self, Item, Owner, Reply};
use super::rrl::Limits;
use super::secondary::Inbound;
use super::serial::serial_gt;
use super::tsig::{self, Key, Keyring, Rejection, Signer};
use super::zone::APEX;
use crate::config::DnsConfig;
use crate::ops::snapshot::Snapshot;

/// The UDP payload size onebox advertises and sends at most (the DNS flag day 2020 value).
pub(crate) const MAX_UDP_PAYLOAD: u16 = 1232;

const HEADER_LEN: usize = 12;
const OPT_LEN: usize = 11;
const OPCODE_QUERY: u8 = 0;
const OPCODE_NOTIFY: u8 = 4;
const RCODE_BADVERS_HIGH: u8 = 1; // BADVERS = 16: the upper eight bits, in the OPT TTL.
/// BADCOOKIE (RFC 7873 §8): 7 in the header, 1 in the OPT TTL's extended RCODE.
const RCODE_BADCOOKIE: u8 = 23;

/// The transport a query arrived on; it decides the reply size limit and what may be transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Datagrams: replies are truncated to the client's payload size (TC set).
    Udp,
    /// Streams: full replies, and zone transfers.
    Tcp,
}

/// What the transport should do with a query.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `out` holds one complete reply message (no TCP length prefix).
    Reply,
    /// Send nothing (a response, or a packet too short to answer).
    Drop,
    /// TCP only: stream a zone transfer (AXFR, or IXFR answered incrementally or in full);
    /// `out` is empty.
    Transfer(Transfer),
}

/// An allowed zone transfer, for `xfr` to stream.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The zone snapshot to send (it stays consistent even if a reload happens meanwhile).
    pub zone: Arc<ZoneData>,
    /// The query's ID, echoed in every message.
    pub id: u16,
    /// The QTYPE asked (AXFR or IXFR).
    pub qtype: u16,
    /// The query's question section bytes (QNAME as sent, QTYPE, QCLASS), echoed in the first
    /// message.
    pub question: Vec<u8>,
    /// An incremental transfer: the journal steps from the client's serial to the zone's.
    /// `None`: the whole zone.
    pub steps: Option<Vec<Arc<Diff>>>,
    /// Signs every message, when the query was signed (TSIG).
    pub signer: Option<Signer>,
}

impl Transfer {
    /// "IXFR" for an incremental transfer, "AXFR" for the whole zone (whichever was asked).
    pub(crate) fn style(&self) -> &'static str {
        if self.steps.is_some() { "IXFR" } else { "AXFR" }
    }
}

/// How the responder answers what is not zone data; replaced whole when the configuration is
/// reloaded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Networks allowed to transfer zones (`dns.transfer.allow`).
    pub transfer_allow: Vec<IpNet>,
    /// One log line per query (`dns.query_log`).
    pub query_log: bool,
    /// The answer to `CH TXT hostname.bind` / `id.server`; `None` refuses them.
    pub identity: Option<String>,
    /// The TSIG keys (`[[dns.tsig]]`), for signed queries.
    pub keys: Keyring,
    /// The key transfers must be signed with (`dns.transfer.tsig`).
    pub transfer_key: TransferKey,
    /// Response rate limiting over UDP (`[dns.rate_limit]`), applied by each UDP worker.
    pub rate_limit: Limits,
    /// DNS cookies (`[dns.cookies]`): the secrets, none when off.
    pub cookies: Cookies,
}

/// What `dns.transfer.tsig` asks of a transfer, on top of `dns.transfer.allow`.
#[derive(Debug, Clone, Default)]
pub(crate) enum TransferKey {
    /// Nothing: unsigned transfers are served.
    #[default]
    None,
    /// A signature with this key.
    Required(Arc<Key>),
    /// A key that could not be loaded: every transfer is refused (never served unsigned).
    Missing(String),
}

impl TransferKey {
    /// The policy `config` asks for, with the keys of `keys`.
    pub(crate) fn from_config(config: &DnsConfig, keys: &Keyring) -> Self {
        let name = &config.transfer.tsig;
        if name.is_empty() {
            return Self::None;
        }
        keys.get(name)
            .map_or_else(|| Self::Missing(name.clone()), Self::Required)
    }

    /// The key NOTIFY is signed with, if any.
    pub(crate) fn key(&self) -> Option<Arc<Key>> {
        match self {
            Self::Required(key) => Some(key.clone()),
            Self::None | Self::Missing(_) => None,
        }
    }
}

impl Settings {
    /// The settings `config` asks for; an unset `dns.identity` is the host's name. The cookie
    /// secret generated when none is configured is kept in `state_dir`.
    pub(crate) fn from_config(config: &DnsConfig, state_dir: &Path) -> Self {
        let identity = match &config.identity {
            Some(identity) if identity.is_empty() => None,
            Some(identity) => Some(identity.clone()),
            None => Some(hostname()),
        };
        let keys = Keyring::from_config(config);
        Self {
            transfer_allow: config.transfer.allow.clone(),
            query_log: config.query_log,
            identity,
            transfer_key: TransferKey::from_config(config, &keys),
            keys,
            rate_limit: Limits::from_config(&config.rate_limit),
            cookies: cookie::load(&config.cookies, state_dir).unwrap_or_else(|error| {
                tracing::error!(%error, "DNS cookies are off: their secret cannot be loaded");
                Cookies::default()
            }),
        }
    }
}

/// The host's name, as `hostname` prints it ("localhost" if the system will not say).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

/// Answers queries from the current catalog; the catalog is swapped whole on reload, and the
/// settings with the configuration.
pub(crate) struct Responder {
    catalog: Snapshot<Catalog>,
    settings: ArcSwap<Settings>,
    /// `settings.query_log`, read on every query without touching the settings.
    query_log: AtomicBool,
    /// The secondary zones: whom NOTIFY is accepted from, and what it triggers.
    inbound: ArcSwap<Inbound>,
    /// Whether `inbound` lists any zone, read on every query without touching it.
    secondaries: AtomicBool,
}

impl Responder {
    pub(crate) fn new(catalog: Catalog, settings: Settings) -> Self {
        Self {
            catalog: Snapshot::new("zones", catalog),
            query_log: AtomicBool::new(settings.query_log),
            settings: ArcSwap::from_pointee(settings),
            inbound: ArcSwap::from_pointee(Inbound::default()),
            secondaries: AtomicBool::new(false),
        }
    }

    /// The settings in force (for the UDP workers' rate limiting).
    pub(crate) fn settings(&self) -> arc_swap::Guard<Arc<Settings>> {
        self.settings.load()
    }

    /// The secondary zones from now on (`secondary`).
    pub(crate) fn set_inbound(&self, inbound: Inbound) {
        let any = !inbound.is_empty();
        self.inbound.store(Arc::new(inbound));
        self.secondaries.store(any, Ordering::Relaxed);
    }

    /// The snapshot in service now.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.get()
    }

    /// Puts a new catalog in service (`versions`, the one path that changes it); queries
    /// already running finish on the old one.
    pub(crate) fn swap(&self, catalog: Catalog) {
        self.catalog.store(catalog);
    }

    /// The key outgoing NOTIFY is signed with (`dns.transfer.tsig`), if any.
    pub(crate) fn notify_key(&self) -> Option<Arc<Key>> {
        self.settings.load().transfer_key.key()
    }

    /// Applies the settings of a new configuration (transfer ACL, query log, identity).
    pub(crate) fn set_settings(&self, settings: Settings) {
        self.query_log.store(settings.query_log, Ordering::Relaxed);
        self.settings.store(Arc::new(settings));
    }

    /// Answers one query. `out` is cleared first; on [`Outcome::Reply`] it holds the reply.
    #[cfg(test)]
    pub(crate) fn respond(
        &self,
        packet: &[u8],
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.respond_cookie(packet, peer, transport, out).0
    }

    /// Answers one query, as `respond` (the tests' entry) does, and says what the query's
    /// COOKIE option was (a valid server cookie
    /// exempts the client from rate limiting).
    pub(crate) fn respond_cookie(
        &self,
        packet: &[u8],
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> (Outcome, CookieStatus) {
        out.clear();
        let mut status = CookieStatus::None;
        let outcome = match parse(packet) {
            Parsed::Drop => Outcome::Drop,
            Parsed::Error(error) => {
                write_error(out, &error);
                Outcome::Reply
            }
            Parsed::Query(mut query) => {
                status = self.cookie(&mut query, peer);
                match query.tsig_at {
                    // RFC 7873 §5.2.2: a malformed COOKIE option is FORMERR, without a cookie.
                    _ if status == CookieStatus::Malformed => {
                        write_simple(out, &query, u16::from(ResponseCode::FormErr) as u8, 0);
                        Outcome::Reply
                    }
                    None => self.answer(&query, peer, transport, out),
                    Some(at) => self.answer_signed(query, packet, at, peer, transport, out),
                }
            }
        };
        if self.query_log.load(Ordering::Relaxed) {
            log_query(packet, peer, transport, &outcome, out);
        }
        (outcome, status)
    }

    /// Checks the query's COOKIE option, if any and if cookies are on, and puts the cookie the
    /// reply carries in its EDNS parameters.
    fn cookie(&self, query: &mut Query<'_>, peer: SocketAddr) -> CookieStatus {
        let (Some(data), Some(edns)) = (query.cookie, query.edns.as_mut()) else {
            return CookieStatus::None;
        };
        let settings = self.settings.load();
        let now = tsig::now() as u32; // RFC 9018's timestamp: seconds modulo 2^32
        let (status, reply) = settings.cookies.check(data, peer.ip(), now);
        edns.cookie = reply;
        status
    }

    /// Rewrites `out` as BADCOOKIE (RFC 7873 §5.2.3) for `packet`, a query over UDP with a
    /// client cookie but no valid server cookie whose reply the rate limiter would send
    /// truncated: the short reply carries a fresh server cookie, with which a real client
    /// retries and is no longer limited. False (and `out` untouched) when `packet` is not such
    /// a query (no cookie, or signed: TSIG replies are not rewritten).
    pub(crate) fn bad_cookie(&self, packet: &[u8], peer: SocketAddr, out: &mut Vec<u8>) -> bool {
        let Parsed::Query(mut query) = parse(packet) else {
            return false;
        };
        let status = self.cookie(&mut query, peer);
        if query.tsig_at.is_some()
            || !matches!(status, CookieStatus::ClientOnly | CookieStatus::Invalid)
        {
            return false;
        }
        write_simple(out, &query, RCODE_BADCOOKIE & 0x0f, RCODE_BADCOOKIE >> 4);
        true
    }

    /// A query signed with TSIG (RFC 8945 §5.2): verified first, then answered, the reply (or
    /// every message of a transfer) signed with the same key. A failure is answered NOTAUTH
    /// with the TSIG error (BADKEY and BADSIG unsigned, BADTIME and BADTRUNC signed), and
    /// logged.
    fn answer_signed(
        &self,
        mut query: Query<'_>,
        packet: &[u8],
        at: usize,
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let now = tsig::now();
        let Some(found) = tsig::read(packet, at) else {
            tracing::warn!(%peer, "TSIG record malformed; answered FORMERR");
            write_simple(out, &query, u16::from(ResponseCode::FormErr) as u8, 0);
            return Outcome::Reply;
        };
        let notauth = u16::from(ResponseCode::NotAuth) as u8;
        let rejected = |code: u16| {
            tracing::warn!(%peer, key = %found.key_name(), error = %tsig::error_name(code), "TSIG verification failed; answered NOTAUTH");
        };
        match tsig::verify_request(&self.settings.load().keys, packet, &found, now) {
            Ok(mut signer) => {
                query.reserve = signer.overhead();
                query.signed_by = Some(signer.key().clone());
                match self.answer(&query, peer, transport, out) {
                    Outcome::Reply => {
                        signer.sign(out);
                        Outcome::Reply
                    }
                    Outcome::Transfer(mut transfer) => {
                        transfer.signer = Some(signer);
                        Outcome::Transfer(transfer)
                    }
                    Outcome::Drop => Outcome::Drop,
                }
            }
            Err(Rejection::Malformed) => {
                tracing::warn!(%peer, key = %found.key_name(), "TSIG MAC of an impossible length; answered FORMERR");
                write_simple(out, &query, u16::from(ResponseCode::FormErr) as u8, 0);
                Outcome::Reply
            }
            Err(Rejection::Unsigned(code)) => {
                rejected(code);
                write_simple(out, &query, notauth, 0);
                tsig::append_unsigned(out, &found, code, now);
                Outcome::Reply
            }
            Err(Rejection::Signed(mut signer)) => {
                rejected(signer.error());
                write_simple(out, &query, notauth, 0);
                signer.sign(out);
                Outcome::Reply
            }
        }
    }

    fn answer(
        &self,
        query: &Query<'_>,
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if query.edns.is_some_and(|edns| edns.version > 0) {
            write_simple(out, query, 0, RCODE_BADVERS_HIGH);
            return Outcome::Reply;
        }
        // QCLASS ANY (255) is answered from the IN data, without AA: the server cannot vouch
        // for classes it does not serve (RFC 1035 §3.2.5; NSD and Knot answer so).
        if query.opcode == OPCODE_NOTIFY {
            self.notified(query, peer, out);
            return Outcome::Reply;
        }
        let class_any = query.qclass == u16::from(DNSClass::ANY);
        if query.qclass != u16::from(DNSClass::IN) && !class_any {
            self.chaos(query, transport, out);
            return Outcome::Reply;
        }
        let catalog = self.catalog.load();
        match RecordType::from(query.qtype) {
            // A zone transfer does not fit in datagrams (RFC 5936 §4.2): NOTIMP, as NSD says.
            RecordType::AXFR if transport == Transport::Udp => {
                write_simple(out, query, u16::from(ResponseCode::NotImp) as u8, 0);
                return Outcome::Reply;
            }
            RecordType::AXFR | RecordType::IXFR => {
                return self.transfer(&catalog, query, peer, transport, out);
            }
            RecordType::OPT => {
                write_simple(out, query, u16::from(ResponseCode::FormErr) as u8, 0);
                return Outcome::Reply;
            }
            _ => {}
        }
        let zone = match catalog.authority_for(query.key(), query.qtype) {
            // A secondary zone not transferred yet, below a zone served here: SERVFAIL for its
            // names, as NSD answers, never the parent's referral or NXDOMAIN.
            Some(zone)
                if self.secondaries.load(Ordering::Relaxed)
                    && self
                        .inbound
                        .load()
                        .holds_below(query.key(), usize::from(zone.origin().num_labels())) =>
            {
                write_simple(out, query, u16::from(ResponseCode::ServFail) as u8, 0);
                return Outcome::Reply;
            }
            Some(zone) if !zone.expired() => zone,
            Some(_) => {
                write_simple(out, query, u16::from(ResponseCode::ServFail) as u8, 0);
                return Outcome::Reply;
            }
            // A secondary zone not transferred yet is the server's, but it has no data.
            None if self.inbound.load().holds(query.key()) => {
                write_simple(out, query, u16::from(ResponseCode::ServFail) as u8, 0);
                return Outcome::Reply;
            }
            None => {
                write_simple(out, query, u16::from(ResponseCode::Refused) as u8, 0);
                return Outcome::Reply;
            }
        };
        let want = match query.qtype {
            qtype if qtype == u16::from(RecordType::ANY) => Want::Any,
            qtype => Want::Type(qtype),
        };
        SCRATCH.with_borrow_mut(|reply| {
            let dnssec_ok = query.edns.is_some_and(|edns| edns.dnssec_ok);
            lookup::lookup(
                zone,
                query.key(),
                query.qname(),
                want,
                class_any,
                dnssec_ok,
                reply,
            );
            write_reply(out, query, zone, reply, transport);
        });
        Outcome::Reply
    }

    /// AXFR (TCP) and IXFR, to allowed clients only. AXFR gets the whole zone. IXFR
    /// (RFC 1995 §4): the SOA alone over UDP ("use TCP") and to a client up to date; over TCP
    /// the journal's steps from the client's serial when the journal reaches back that far,
    /// else the whole zone.
    fn transfer(
        &self,
        catalog: &Catalog,
        query: &Query<'_>,
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let settings = self.settings.load();
        let allowed = settings
            .transfer_allow
            .iter()
            .any(|net| net.contains(&peer.ip()));
        let refusal = match &settings.transfer_key {
            _ if !allowed => Some("client not in dns.transfer.allow".to_owned()),
            TransferKey::None => None,
            TransferKey::Required(key) => match &query.signed_by {
                Some(signer) if signer.name() == key.name() => None,
                Some(signer) => Some(format!(
                    "signed with the key {}, not the dns.transfer.tsig key {}",
                    signer.name(),
                    key.name()
                )),
                None => Some(format!(
                    "not signed with the dns.transfer.tsig key {}",
                    key.name()
                )),
            },
            TransferKey::Missing(name) => Some(format!(
                "the dns.transfer.tsig key {name} could not be loaded"
            )),
        };
        let served = catalog.exact(query.key());
        let zone = match (served, refusal) {
            (Some(zone), None) if zone.expired() => {
                tracing::warn!(zone = %zone.origin(), %peer, "zone transfer refused: the secondary zone has expired");
                write_simple(out, query, u16::from(ResponseCode::ServFail) as u8, 0);
                return Outcome::Reply;
            }
            (Some(zone), None) => zone,
            (served, refusal) => {
                if let (Some(zone), Some(why)) = (served, refusal) {
                    tracing::warn!(zone = %zone.origin(), %peer, "zone transfer refused: {why}");
                }
                write_simple(out, query, u16::from(ResponseCode::Refused) as u8, 0);
                return Outcome::Reply;
            }
        };
        let is_ixfr = query.qtype == u16::from(RecordType::IXFR);
        if is_ixfr && query.client_serial.is_none() {
            // RFC 1995 §3: the query carries the client's SOA in its authority section.
            write_simple(out, query, u16::from(ResponseCode::FormErr) as u8, 0);
            return Outcome::Reply;
        }
        let up_to_date = query
            .client_serial
            .is_some_and(|serial| serial == zone.serial() || serial_gt(serial, zone.serial()));
        if is_ixfr && (transport == Transport::Udp || up_to_date) {
            SCRATCH.with_borrow_mut(|reply| {
                reply.clear();
                let (soa, _) = zone.soa();
                reply.answer.push(Item::set(Owner::Node(APEX), soa));
                write_reply(out, query, zone, reply, transport);
            });
            return Outcome::Reply;
        }
        let steps = query
            .client_serial
            .filter(|_| is_ixfr)
            .and_then(|serial| zone.history().since(serial))
            .map(<[Arc<Diff>]>::to_vec);
        Outcome::Transfer(Transfer {
            zone: zone.clone(),
            id: query.id,
            qtype: query.qtype,
            question: query.question.to_vec(),
            steps,
            signer: None,
        })
    }

    /// NOTIFY (RFC 1996) for a secondary zone: from one of its primaries (by address) and,
    /// when the zone has a `tsig_key`, signed with it, the zone is refreshed at once and the
    /// reply is NOERROR; anything else is REFUSED and logged.
    fn notified(&self, query: &Query<'_>, peer: SocketAddr, out: &mut Vec<u8>) {
        let inbound = self.inbound.load();
        let refusal = match inbound.zone(query.key()) {
            None => Err("not a secondary zone here".to_owned()),
            Some(zone) => zone
                .admits(peer.ip(), query.signed_by.as_deref())
                .map(|()| zone),
        };
        match refusal {
            Ok(zone) => {
                tracing::info!(zone = %zone.origin(), %peer, serial = ?query.client_serial, "NOTIFY from a primary: refreshing the zone");
                zone.trigger();
                write_simple(out, query, 0, 0);
                out[2] |= 0x04; // AA
            }
            Err(why) => {
                let zone = super::zone::name::to_text(query.qname());
                tracing::warn!(%zone, %peer, "NOTIFY refused: {why}");
                write_simple(out, query, u16::from(ResponseCode::Refused) as u8, 0);
            }
        }
    }

    /// The CHAOS class, as NSD answers it: TXT (or ANY) `version.bind` / `version.server` give
    /// the software version, `hostname.bind` / `id.server` the identity (`dns.identity`);
    /// everything else is REFUSED. onebox is not authoritative for CH: AA is clear.
    fn chaos(&self, query: &Query<'_>, transport: Transport, out: &mut Vec<u8>) {
        let refused = u16::from(ResponseCode::Refused) as u8;
        let is_txt =
            query.qtype == u16::from(RecordType::TXT) || query.qtype == u16::from(RecordType::ANY);
        let settings = self.settings.load();
        let text = match query.key() {
            _ if query.qclass != u16::from(DNSClass::CH) || !is_txt => None,
            b"\x07version\x04bind\x00" | b"\x07version\x06server\x00" => {
                Some(concat!("onebox ", env!("CARGO_PKG_VERSION")))
            }
            b"\x08hostname\x04bind\x00" | b"\x02id\x06server\x00" => settings.identity.as_deref(),
            _ => None,
        };
        let Some(text) = text else {
            write_simple(out, query, refused, 0);
            return;
        };
        // One TXT record under the question's name, class CH, TTL 0; a TXT string holds at
        // most 255 octets, so longer text is split over several.
        out.clear();
        out.resize(HEADER_LEN, 0);
        out.extend_from_slice(query.question);
        let question_end = out.len();
        out.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        out.extend_from_slice(&u16::from(RecordType::TXT).to_be_bytes());
        out.extend_from_slice(&u16::from(DNSClass::CH).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let chunks = text.as_bytes().chunks(255);
        let rdlength = text.len() + chunks.len();
        out.extend_from_slice(&(rdlength as u16).to_be_bytes());
        for chunk in chunks {
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
        let sections = Sections {
            rcode: 0,
            authoritative: false,
            counts: [1, 0, 0],
            question_end,
            additional_at: out.len(),
            glue_required: false,
        };
        finish(out, query, &sections, transport);
    }
}

thread_local! {
    /// The lookup result of the query being answered on this thread, kept between queries so
    /// that answering allocates nothing once warm.
    static SCRATCH: RefCell<Reply> = RefCell::new(Reply::default());
}

/// The EDNS parameters of a query (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edns {
    payload: u16,
    version: u8,
    dnssec_ok: bool,
    /// The COOKIE option of the reply (the client cookie, then the server cookie), if the
    /// query sent a well-formed one and cookies are on.
    cookie: Option<[u8; cookie::REPLY_LEN]>,
}

impl Edns {
    /// The bytes of the reply's OPT record.
    fn opt_len(&self) -> usize {
        OPT_LEN + self.cookie.map_or(0, |c| 4 + c.len())
    }
}

/// A well-formed query.
#[derive(Debug)]
struct Query<'p> {
    id: u16,
    opcode: u8,
    /// RD and CD, copied into the reply.
    copied_flags: (u8, u8),
    /// QNAME, QTYPE and QCLASS as sent.
    question: &'p [u8],
    key: [u8; 255],
    key_len: usize,
    qtype: u16,
    qclass: u16,
    edns: Option<Edns>,
    /// The data of the query's first COOKIE option, as sent.
    cookie: Option<&'p [u8]>,
    /// IXFR: the serial of the SOA in the authority section (the client's version); NOTIFY:
    /// the serial of the SOA in the answer section (the primary's), if sent.
    client_serial: Option<u32>,
    /// Where the TSIG RR starts (the last record of the additional section), if signed.
    tsig_at: Option<usize>,
    /// The key the query was signed with (verified).
    signed_by: Option<Arc<Key>>,
    /// Bytes kept free at the end of the reply (its TSIG RR).
    reserve: usize,
}

impl Query<'_> {
    /// The lower-case wire form of QNAME.
    fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// QNAME in wire form, in the case it was sent.
    fn qname(&self) -> &[u8] {
        &self.question[..self.question.len() - 4]
    }

    fn payload_limit(&self, transport: Transport) -> usize {
        let limit = match (transport, self.edns) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(edns)) => usize::from(edns.payload.clamp(512, MAX_UDP_PAYLOAD)),
        };
        limit.saturating_sub(self.reserve)
    }
}

/// A query that gets an error reply: FORMERR, NOTIMP or REFUSED.
#[derive(Debug)]
struct ErrorReply<'p> {
    id: u16,
    opcode: u8,
    copied_flags: (u8, u8),
    rcode: ResponseCode,
    /// The question, when it could be parsed.
    question: Option<&'p [u8]>,
}

// One per query, on the stack: boxing the large variant would allocate per query.
#[allow(clippy::large_enum_variant)]
enum Parsed<'p> {
    Query(Query<'p>),
    Error(ErrorReply<'p>),
    Drop,
}

/// Parses a query packet (RFC 1035 §4.1, RFC 6891 §6).
fn parse(packet: &[u8]) -> Parsed<'_> {
    if packet.len() < HEADER_LEN || packet[2] & 0x80 != 0 {
        // Too short to answer, or a response: never reply (no reflection loops).
        return Parsed::Drop;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let opcode = (packet[2] >> 3) & 0x0f;
    let copied_flags = (packet[2] & 0x01, packet[3] & 0x10);
    let count = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
    let mut error = ErrorReply {
        id,
        opcode,
        copied_flags,
        rcode: ResponseCode::FormErr,
        question: None,
    };
    if qdcount != 1 {
        if opcode != OPCODE_QUERY {
            error.rcode = ResponseCode::NotImp;
        }
        return Parsed::Error(error);
    }
    let mut key = [0u8; 255];
    let Some((key_len, name_end)) = read_qname(packet, &mut key) else {
        return Parsed::Error(error);
    };
    let Some(question) = packet.get(HEADER_LEN..name_end + 4) else {
        return Parsed::Error(error);
    };
    error.question = Some(question);
    let qtype = u16::from_be_bytes([packet[name_end], packet[name_end + 1]]);
    let qclass = u16::from_be_bytes([packet[name_end + 2], packet[name_end + 3]]);
    if opcode != OPCODE_QUERY && opcode != OPCODE_NOTIFY {
        error.rcode = ResponseCode::NotImp;
        return Parsed::Error(error);
    }
    // An IXFR query carries the client's SOA in the authority section (RFC 1995 §3), a NOTIFY
    // may carry the primary's in the answer section (RFC 1996 §3.7).
    let is_ixfr = qtype == u16::from(RecordType::IXFR) && opcode == OPCODE_QUERY;
    let is_notify = opcode == OPCODE_NOTIFY;
    if (ancount != 0 && !(is_notify && ancount == 1))
        || (nscount != 0 && !(is_ixfr && nscount == 1))
    {
        return Parsed::Error(error);
    }
    let mut at = HEADER_LEN + question.len();
    let mut client_serial = None;
    for _ in 0..ancount + nscount {
        match skip_record(packet, at) {
            Some((end, record)) => {
                if record.rtype == u16::from(RecordType::SOA) {
                    client_serial = soa_serial(record.rdata);
                }
                at = end;
            }
            None => return Parsed::Error(error),
        }
    }
    let mut edns = None;
    let mut cookie = None;
    let mut tsig_at = None;
    for i in 0..arcount {
        let start = at;
        let Some((end, record)) = skip_record(packet, at) else {
            return Parsed::Error(error);
        };
        at = end;
        if record.rtype == tsig::TSIG {
            // RFC 8945 §5.2: only as the last record.
            if i + 1 != arcount {
                return Parsed::Error(error);
            }
            tsig_at = Some(start);
            continue;
        }
        if record.rtype != u16::from(RecordType::OPT) {
            continue; // Unknown additional data is ignored.
        }
        if edns.is_some() || !record.root_owner {
            return Parsed::Error(error);
        }
        let Some(option) = read_options(record.rdata) else {
            return Parsed::Error(error);
        };
        cookie = option;
        edns = Some(Edns {
            payload: record.class,
            version: (record.ttl >> 16) as u8,
            dnssec_ok: record.ttl & 0x8000 != 0,
            cookie: None,
        });
    }
    Parsed::Query(Query {
        id,
        opcode,
        copied_flags,
        question,
        key,
        key_len,
        qtype,
        qclass,
        edns,
        cookie,
        client_serial,
        tsig_at,
        signed_by: None,
        reserve: 0,
    })
}

/// The SERIAL of SOA RDATA: after two names (MNAME, RNAME; either may end in a pointer).
fn soa_serial(rdata: &[u8]) -> Option<u32> {
    let mut at = 0;
    for _ in 0..2 {
        loop {
            match *rdata.get(at)? {
                0 => {
                    at += 1;
                    break;
                }
                label if label & 0xc0 == 0xc0 => {
                    at += 2;
                    break;
                }
                label if label & 0xc0 == 0 => at += 1 + usize::from(label),
                _ => return None,
            }
        }
    }
    let serial = rdata.get(at..at + 4)?;
    Some(u32::from_be_bytes([
        serial[0], serial[1], serial[2], serial[3],
    ]))
}

/// Reads the uncompressed QNAME at offset 12 into `key` in lower case. Returns the key length
/// and the offset just after the name.
fn read_qname(packet: &[u8], key: &mut [u8; 255]) -> Option<(usize, usize)> {
    let mut at = HEADER_LEN;
    let mut len = 0;
    loop {
        let label = usize::from(*packet.get(at)?);
        if label & 0xc0 != 0 {
            return None; // Compression or extended label types have no place in a question.
        }
        if len + label + 1 > key.len() {
            return None; // Longer than 255 octets.
        }
        let bytes = packet.get(at + 1..at + 1 + label)?;
        key[len] = label as u8;
        for (dst, src) in key[len + 1..len + 1 + label].iter_mut().zip(bytes) {
            *dst = src.to_ascii_lowercase();
        }
        len += label + 1;
        at += label + 1;
        if label == 0 {
            return Some((len, at));
        }
    }
}

/// The fixed fields of a resource record that parsing needs.
struct RawRecord<'p> {
    root_owner: bool,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: &'p [u8],
}

/// Skips the resource record at `at`; returns where the next one starts and its fields.
fn skip_record(packet: &[u8], mut at: usize) -> Option<(usize, RawRecord<'_>)> {
    let start = at;
    loop {
        let label = *packet.get(at)?;
        match label {
            0 => {
                at += 1;
                break;
            }
            l if l & 0xc0 == 0xc0 => {
                at += 2;
                break;
            }
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
    let fixed = packet.get(at..at + 10)?;
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let rdata = packet.get(at + 10..at + 10 + rdlength)?;
    let record = RawRecord {
        root_owner: at == start + 1 && packet[start] == 0,
        rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        rdata,
    };
    Some((at + 10 + rdlength, record))
}

/// EDNS options are (code, length, data) triples that exactly fill the RDATA: `None` if they
/// do not, else the data of the first COOKIE option, if any (RFC 7873 §5.2: only the first
/// counts).
fn read_options(mut rdata: &[u8]) -> Option<Option<&[u8]>> {
    let mut cookie = None;
    while !rdata.is_empty() {
        let head = rdata.get(..4)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let data = rdata.get(4..4 + len)?;
        if code == cookie::OPTION && cookie.is_none() {
            cookie = Some(data);
        }
        rdata = &rdata[4 + len..];
    }
    Some(cookie)
}

/// Header flags and counts of a reply.
struct Header {
    id: u16,
    opcode: u8,
    copied_flags: (u8, u8),
    authoritative: bool,
    truncated: bool,
    rcode: u8,
    counts: [u16; 4],
}

fn write_header(out: &mut [u8], header: &Header) {
    let (rd, cd) = header.copied_flags;
    out[0..2].copy_from_slice(&header.id.to_be_bytes());
    out[2] = 0x80
        | (header.opcode << 3)
        | if header.authoritative { 0x04 } else { 0 }
        | if header.truncated { 0x02 } else { 0 }
        | rd;
    out[3] = cd | (header.rcode & 0x0f);
    for (i, count) in header.counts.iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
    }
}

/// The OPT record of a reply: our payload size, the extended rcode bits, DO echoed, and the
/// COOKIE option when the query had a well-formed one (RFC 7873 §5.2).
fn write_opt(out: &mut Vec<u8>, edns: &Edns, rcode_high: u8) {
    out.push(0); // root owner
    out.extend_from_slice(&u16::from(RecordType::OPT).to_be_bytes());
    out.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
    out.push(rcode_high);
    out.push(0); // version
    out.push(if edns.dnssec_ok { 0x80 } else { 0 });
    out.push(0);
    match &edns.cookie {
        None => out.extend_from_slice(&[0, 0]), // no options
        Some(cookie) => {
            let len = cookie.len() as u16; // 24
            out.extend_from_slice(&(4 + len).to_be_bytes());
            out.extend_from_slice(&cookie::OPTION.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(cookie);
        }
    }
}

/// An error reply to a query that could not be fully parsed: the question if it was understood.
fn write_error(out: &mut Vec<u8>, error: &ErrorReply<'_>) {
    let header = Header {
        id: error.id,
        opcode: error.opcode,
        copied_flags: error.copied_flags,
        authoritative: false,
        truncated: false,
        rcode: u16::from(error.rcode) as u8,
        counts: [0; 4],
    };
    write_empty(out, header, error.question, None, 0);
}

/// A reply with the question and no records (REFUSED, FORMERR, BADVERS...).
fn write_simple(out: &mut Vec<u8>, query: &Query<'_>, rcode: u8, rcode_high: u8) {
    let header = Header {
        id: query.id,
        opcode: query.opcode,
        copied_flags: query.copied_flags,
        authoritative: false,
        truncated: false,
        rcode,
        counts: [0; 4],
    };
    write_empty(
        out,
        header,
        Some(query.question),
        query.edns.as_ref(),
        rcode_high,
    );
}

/// Header, the question if any, no records, OPT if the query had one.
fn write_empty(
    out: &mut Vec<u8>,
    mut header: Header,
    question: Option<&[u8]>,
    edns: Option<&Edns>,
    rcode_high: u8,
) {
    out.clear();
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(question.unwrap_or_default());
    if let Some(edns) = edns {
        write_opt(out, edns, rcode_high);
    }
    header.counts = [
        u16::from(question.is_some()),
        0,
        0,
        u16::from(edns.is_some()),
    ];
    write_header(out, &header);
}

/// A reply to `query` encoded from `reply`, whose RRsets are `zone`'s.
fn write_reply(
    out: &mut Vec<u8>,
    query: &Query<'_>,
    zone: &ZoneData,
    reply: &Reply,
    transport: Transport,
) {
    match reply::write(out, query.question, zone, reply) {
        Ok(layout) => {
            let sections = Sections {
                rcode: reply.rcode,
                authoritative: reply.authoritative,
                counts: [
                    layout.answer_count,
                    layout.authority_count,
                    layout.additional_count,
                ],
                question_end: layout.question_end,
                additional_at: layout.additional_at,
                glue_required: reply.glue_required,
            };
            finish(out, query, &sections, transport);
        }
        Err(reply::TooLong) => {
            // Only over TCP can this happen (UDP truncates far earlier): an RRset too large for
            // any DNS message.
            tracing::warn!(zone = %zone.origin(), "a reply does not fit in 65535 octets");
            write_simple(out, query, u16::from(ResponseCode::ServFail) as u8, 0);
        }
    }
}

/// Where the sections of a reply in `out` lie.
struct Sections {
    rcode: u8,
    authoritative: bool,
    counts: [u16; 3],
    question_end: usize,
    additional_at: usize,
    glue_required: bool,
}

/// Fits the reply to the transport's size limit, then writes the header and OPT.
fn finish(out: &mut Vec<u8>, query: &Query<'_>, sections: &Sections, transport: Transport) {
    let opt_len = query.edns.as_ref().map_or(0, Edns::opt_len);
    let limit = query.payload_limit(transport);
    let [mut answer, mut authority, mut additional] = sections.counts;
    let mut truncated = false;
    if out.len() + opt_len > limit {
        if additional > 0 && !sections.glue_required && sections.additional_at + opt_len <= limit {
            out.truncate(sections.additional_at);
            additional = 0;
        } else {
            out.truncate(sections.question_end);
            (answer, authority, additional) = (0, 0, 0);
            truncated = true;
        }
    }
    if let Some(edns) = &query.edns {
        write_opt(out, edns, 0);
        additional += 1;
    }
    let header = Header {
        id: query.id,
        opcode: query.opcode,
        copied_flags: query.copied_flags,
        authoritative: sections.authoritative,
        truncated,
        rcode: sections.rcode,
        counts: [1, answer, authority, additional],
    };
    write_header(out, &header);
}

/// One line per query, when `dns.query_log` is on.
fn log_query(packet: &[u8], peer: SocketAddr, transport: Transport, outcome: &Outcome, out: &[u8]) {
    let mut key = [0u8; 255];
    let qname = read_qname(packet, &mut key)
        .and_then(|(_, end)| {
            let mut decoder = BinDecoder::new(packet.get(HEADER_LEN..end)?);
            Name::read(&mut decoder).ok()
        })
        .map(|name| name.to_string())
        .unwrap_or_default();
    let result = match outcome {
        Outcome::Reply => out
            .get(3)
            .map(|b| ResponseCode::from(0, b & 0x0f).to_string())
            .unwrap_or_default(),
        Outcome::Drop => "dropped".to_owned(),
        Outcome::Transfer(_) => "transfer".to_owned(),
    };
    tracing::info!(target: "onebox::dns::query", %peer, ?transport, %qname, %result, "query");
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
