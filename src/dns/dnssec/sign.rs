//! Zone signing: a zone's records and its keys in, the signed zone out (RFC 4035 §2).
//!
//! 1. DNSSEC records the zone file holds (DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, CDS,
//!    CDNSKEY) are dropped: onebox makes its own.
//! 2. The apex gets the DNSKEY set (every key not yet removed) and CDS/CDNSKEY for the active
//!    keys (RFC 7344, RFC 8078), with the SOA's TTL.
//! 3. Names are classified as the catalog does: delegation points (NS below the apex), and
//!    names below one (glue, occluded data), which are neither signed nor in the NSEC chain.
//! 4. Every name with authoritative data or a delegation gets an NSEC to the next such name in
//!    canonical order (the last one back to the apex), listing the types present; at a
//!    delegation only NS, DS, RRSIG and NSEC (§2.3). Its TTL is min(SOA TTL, MINIMUM) (RFC 9077).
//! 5. Every authoritative RRset (not the NS set of a delegation, nor glue) gets one RRSIG per
//!    signing key: active keys sign everything, retiring keys the DNSKEY set only. A signature
//!    of the previous version is kept when the set is unchanged, the key still signs it and it
//!    does not expire within `refresh + jitter`; so a reload re-signs only what changed, and a
//!    refresh pass only what is due.
//!
//! Signatures start an hour in the past (clocks of validators run late) and end `lifetime`
//! later, less a random jitter, so that expiries spread over a day and refresh passes come at
//! most once a jitter apart ([`Policy`]).

use hickory_proto::dnssec::PublicKey as _;
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSSECRData, NSEC, RRSIG, SigInput};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use ring::rand::{SecureRandom, SystemRandom};
use rustc_hash::{FxHashMap, FxHashSet};

use super::canonical::{self, is_dnssec_type, order_key};
use super::keys::{KeyError, ZoneKey};
use crate::config::DnssecConfig;
use crate::dns::catalog::key_of;
// The signer works on the zone as a list of hickory-proto records (`zone::Records`).
use crate::dns::zone::Records as Zone;
use crate::dns::zone::name::{is_within, suffixes};

/// Signature timing, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a new signature is valid, counted from now.
    pub lifetime: u32,
    /// Signatures expiring sooner than this are replaced.
    pub refresh: u32,
    /// Up to this much is taken off each new signature's lifetime, at random; signatures that
    /// would be due within this time after a pass are replaced in that pass too.
    pub jitter: u32,
    /// Inception is this far in the past.
    pub backdate: u32,
}

impl Policy {
    /// The policy of `[dns.dnssec]`: jitter is a seventh of `lifetime - refresh` (a day for the
    /// defaults, 14 and 7 days).
    pub fn from_config(config: &DnssecConfig) -> Self {
        let lifetime = u32::try_from(config.signature_lifetime.as_secs()).unwrap_or(u32::MAX / 4);
        let refresh = u32::try_from(config.signature_refresh.as_secs()).unwrap_or(lifetime / 2);
        Self {
            lifetime,
            refresh,
            jitter: lifetime.saturating_sub(refresh) / 7,
            backdate: 3600,
        }
    }
}

/// A signed zone and what signing it took.
#[derive(Debug)]
pub struct Signed {
    /// The zone with its DNSSEC records: the SOA first, the zone's own records in their order,
    /// then DNSKEY, CDS, CDNSKEY, NSEC and RRSIG records.
    pub zone: Zone,
    /// Signatures made in this pass.
    pub made: usize,
    /// Signatures kept from the previous version.
    pub kept: usize,
    /// DNSSEC records the zone file held, dropped.
    pub dropped: usize,
    /// When the next refresh pass is due (Unix seconds): the earliest expiry less `refresh`.
    pub refresh_at: i64,
}

