//! The signer, checked record by record, and as a whole by two verifiers written apart from it:
//! ldns-verify-zone (ldnsutils) and dnssec-verify (bind9-utils).
//!
//! (hickory-proto's own signed-data code, `TBS`, cannot serve as the cross-check: it orders an
//! RRset by RDATA as written rather than in canonical form, so `NS ns1` and `NS NS2` come out in
//! the wrong order. The test zone has such a pair.)

use std::collections::BTreeMap;
use std::process::Command;
use std::str::FromStr;

use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::*;
use crate::config::DnssecAlgorithm;
use crate::dns::dnssec::canonical;
use crate::dns::dnssec::keys::{KeyState, KeyStore, ZoneKey};
use crate::dns::zone::{self, Records as Zone};

const NOW: i64 = 1_800_000_000;

const ZONE: &str = "$ORIGIN example.com.
$TTL 3600
@       IN SOA ns1 hostmaster 1 3600 900 1209600 300
        IN NS  ns1
        IN NS  NS2
        IN A   192.0.2.1
        IN MX  10 mail
ns1     IN A   192.0.2.53
ns2     IN A   192.0.2.54
mail    IN A   192.0.2.25
WWW     IN CNAME @
a.b.c   IN A   192.0.2.4
*.wild 300 IN A 192.0.2.5
*.wild 300 IN TXT \"wildcard\"
sub     IN NS  ns1.sub
sub     IN A   192.0.2.99
ns1.sub IN A   192.0.2.10
secure  IN NS  ns.elsewhere.net.
secure  IN DS  12345 13 2 0000000000000000000000000000000000000000000000000000000000000000
";

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn policy() -> Policy {
    Policy {
        lifetime: 14 * 86_400,
        refresh: 7 * 86_400,
        jitter: 86_400,
        backdate: 3600,
    }
}

fn load(text: &str) -> Zone {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.com.zone");
    std::fs::write(&path, text).unwrap();
    zone::load_file(&path).unwrap().to_records()
}

struct Keys {
    _dir: tempfile::TempDir,
    keys: Vec<ZoneKey>,
}

fn keys(states: &[KeyState]) -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let mut keys = Vec::new();
    {
        let _lock = store.lock().unwrap();
        for &state in states {
            let key = store
                .generate(
                    &name("example.com."),
                    DnssecAlgorithm::EcdsaP256Sha256,
                    state,
                    NOW,
                    &keys,
                )
                .unwrap();
            keys.push(key);
        }
    }
    Keys { _dir: dir, keys }
}

fn sign(zone: Zone, keys: &[ZoneKey], now: i64, previous: Option<&[Record]>) -> Signed {
    sign_zone(zone, keys, &policy(), now, previous).unwrap()
}

fn rrsig(record: &Record) -> Option<&RRSIG> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => Some(rrsig),
        _ => None,
    }
}

/// (lower-case owner, type) -> records, signatures apart.
fn sets(records: &[Record]) -> BTreeMap<(String, RecordType), Vec<&Record>> {
    let mut sets: BTreeMap<_, Vec<&Record>> = BTreeMap::new();
    for record in records.iter().filter(|r| rrsig(r).is_none()) {
        sets.entry((record.name.to_lowercase().to_string(), record.record_type()))
            .or_default()
            .push(record);
    }
    sets
}

/// (lower-case owner, covered type) -> key tags of the signatures.
fn signatures(records: &[Record]) -> BTreeMap<(String, RecordType), Vec<u16>> {
    let mut sigs: BTreeMap<_, Vec<u16>> = BTreeMap::new();
    for record in records {
        if let Some(rrsig) = rrsig(record) {
            sigs.entry((
                record.name.to_lowercase().to_string(),
                rrsig.input().type_covered,
            ))
            .or_default()
            .push(rrsig.input().key_tag);
        }
    }
    sigs
}

