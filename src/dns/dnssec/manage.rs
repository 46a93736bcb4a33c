//! What `onebox dnssec ...` does: the DS for the registrar, the list of a zone's keys, and the
//! three steps of a key rollover. Each returns the text to print; the files change under the
//! key store's lock. The command line then has the running server re-sign the zone with the
//! keys as they now are (it reloads it, as SIGHUP does) before it returns, as Knot's `keymgr`
//! is followed by `knotc zone-keys-load`.
//!
//! A rollover of the combined signing key (RFC 6781 §4.1.2, "double-DS" shape, as Knot rolls
//! a CSK) never leaves a validating resolver without a chain:
//!
//! 1. `prepublish`: a new key joins the DNSKEY set, signing nothing yet. Resolvers that cached
//!    the old DNSKEY set must see the new one before anything is signed with the new key only:
//!    `swap` is refused until the DNSKEY TTL has passed.
//! 2. `swap`: the new key signs everything and is what CDS and `onebox dnssec ds` show; the old
//!    key stays published and keeps signing the DNSKEY set, so that resolvers still holding the
//!    old DS validate the keys through it. The parent's DS is now changed to the new key.
//! 3. `retire`: once the parent publishes only the new DS and the old one has expired from
//!    caches (the parent's DS TTL), the old key leaves the zone and its file is deleted.

use std::fmt::Write as _;
use std::path::Path;

use hickory_proto::rr::Name;

use super::keys::{self, KeyError, KeyState, KeyStore, ZoneKey};
use crate::config::DnsConfig;
use crate::dns::zone;

/// A rollover step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Publish a new key beside the active one.
    Prepublish,
    /// Sign with the new key; the old one signs the DNSKEY set only.
    Swap,
    /// Remove the old key.
    Retire,
}

/// Why a command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The request cannot be done now or at all (the operator should act): exit status 1.
    #[error("{0}")]
    Refused(String),
    /// The keys could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// `onebox dnssec ds ZONE`: the DS record(s) of the zone's active key, generating the key if