/// Why a zone could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No key signs the zone.
    #[error("zone {0}: no active key (see `onebox dnssec keys {0}`)")]
    NoActiveKey(Box<Name>),
    /// A record could not be put in canonical form.
    #[error("cannot encode {record}: {reason}")]
    Encode {
        /// The record's owner and type.
        record: String,
        /// hickory's reason.
        reason: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// One RRset of the zone being signed.
struct Set {
    owner: Name,
    key: Box<[u8]>,
    rtype: RecordType,
    ttl: u32,
    /// Indexes into the output records.
    records: Vec<usize>,
}

/// Signs `zone` (its serial already the one it will be served with) with `keys` at `now` (Unix
/// seconds), keeping what it can of `previous` (the records of the version served before).
pub fn sign_zone(
    zone: Zone,
    keys: &[ZoneKey],
    policy: &Policy,
    now: i64,
    previous: Option<&[Record]>,
) -> Result<Signed, SignError> {
    let origin = zone.origin.clone();
    if !keys.iter().any(ZoneKey::signs_zone) {
        return Err(SignError::NoActiveKey(Box::new(origin)));
    }
    let encode_error = |record: &Record, e: hickory_proto::ProtoError| SignError::Encode {
        record: format!("{} {}", record.name, record.record_type()),
        reason: e.to_string(),
    };

    // 1. The zone's own records, less DNSSEC's.
    let total = zone.records.len();
    let mut records: Vec<Record> = zone
        .records
        .into_iter()
        .filter(|r| !is_dnssec_type(r.record_type()))
        .collect();
    let dropped = total - records.len();
    let (soa_ttl, minimum) = match records.first().map(|r| (&r.data, r.ttl)) {
        Some((RData::SOA(soa), ttl)) => (ttl, soa.minimum),
        _ => (3600, 3600),
    };

    // 2. DNSKEY, CDS, CDNSKEY at the apex.
    for key in keys {
        records.push(Record::from_rdata(
            origin.clone(),
            soa_ttl,
            RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey().clone())),
        ));
    }
    for key in keys.iter().filter(|k| k.signs_zone()) {
        let ds = key.ds()?;
        let cds = CDS::new(
            ds.key_tag(),
            Some(ds.algorithm()),
            ds.digest_type(),
            ds.digest().to_vec(),
        );
        records.push(Record::from_rdata(
            origin.clone(),
            soa_ttl,
            RData::DNSSEC(DNSSECRData::CDS(cds)),
        ));
    }
    for key in keys.iter().filter(|k| k.signs_zone()) {
        let dnskey = key.dnskey();
        let cdnskey = CDNSKEY::with_flags(
            dnskey.flags(),
            Some(key.algorithm),
            dnskey.public_key().public_bytes().to_vec(),
        );
        records.push(Record::from_rdata(
            origin.clone(),
            soa_ttl,
            RData::DNSSEC(DNSSECRData::CDNSKEY(cdnskey)),
        ));
    }

    // 3. Sets and names, classified.
    let mut sets = group(&records);
    let apex = key_of(&origin);
    let cuts: FxHashSet<Box<[u8]>> = sets
        .iter()
        .filter(|s| s.rtype == RecordType::NS && s.key != apex)
        .map(|s| s.key.clone())
        .collect();
    let below_cut = |key: &[u8]| {
        suffixes(key)
            .skip(1)
            .take_while(|&at| key.len() - at > apex.len())
            .any(|at| cuts.contains(&key[at..]))
    };
    let authoritative = |set: &Set| {
        is_within(&set.key, &apex)
            && !below_cut(&set.key)
            && (!cuts.contains(&set.key) || matches!(set.rtype, RecordType::DS | RecordType::NSEC))
    };
    let in_chain = |set: &Set| {
        is_within(&set.key, &apex)
            && !below_cut(&set.key)
            && (!cuts.contains(&set.key) || matches!(set.rtype, RecordType::DS | RecordType::NS))
    };

    // 4. The NSEC chain.
    let mut names: FxHashMap<Box<[u8]>, (Name, Vec<RecordType>)> = FxHashMap::default();
    for set in sets.iter().filter(|s| in_chain(s)) {
        names
            .entry(set.key.clone())
            .or_insert_with(|| (set.owner.clone(), Vec::new()))
            .1
            .push(set.rtype);
    }
    let mut chain: Vec<(Vec<u8>, Box<[u8]>)> = names
        .keys()
        .map(|key| (order_key(key), key.clone()))
        .collect();
    chain.sort();
    let nsec_ttl = soa_ttl.min(minimum);
    let first_nsec = records.len();
    for (i, (_, key)) in chain.iter().enumerate() {
        let (owner, types) = &names[key];
        let next_key = &chain[(i + 1) % chain.len()].1;
        let next = names[next_key].0.to_lowercase();
        let nsec = NSEC::new_cover_self(next, types.iter().copied());
        records.push(Record::from_rdata(
            owner.clone(),
            nsec_ttl,
            RData::DNSSEC(DNSSECRData::NSEC(nsec)),
        ));
    }
    sets.extend(group_from(&records, first_nsec));

    // 5. Signatures.
    let previous = previous.map(Previous::index);
    let rng = SystemRandom::new();
    let mut signatures = Vec::new();
    let (mut made, mut kept) = (0, 0);
    let mut earliest = i64::MAX;
    for set in sets.iter().filter(|s| authoritative(s)) {
        let signers: Vec<&ZoneKey> = keys
            .iter()
            .filter(|k| k.signs_zone() || (set.rtype == RecordType::DNSKEY && k.signs_keys()))
            .collect();
        let rdatas = canonical::rrset_rdata(set.records.iter().map(|&i| &records[i]))
            .map_err(|e| encode_error(&records[set.records[0]], e))?;
        let labels = set.owner.num_labels();
        for key in signers {
            let reusable = match &previous {
                Some(previous) => previous
                    .signature(set, &rdatas, key, labels, now, policy)
                    .map_err(|e| encode_error(&records[set.records[0]], e))?,
                None => None,
            };
            let record = match reusable {
                Some(record) => {
                    kept += 1;
                    record
                }
                None => {
                    made += 1;
                    let input = SigInput {
                        type_covered: set.rtype,
                        algorithm: key.algorithm,
                        num_labels: labels,
                        original_ttl: set.ttl,
                        sig_expiration: SerialNumber::new(expiration(now, policy, &rng)),
                        sig_inception: SerialNumber::new(
                            now.saturating_sub(i64::from(policy.backdate)) as u32,
                        ),
                        key_tag: key.tag,
                        signer_name: origin.clone(),
                    };
                    let data = canonical::signed_data(&set.owner, DNSClass::IN, &input, &rdatas)
                        .map_err(|e| encode_error(&records[set.records[0]], e))?;
                    let signature = key.sign(&data)?;
                    Record::from_rdata(
                        set.owner.clone(),
                        set.ttl,
                        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
                    )
                }
            };
            if let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &record.data {
                earliest = earliest.min(unix_of(rrsig.input().sig_expiration.get(), now));
            }
            signatures.push(record);
        }
    }
    records.extend(signatures);
    let refresh_at = if earliest == i64::MAX {
        now + i64::from(policy.lifetime)
    } else {
        earliest - i64::from(policy.refresh)
    };
    Ok(Signed {
        zone: Zone { records, ..zone },
        made,
        kept,
        dropped,
        refresh_at,
    })
}