/// Verifies every RRSIG's cryptography with hickory's DNSKEY verifier, over the signed data as
/// `canonical` makes it (whose form the external verifiers check).
fn verify_all(records: &[Record], keys: &[ZoneKey]) -> usize {
    let sets = sets(records);
    let mut verified = 0;
    for record in records {
        let Some(rrsig) = rrsig(record) else {
            continue;
        };
        let input = rrsig.input();
        let key = keys
            .iter()
            .find(|k| k.tag == input.key_tag)
            .expect("a key with the signature's tag");
        let set = &sets[&(record.name.to_lowercase().to_string(), input.type_covered)];
        let rdatas = canonical::rrset_rdata(set.iter().copied()).unwrap();
        let data = canonical::signed_data(&record.name, DNSClass::IN, input, &rdatas).unwrap();
        key.dnskey().verify(&data, rrsig.sig()).unwrap_or_else(|e| {
            panic!(
                "RRSIG of {} {} does not verify: {e}",
                record.name, input.type_covered
            )
        });
        verified += 1;
    }
    verified
}

#[test]
fn every_authoritative_set_is_signed_and_verifies() {
    let keys = keys(&[KeyState::Active]);
    let signed = sign(load(ZONE), &keys.keys, NOW, None);
    let tag = keys.keys[0].tag;
    let sigs = signatures(&signed.zone.records);
    let expected: Vec<(&str, RecordType)> = vec![
        ("example.com.", RecordType::SOA),
        ("example.com.", RecordType::NS),
        ("example.com.", RecordType::A),
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::DNSKEY),
        ("example.com.", RecordType::CDS),
        ("example.com.", RecordType::CDNSKEY),
        ("example.com.", RecordType::NSEC),
        ("ns1.example.com.", RecordType::A),
        ("www.example.com.", RecordType::CNAME),
        ("*.wild.example.com.", RecordType::A),
        ("*.wild.example.com.", RecordType::TXT),
        ("secure.example.com.", RecordType::DS),
        ("secure.example.com.", RecordType::NSEC),
        ("sub.example.com.", RecordType::NSEC),
    ];
    for (owner, rtype) in expected {
        assert_eq!(
            sigs.get(&(owner.to_owned(), rtype)),
            Some(&vec![tag]),
            "{owner} {rtype}"
        );
    }
    for unsigned in [
        ("sub.example.com.", RecordType::NS),
        ("sub.example.com.", RecordType::A),
        ("ns1.sub.example.com.", RecordType::A),
        ("secure.example.com.", RecordType::NS),
    ] {
        assert!(
            !sigs.contains_key(&(unsigned.0.to_owned(), unsigned.1)),
            "{unsigned:?} is not authoritative and must not be signed"
        );
    }
    let verified = verify_all(&signed.zone.records, &keys.keys);
    assert_eq!(verified, signed.made);
    assert_eq!(signed.kept, 0);
    assert_eq!(signed.zone.records[0].record_type(), RecordType::SOA);
    // A wildcard's signature counts the labels without the `*` (RFC 4034 §3.1.3).
    let wild = signed
        .zone
        .records
        .iter()
        .filter_map(|r| rrsig(r).filter(|_| r.name == name("*.wild.example.com.")))
        .next()
        .unwrap();
    assert_eq!(wild.input().num_labels, 3);
    assert_eq!(wild.input().original_ttl, 300);
}

#[test]
fn the_nsec_chain_is_canonical_closed_and_skips_glue_and_empty_non_terminals() {
    let keys = keys(&[KeyState::Active]);
    let signed = sign(load(ZONE), &keys.keys, NOW, None);
    let chain: Vec<(String, String, Vec<RecordType>, u32)> = signed
        .zone
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(nsec)) => Some((
                r.name.to_lowercase().to_string(),
                nsec.next_domain_name().to_string(),
                nsec.type_bit_maps().collect(),
                r.ttl,
            )),
            _ => None,
        })
        .collect();
    let mut sorted = chain.clone();
    sorted.sort_by_key(|a| name(&a.0));
    let owners: Vec<&str> = sorted.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        owners,
        [
            "example.com.",
            "a.b.c.example.com.",
            "mail.example.com.",
            "ns1.example.com.",
            "ns2.example.com.",
            "secure.example.com.",
            "sub.example.com.",
            "*.wild.example.com.",
            "www.example.com.",
        ]
    );
    for (i, (_, next, _, ttl)) in sorted.iter().enumerate() {
        assert_eq!(
            next,
            &sorted[(i + 1) % sorted.len()].0,
            "NSEC {i} points at the next name"
        );
        assert_eq!(*ttl, 300, "NSEC TTL is min(SOA TTL, MINIMUM)");
    }
    let types = |owner: &str| sorted.iter().find(|c| c.0 == owner).unwrap().2.clone();
    use RecordType::*;
    assert_eq!(
        types("example.com."),
        [A, NS, SOA, MX, RRSIG, NSEC, DNSKEY, CDS, CDNSKEY]
    );
    assert_eq!(
        types("sub.example.com."),
        [NS, RRSIG, NSEC],
        "no glue A at a cut"
    );
    assert_eq!(types("secure.example.com."), [NS, DS, RRSIG, NSEC]);
    assert_eq!(types("*.wild.example.com."), [A, TXT, RRSIG, NSEC]);
}