/// the zone has none yet.
pub fn ds(dns: &DnsConfig, state_dir: &Path, zone: &str, now: i64) -> Result<String, ManageError> {
    let zone = signed_zone(dns, zone)?;
    let keys = KeyStore::new(state_dir).ensure(&zone, dns.dnssec.algorithm, now)?;
    let mut out = String::new();
    for line in super::ds_lines(&keys)? {
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

/// `onebox dnssec keys ZONE`: one line per key (tag, algorithm, state, times), then what a
/// rollover would do next.
pub fn list(dns: &DnsConfig, state_dir: &Path, zone: &str) -> Result<String, ManageError> {
    let zone = signed_zone(dns, zone)?;
    let keys = KeyStore::new(state_dir).load(&zone)?;
    let mut out = String::new();
    if keys.is_empty() {
        let _ = writeln!(
            out,
            "{zone}: no key yet (onebox generates one when it first signs the zone, or on \
             `onebox dnssec ds {zone}`)"
        );
        return Ok(out);
    }
    for key in &keys {
        let _ = write!(
            out,
            "{zone} key {tag:5} algorithm {alg} ({name}) {state:9} created {created}",
            tag = key.tag,
            alg = u8::from(key.algorithm),
            name = key.algorithm,
            state = key.state.to_string(),
            created = keys::timestamp(key.times.created),
        );
        for (label, time) in [
            ("published", key.times.published),
            ("active", key.times.active),
            ("retiring", key.times.retiring),
        ] {
            if let Some(time) = time {
                let _ = write!(out, ", {label} {}", keys::timestamp(time));
            }
        }
        let _ = writeln!(out, "\n  {}", key.path.display());
    }
    let next = match phase(&keys) {
        Phase::Steady(_) => "no rollover in progress (start one with `prepublish`)",
        Phase::Prepublished { .. } => "rollover: next step `swap`",
        Phase::Swapped { .. } => "rollover: next step `retire`, once the parent has the new DS",
        Phase::Other => "the keys are in no state a rollover step starts from",
    };
    let _ = writeln!(out, "{next}");
    Ok(out)
}

/// What `onebox check` says of signing, one problem a line: a zone in `dns.dnssec.zones`
/// without a zone file among `served`, or whose key files cannot be used.
pub fn check(dns: &DnsConfig, state_dir: &Path, served: &[Name]) -> Vec<String> {
    let zones = match super::zones(&dns.dnssec) {
        Ok(zones) => zones,
        Err(message) => return vec![message],
    };
    let store = KeyStore::new(state_dir);
    let mut problems = Vec::new();
    for zone in zones {
        if !served.contains(&zone) {
            problems.push(format!(
                "key dns.dnssec.zones: {zone} has no zone file in {} (expected {}zone)",
                dns.zones_dir.display(),
                zone.to_ascii()
            ));
            continue;
        }
        match store.load(&zone) {
            Ok(keys) if !keys.is_empty() && !keys.iter().any(ZoneKey::signs_zone) => {
                problems.push(format!(
                    "{zone}: no active key in {} (see `onebox dnssec keys {zone}`)",
                    store.dir().display()
                ))
            }
            Ok(_) => {}
            Err(error) => problems.push(error.to_string()),
        }
    }
    problems
}

/// `onebox dnssec rollover ZONE STEP`. `force` skips the waiting times (never the order).
pub fn rollover(
    dns: &DnsConfig,
    state_dir: &Path,
    zone_text: &str,
    step: Step,
    now: i64,
    force: bool,
) -> Result<String, ManageError> {
    let zone = signed_zone(dns, zone_text)?;
    let ttl = dnskey_ttl(dns, &zone)?;
    let store = KeyStore::new(state_dir);
    let _lock = store.lock()?;
    let mut keys = store.load(&zone)?;
    if keys.is_empty() {
        return Err(refused(format!(
            "{zone} has no key yet: onebox generates it when it first signs the zone"
        )));
    }
    let mut out = String::new();
    match (step, phase(&keys)) {
        (Step::Prepublish, Phase::Steady(active)) => {
            let algorithm = match keys[active].algorithm {
                hickory_proto::dnssec::Algorithm::ED25519 => {
                    crate::config::DnssecAlgorithm::Ed25519
                }
                _ => crate::config::DnssecAlgorithm::EcdsaP256Sha256,
            };
            let key = store.generate(&zone, algorithm, KeyState::Published, now, &keys)?;
            let _ = writeln!(
                out,
                "{zone}: key {} published beside key {} (it signs nothing yet).\n\
                 Next, not before {} (the DNSKEY TTL, {ttl}s; more if secondaries lag): \
                 onebox dnssec rollover {zone_text} swap",
                key.tag,
                keys[active].tag,
                keys::timestamp(now + i64::from(ttl)),
            );
            if keys::algorithm_of(dns.dnssec.algorithm) != key.algorithm {
                let _ = writeln!(
                    out,
                    "Note: dns.dnssec.algorithm asks for {}, but a rollover keeps the zone's \
                     algorithm ({}); changing algorithms is not supported yet.",
                    keys::algorithm_of(dns.dnssec.algorithm),
                    key.algorithm
                );
            }
        }
        (Step::Swap, Phase::Prepublished { active, new }) => {
            let published = keys[new].times.published.unwrap_or(keys[new].times.created);
            wait(
                published,
                ttl,
                now,
                force,
                "the new key was published",
                "swap",
            )?;
            keys[active].set_state(KeyState::Retiring, now);
            keys[new].set_state(KeyState::Active, now);
            store.save(&keys[new])?;
            store.save(&keys[active])?;
            let _ = writeln!(
                out,
                "{zone}: key {} now signs the zone; key {} stays published and signs the \
                 DNSKEY set only.\n\
                 Next: give the parent zone (your registrar) the new DS below in place of the \
                 old one; parents that read CDS records take it from the zone themselves.",
                keys[new].tag, keys[active].tag
            );
            for line in super::ds_lines(&keys)? {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(
                out,
                "Then, once the parent serves only the new DS and the old DS has had time to \
                 expire from resolvers' caches (the parent's DS TTL, often a day): \
                 onebox dnssec rollover {zone_text} retire"
            );
        }
        (Step::Retire, Phase::Swapped { active, old }) => {
            let swapped = keys[old].times.retiring.unwrap_or(now);
            wait(swapped, ttl, now, force, "the swap", "retire")?;
            store.remove(&keys[old])?;
            let _ = writeln!(
                out,
                "{zone}: key {} removed; key {} is the zone's only key.",
                keys[old].tag, keys[active].tag
            );
        }
        (step, phase) => {
            let states: Vec<String> = keys
                .iter()
                .map(|k| format!("key {} {}", k.tag, k.state))
                .collect();
            let expected = match phase {
                Phase::Steady(_) => "prepublish",
                Phase::Prepublished { .. } => "swap",
                Phase::Swapped { .. } => "retire",
                Phase::Other => "none (fix the key files by hand)",
            };
            return Err(refused(format!(
                "{zone}: cannot {step:?} now ({}); the next step is {expected}",
                states.join(", ")
            )));
        }
    }
    Ok(out)
}

/// Where a zone's keys stand in a rollover.
enum Phase {
    /// One active key.
    Steady(usize),
    /// An active key and a published one.
    Prepublished { active: usize, new: usize },
    /// An active key and a retiring one.
    Swapped { active: usize, old: usize },
    /// Anything else.
    Other,
}

fn phase(keys: &[ZoneKey]) -> Phase {
    let find = |state| keys.iter().position(|k| k.state == state);
    let count = |state| keys.iter().filter(|k| k.state == state).count();
    let (Some(active), 1) = (find(KeyState::Active), count(KeyState::Active)) else {
        return Phase::Other;
    };
    match (
        keys.len(),
        find(KeyState::Published),
        find(KeyState::Retiring),
    ) {
        (1, _, _) => Phase::Steady(active),
        (2, Some(new), None) => Phase::Prepublished { active, new },
        (2, None, Some(old)) => Phase::Swapped { active, old },
        _ => Phase::Other,
    }
}

/// Refuses a step taken less than `ttl` seconds after `since`, unless forced.
fn wait(
    since: i64,
    ttl: u32,
    now: i64,
    force: bool,
    what: &str,
    step: &str,
) -> Result<(), ManageError> {
    let ready = since + i64::from(ttl);
    if now >= ready || force {
        return Ok(());
    }
    Err(refused(format!(
        "too early to {step}: resolvers may still hold the DNSKEY set from before {what} \
         (DNSKEY TTL {ttl}s); wait until {} ({}s from now), or pass --force if you know \
         better",
        keys::timestamp(ready),
        ready - now
    )))
}

fn refused(message: String) -> ManageError {
    ManageError::Refused(message)
}

/// `zone` as a name, if `dns.dnssec.zones` lists it.
fn signed_zone(dns: &DnsConfig, zone: &str) -> Result<Name, ManageError> {
    let mut name =
        Name::from_ascii(zone).map_err(|e| refused(format!("{zone:?} is not a zone name: {e}")))?;
    name.set_fqdn(true);
    let name = name.to_lowercase();
    let listed = super::zones(&dns.dnssec).map_err(refused)?;
    if !listed.contains(&name) {
        return Err(refused(format!(
            "{name} is not in dns.dnssec.zones, so onebox does not sign it: add it there and \
             reload onebox first (a DS at the parent for an unsigned zone makes it fail to \
             validate)"
        )));
    }
    Ok(name)
}

/// The TTL of the zone's DNSKEY set: its SOA's TTL, read from the zone file.
fn dnskey_ttl(dns: &DnsConfig, zone: &Name) -> Result<u32, ManageError> {
    let file = dns
        .zones_dir
        .join(format!("{}.zone", zone.to_ascii().trim_end_matches('.')));
    let loaded = zone::load_file(&file).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        refused(format!(
            "cannot read the zone to learn its DNSKEY TTL:\n{}",
            lines.join("\n")
        ))
    })?;
    // A loaded zone always has its SOA.
    Ok(loaded.soa().0.ttl)
}