/// A new signature's expiration: `now + lifetime - random(0..jitter)`, as RRSIG serial time.
fn expiration(now: i64, policy: &Policy, rng: &SystemRandom) -> u32 {
    let mut bytes = [0u8; 4];
    let jitter = match rng.fill(&mut bytes) {
        Ok(()) if policy.jitter > 0 => u32::from_be_bytes(bytes) % policy.jitter,
        _ => 0,
    };
    (now + i64::from(policy.lifetime) - i64::from(jitter)) as u32
}

/// The Unix time of RRSIG serial time `t`: the one nearest `now` (RFC 4034 §3.1.5 arithmetic).
fn unix_of(t: u32, now: i64) -> i64 {
    let diff = t.wrapping_sub(now as u32) as i32;
    now + i64::from(diff)
}

/// The RRsets of `records`, in order of first appearance.
fn group(records: &[Record]) -> Vec<Set> {
    group_from(records, 0)
}

/// The RRsets of `records[from..]`.
fn group_from(records: &[Record], from: usize) -> Vec<Set> {
    let mut sets: Vec<Set> = Vec::new();
    let mut index: FxHashMap<(Box<[u8]>, RecordType), usize> = FxHashMap::default();
    for (i, record) in records.iter().enumerate().skip(from) {
        let key = key_of(&record.name);
        let rtype = record.record_type();
        match index.get(&(key.clone(), rtype)) {
            Some(&at) => {
                let set = &mut sets[at];
                set.records.push(i);
                set.ttl = set.ttl.min(record.ttl);
            }
            None => {
                index.insert((key.clone(), rtype), sets.len());
                sets.push(Set {
                    owner: record.name.clone(),
                    key,
                    rtype,
                    ttl: record.ttl,
                    records: vec![i],
                });
            }
        }
    }
    sets
}

/// The previous version's sets and signatures, by owner and type.
struct Previous<'a> {
    sets: FxHashMap<(Box<[u8]>, RecordType), Vec<&'a Record>>,
    signatures: FxHashMap<(Box<[u8]>, RecordType), Vec<&'a Record>>,
}

impl<'a> Previous<'a> {
    fn index(records: &'a [Record]) -> Self {
        let mut sets: FxHashMap<_, Vec<&Record>> = FxHashMap::default();
        let mut signatures: FxHashMap<_, Vec<&Record>> = FxHashMap::default();
        for record in records {
            match &record.data {
                RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => signatures
                    .entry((key_of(&record.name), rrsig.input().type_covered))
                    .or_default()
                    .push(record),
                _ => sets
                    .entry((key_of(&record.name), record.record_type()))
                    .or_default()
                    .push(record),
            }
        }
        Self { sets, signatures }
    }

    /// A signature of the previous version that still serves for `set` (canonical `rdatas`)
    /// and `key`: the set is unchanged and the signature is not due for refresh.
    fn signature(
        &self,
        set: &Set,
        rdatas: &[Vec<u8>],
        key: &ZoneKey,
        labels: u8,
        now: i64,
        policy: &Policy,
    ) -> Result<Option<Record>, hickory_proto::ProtoError> {
        let id = (set.key.clone(), set.rtype);
        let Some(candidates) = self.signatures.get(&id) else {
            return Ok(None);
        };
        let Some(old) = self.sets.get(&id) else {
            return Ok(None);
        };
        let old_ttl = old.iter().map(|r| r.ttl).min().unwrap_or_default();
        if old_ttl != set.ttl || canonical::rrset_rdata(old.iter().copied())? != rdatas {
            return Ok(None);
        }
        let due = now + i64::from(policy.refresh) + i64::from(policy.jitter);
        let found = candidates.iter().find(|record| {
            let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &record.data else {
                return false;
            };
            let input = rrsig.input();
            input.key_tag == key.tag
                && input.algorithm == key.algorithm
                && input.num_labels == labels
                && input.original_ttl == set.ttl
                && record.ttl == set.ttl
                && unix_of(input.sig_inception.get(), now) <= now
                && unix_of(input.sig_expiration.get(), now) > due
                && input.signer_name == key.zone
        });
        Ok(found.map(|record| Record::clone(record)))
    }
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