#[test]
fn key_states_decide_publication_and_signing() {
    let keys = keys(&[KeyState::Retiring, KeyState::Active, KeyState::Published]);
    let [retiring, active, published] = [&keys.keys[0], &keys.keys[1], &keys.keys[2]];
    let signed = sign(load(ZONE), &keys.keys, NOW, None);
    let records = &signed.zone.records;
    let sets = sets(records);
    let apex = |t| sets[&("example.com.".to_owned(), t)].len();
    assert_eq!(apex(RecordType::DNSKEY), 3, "every key is published");
    assert_eq!(apex(RecordType::CDS), 1, "CDS for the active key only");
    assert_eq!(apex(RecordType::CDNSKEY), 1);
    let sigs = signatures(records);
    let mut dnskey_signers = sigs[&("example.com.".to_owned(), RecordType::DNSKEY)].clone();
    dnskey_signers.sort();
    let mut expected = vec![retiring.tag, active.tag];
    expected.sort();
    assert_eq!(
        dnskey_signers, expected,
        "old and new key sign the DNSKEY set"
    );
    assert_eq!(
        sigs[&("www.example.com.".to_owned(), RecordType::CNAME)],
        [active.tag]
    );
    assert!(sigs.values().all(|tags| !tags.contains(&published.tag)));
    verify_all(records, &keys.keys);
    let cds = records
        .iter()
        .find_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::CDS(cds)) => Some(cds),
            _ => None,
        })
        .unwrap();
    assert_eq!(cds.key_tag(), active.tag);
    assert_eq!(cds.digest(), active.ds().unwrap().digest());

    let none_active = [published.clone()];
    assert!(matches!(
        sign_zone(load(ZONE), &none_active, &policy(), NOW, None),
        Err(SignError::NoActiveKey(_))
    ));
}

#[test]
fn a_new_version_keeps_the_signatures_of_unchanged_sets() {
    let keys = keys(&[KeyState::Active]);
    let first = sign(load(ZONE), &keys.keys, NOW, None);
    let changed = ZONE
        .replace("192.0.2.25", "192.0.2.26")
        .replace("1 3600 900", "2 3600 900");
    let second = sign(
        load(&changed),
        &keys.keys,
        NOW + 60,
        Some(&first.zone.records),
    );
    // The SOA and mail's A changed; everything else (NSEC chain included) is as it was.
    assert_eq!(second.made, 2);
    assert_eq!(second.kept, first.made - 2);
    verify_all(&second.zone.records, &keys.keys);
    let old = signatures_by_set(&first.zone.records);
    let new = signatures_by_set(&second.zone.records);
    assert_eq!(
        old[&("ns1.example.com.".to_owned(), RecordType::A)],
        new[&("ns1.example.com.".to_owned(), RecordType::A)]
    );
    assert_ne!(
        old[&("mail.example.com.".to_owned(), RecordType::A)],
        new[&("mail.example.com.".to_owned(), RecordType::A)]
    );

    // A new name changes two NSEC records: its own and its predecessor's.
    let added = format!("{changed}new IN A 192.0.2.77\n");
    let third = sign(
        load(&added),
        &keys.keys,
        NOW + 120,
        Some(&second.zone.records),
    );
    assert_eq!(
        third.made, 3,
        "the new A, the new NSEC, the predecessor's NSEC"
    );
}

fn signatures_by_set(records: &[Record]) -> BTreeMap<(String, RecordType), Vec<u8>> {
    records
        .iter()
        .filter_map(|r| {
            rrsig(r).map(|s| {
                (
                    (r.name.to_lowercase().to_string(), s.input().type_covered),
                    s.sig().to_vec(),
                )
            })
        })
        .collect()
}

