//! DNSSEC: onebox signs the zones listed in `dns.dnssec.zones` itself, as Knot does.
//!
//! - [`keys`] keeps each zone's keys in `state_dir/keys/` (generated on first use, mode 0600),
//!   and says what each key does in the key's life (published, active, retiring);
//! - `sign` turns a zone's records and keys into the signed zone: DNSKEY, CDS and CDNSKEY at the
//!   apex, an NSEC chain, an RRSIG for every authoritative RRset; pure apart from the clock value
//!   and the randomness it is given;
//! - `canonical` holds RFC 4034's canonical forms (name order, RDATA, signed data);
//! - [`manage`] is `onebox dnssec ...`: the DS for the registrar, the keys, rollovers.
//!
//! Signing happens where a zone version is made (load, reload, refresh), never per query: the
//! catalog indexes the signed zone like any other, and answers to DO=1 queries are copied from
//! what was computed then.
//!
//! **Why NSEC, not NSEC3.** NSEC3 exists to make zone walking harder, and RFC 9276 §3.1 says to
//! use NSEC unless that (or opt-out) is needed. onebox's zones are a web site's names, which
//! certificate transparency logs publish anyway; NSEC answers are smaller, need no hashing per
//! query (an NSEC3 NXDOMAIN costs up to three SHA-1 computations in the server), and let
//! resolvers answer for whole ranges of names from their cache (RFC 8198), which is what blunts
//! random-subdomain floods. ldns-signzone, Knot and BIND all default to NSEC too.

mod canonical;
pub mod keys;
pub mod manage;
mod sign;

use hickory_proto::rr::Name;

pub use keys::{KeyError, KeyState, KeyStore, ZoneKey};
pub use sign::{Policy, SignError, Signed, sign_zone};

use crate::config::DnssecConfig;

/// The zones `config` lists, as names (fully qualified, lower case).
pub fn zones(config: &DnssecConfig) -> Result<Vec<Name>, String> {
    config
        .zones
        .iter()
        .map(|zone| {
            let mut name = Name::from_ascii(zone)
                .map_err(|e| format!("key dns.dnssec.zones: {zone:?} is not a zone name: {e}"))?;
            name.set_fqdn(true);
            Ok(name.to_lowercase())
        })
        .collect()
}

/// The DS records of the keys the parent should point at (the active ones), one presentation
/// line each: `foobar.com. IN DS 12345 13 2 AB12...`.
pub fn ds_lines(keys: &[ZoneKey]) -> Result<Vec<String>, KeyError> {
    keys.iter()
        .filter(|key| key.state == KeyState::Active)
        .map(|key| {
            let ds = key.ds()?;
            Ok(format!(
                "{} IN DS {} {} {} {}",
                key.zone,
                ds.key_tag(),
                u8::from(ds.algorithm()),
                u8::from(ds.digest_type()),
                data_encoding::HEXUPPER.encode(ds.digest())
            ))
        })
        .collect()
}