#[test]
fn signatures_are_refreshed_before_they_expire_with_jitter() {
    let keys = keys(&[KeyState::Active]);
    let policy = policy();
    let first = sign(load(ZONE), &keys.keys, NOW, None);
    let expirations: Vec<i64> = first
        .zone
        .records
        .iter()
        .filter_map(rrsig)
        .map(|s| i64::from(s.input().sig_expiration.get()))
        .collect();
    let lifetime = i64::from(policy.lifetime);
    assert!(
        expirations
            .iter()
            .all(|&e| e <= NOW + lifetime && e > NOW + lifetime - i64::from(policy.jitter))
    );
    assert!(
        expirations.iter().any(|&e| e != expirations[0]),
        "expirations are spread"
    );
    let inception = first
        .zone
        .records
        .iter()
        .find_map(rrsig)
        .unwrap()
        .input()
        .sig_inception
        .get();
    assert_eq!(i64::from(inception), NOW - 3600);
    let earliest = *expirations.iter().min().unwrap();
    assert_eq!(first.refresh_at, earliest - i64::from(policy.refresh));

    // Just before the refresh time nothing is due; at it, every signature is replaced (the
    // jitter window batches them into one pass).
    let early = sign(
        load(ZONE),
        &keys.keys,
        first.refresh_at - 1 - i64::from(policy.jitter),
        Some(&first.zone.records),
    );
    assert_eq!(early.made, 0, "nothing is due yet");
    let due = sign(
        load(ZONE),
        &keys.keys,
        first.refresh_at,
        Some(&first.zone.records),
    );
    assert_eq!(due.kept, 0);
    assert!(due.refresh_at > first.refresh_at + i64::from(policy.jitter));
}

#[test]
fn dnssec_records_in_the_zone_file_are_replaced() {
    let keys = keys(&[KeyState::Active]);
    let text = format!(
        "{ZONE}@ IN DNSKEY 257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==\n"
    );
    let Ok(zone) = zone_or_unsupported(&text) else {
        return;
    };
    let signed = sign(zone, &keys.keys, NOW, None);
    assert_eq!(signed.dropped, 1);
    let dnskeys =
        sets(&signed.zone.records)[&("example.com.".to_owned(), RecordType::DNSKEY)].len();
    assert_eq!(dnskeys, 1);
}

/// The zone, unless the parser does not read DNSKEY records (then the case cannot arise).
fn zone_or_unsupported(text: &str) -> Result<Zone, ()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.com.zone");
    std::fs::write(&path, text).unwrap();
    zone::load_file(&path)
        .map(|zone| zone.to_records())
        .map_err(|_| ())
}

/// The signed zone in presentation format, one record per line.
fn zone_text(records: &[Record]) -> String {
    let mut text = String::new();
    for record in records {
        text.push_str(&record.to_string());
        text.push('\n');
    }
    text
}

fn run(program: &str, args: &[&str], package: &str) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (apt-get install {package})"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn ldns_verify_zone_and_dnssec_verify_accept_the_signed_zone() {
    // dnssec-verify -z: every key is a combined signing key (no separate ZSK).
    for algorithm in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let now = chrono::Utc::now().timestamp();
        let keys = store.ensure(&name("example.com."), algorithm, now).unwrap();
        let signed = sign(load(ZONE), &keys, now, None);
        let text = zone_text(&signed.zone.records);
        let file = dir.path().join("signed.zone");
        std::fs::write(&file, &text).unwrap();
        let file = file.to_str().unwrap();
        let (ok, out) = run("ldns-verify-zone", &[file], "ldnsutils");
        assert!(
            ok,
            "ldns-verify-zone ({algorithm:?}):\n{out}\nzone:\n{text}"
        );
        let (ok, out) = run(
            "dnssec-verify",
            &["-z", "-o", "example.com", file],
            "bind9-utils",
        );
        assert!(ok, "dnssec-verify ({algorithm:?}):\n{out}\nzone:\n{text}");

        // The negative control: one altered record makes both refuse the zone.
        let altered = text.replacen("192.0.2.53", "192.0.2.66", 1);
        std::fs::write(file, &altered).unwrap();
        let (ok, out) = run("ldns-verify-zone", &[file], "ldnsutils");
        assert!(!ok, "ldns-verify-zone accepted an altered zone:\n{out}");
        let (ok, out) = run(
            "dnssec-verify",
            &["-z", "-o", "example.com", file],
            "bind9-utils",
        );
        assert!(!ok, "dnssec-verify accepted an altered zone:\n{out}");
    }
}
