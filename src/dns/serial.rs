//! The serial rules: what a new version of a zone may do to its SOA serial.
//!
//! Secondaries (NSD, Knot, another onebox) transfer a zone only when its serial increases in
//! RFC 1982 arithmetic. So when a zone is replaced by a new version:
//!
//! - same serial, same content: nothing changed;
//! - serial increased: a normal change;
//! - same (or not increased) serial but different content: served, with a warning — the
//!   secondaries keep the old content until the serial increases;
//! - serial decreased: an error; the previous version keeps serving. (A deliberate wrap-around
//!   is done in steps of less than 2^31, as RFC 1982 §7 describes.)
//!
//! [`judge`] applies these rules to two [`Version`]s. Every path that swaps a zone version in
//! (a file reload, a transfer received, an overlay) calls it; `onebox check` calls it against
//! the versions last served, which [`ServedVersions`] keeps in `state_dir/dns/versions` (one
//! line per zone: name, serial, content digest), so that it warns before a reload would.
//! Where the ACME challenge overlay took the served serial past the file's (see
//! `dns::versions`), the line has a fourth field, the serial served, so that a restart does
//! not go back below what secondaries already hold.
//!
//! The content digest ([`Version::digest`]) is order-independent: the wrapping sum of a 64-bit
//! hash of each record (owner in lower case, type, class, TTL, RDATA). It only needs to tell
//! "changed" from "unchanged" between two loads of one zone.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// What the serial rules need to know about one version of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The SOA serial.
    pub serial: u32,
    /// A digest of every record, the SOA included.
    pub digest: u64,
}

/// The verdict on replacing one version of a zone by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same serial, same content.
    Unchanged,
    /// The serial increased (RFC 1982).
    Increased,
    /// The content changed but the serial did not increase: served, but secondaries miss it.
    NotIncreased,
    /// The serial went backwards (or jumped by exactly 2^31, which RFC 1982 leaves undefined):
    /// refused, the old version keeps serving.
    Backwards,
}

/// Applies the serial rules to replacing `old` with `new`.
pub fn judge(old: Version, new: Version) -> Change {
    if new.serial == old.serial {
        if new.digest == old.digest {
            Change::Unchanged
        } else {
            Change::NotIncreased
        }
    } else if serial_gt(new.serial, old.serial) {
        Change::Increased
    } else {
        Change::Backwards
    }
}

/// Whether serial `a` is greater than `b` in RFC 1982 (SERIAL_BITS = 32) arithmetic.
pub fn serial_gt(a: u32, b: u32) -> bool {
    let distance = a.wrapping_sub(b);
    distance != 0 && distance < 1 << 31
}

impl Change {
    /// Why this change is a problem, for a log line or `onebox check`; `None` when it is not.
    pub fn problem(self, zone: &str, old: Version, new: Version) -> Option<String> {
        match self {
            Change::Unchanged | Change::Increased => None,
            Change::NotIncreased => Some(format!(
                "zone {zone}: the content changed but the serial {} did not increase (was {}): \
                 secondaries will not transfer the change; increase the serial",
                new.serial, old.serial
            )),
            Change::Backwards => Some(format!(
                "zone {zone}: the serial went backwards from {} to {}: secondaries would never \
                 transfer this version, so the previous one keeps serving; set a serial above {}",
                old.serial, new.serial, old.serial
            )),
        }
    }
}

/// An order-independent digest of a zone's records, built one record at a time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Digest {
    sum: u64,
    count: u64,
}

impl Digest {
    /// Adds one record: its owner in lower-case wire form, type, class, TTL and RDATA.
    pub fn add(&mut self, owner_key: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) {
        let mut hash = Fnv::default();
        hash.write(owner_key);
        hash.write(&rtype.to_be_bytes());
        hash.write(&class.to_be_bytes());
        hash.write(&ttl.to_be_bytes());
        hash.write(&(rdata.len() as u64).to_be_bytes());
        hash.write(rdata);
        self.sum = self.sum.wrapping_add(mix(hash.0));
        self.count += 1;
    }

    /// The digest of every record added.
    pub fn finish(self) -> u64 {
        mix(self.sum ^ self.count.rotate_left(32))
    }
}

/// FNV-1a, 64 bits: a defined, stable hash (the digest is kept on disk between runs).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The splitmix64 finaliser: spreads every input bit over the output before hashes are summed.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The versions last served, by zone name, as kept in `state_dir/dns/versions`: the zone as
/// read, and the serial served when it differs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServedVersions {
    zones: BTreeMap<String, (Version, Option<u32>)>,
}

/// The first line of the file: its format (a later digest algorithm gets a new one).
const HEADER: &str = "# onebox served zone versions v1: zone serial digest";

impl ServedVersions {
    /// Where the versions are kept under `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("dns").join("versions")
    }

    /// Reads the file; a missing file, another format or a bad line are read as "nothing
    /// known" for what they concern (the rules then have nothing to compare with).
    pub fn read(state_dir: &Path) -> Self {
        let Ok(text) = std::fs::read_to_string(Self::path(state_dir)) else {
            return Self::default();
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Self::default();
        }
        let zones = lines
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let zone = fields.next()?;
                let serial = fields.next()?.parse().ok()?;
                let digest = u64::from_str_radix(fields.next()?, 16).ok()?;
                let served = fields.next().and_then(|f| f.parse().ok());
                Some((zone.to_owned(), (Version { serial, digest }, served)))
            })
            .collect();
        Self { zones }
    }

    /// The version of `zone` (its name with the final dot, lower case) last served.
    pub fn get(&self, zone: &str) -> Option<Version> {
        self.zones.get(zone).map(|(version, _)| *version)
    }

    /// The serial `zone` was last served with, when the overlay took it past the file's.
    pub fn served_serial(&self, zone: &str) -> Option<u32> {
        self.zones.get(zone).and_then(|(_, served)| *served)
    }

    /// The serial `zone` was last served with.
    pub fn serving(&self, zone: &str) -> Option<u32> {
        self.zones
            .get(zone)
            .map(|(version, served)| served.unwrap_or(version.serial))
    }

    /// Records what `zone` serves now: `version` as read, served with its own serial.
    pub fn set(&mut self, zone: &str, version: Version) {
        self.zones.insert(zone.to_owned(), (version, None));
    }

    /// Records what `zone` serves now: `version` as read, served with `serial`.
    pub fn set_served(&mut self, zone: &str, version: Version, serial: u32) {
        let served = (serial != version.serial).then_some(serial);
        self.zones.insert(zone.to_owned(), (version, served));
    }

    /// Forgets every zone not in `served`.
    pub fn retain(&mut self, served: &[String]) {
        self.zones.retain(|zone, _| served.contains(zone));
    }

    /// Writes the file (a temporary file renamed over it: never half written).
    pub fn write(&self, state_dir: &Path) -> io::Result<()> {
        let path = Self::path(state_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = String::from(HEADER);
        text.push('\n');
        for (zone, (version, served)) in &self.zones {
            text.push_str(&format!(
                "{zone} {} {:016x}",
                version.serial, version.digest
            ));
            if let Some(served) = served {
                text.push_str(&format!(" {served}"));
            }
            text.push('\n');
        }
        let temporary = path.with_extension("new");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(serial: u32, digest: u64) -> Version {
        Version { serial, digest }
    }

    #[test]
    fn rfc_1982_comparison() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(1, 1));
        assert!(serial_gt(0, u32::MAX), "wraps around");
        assert!(serial_gt(5, u32::MAX - 5));
        assert!(serial_gt((1 << 31) - 1, 0));
        assert!(
            !serial_gt(1 << 31, 0),
            "a jump of 2^31 is undefined: not greater"
        );
        assert!(!serial_gt(0, 1 << 31));
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(v(1, 7), v(1, 7)), Change::Unchanged);
        assert_eq!(judge(v(1, 7), v(2, 8)), Change::Increased);
        assert_eq!(judge(v(1, 7), v(2, 7)), Change::Increased);
        assert_eq!(judge(v(1, 7), v(1, 8)), Change::NotIncreased);
        assert_eq!(judge(v(5, 7), v(4, 8)), Change::Backwards);
        assert_eq!(judge(v(5, 7), v(4, 7)), Change::Backwards);
        assert_eq!(judge(v(u32::MAX, 7), v(3, 8)), Change::Increased);
        assert!(Change::Increased.problem("z.", v(1, 1), v(2, 2)).is_none());
        let problem = Change::Backwards
            .problem("z.", v(5, 1), v(4, 2))
            .expect("a problem");
        assert!(problem.contains("from 5 to 4"), "{problem}");
    }

    #[test]
    fn the_digest_ignores_order_and_sees_every_field() {
        type Fields = (&'static [u8], u16, u16, u32, &'static [u8]);
        let records: [Fields; 3] = [
            (b"\x01a\x00", 1, 1, 60, &[192, 0, 2, 1]),
            (b"\x01a\x00", 1, 1, 60, &[192, 0, 2, 2]),
            (b"\x01b\x00", 16, 1, 60, b"\x02hi"),
        ];
        let digest = |order: &[usize]| {
            let mut d = Digest::default();
            for &i in order {
                let (o, t, c, ttl, r) = records[i];
                d.add(o, t, c, ttl, r);
            }
            d.finish()
        };
        assert_eq!(digest(&[0, 1, 2]), digest(&[2, 0, 1]));
        assert_ne!(digest(&[0, 1, 2]), digest(&[0, 1]));
        let mut changed = Digest::default();
        changed.add(b"\x01a\x00", 1, 1, 61, &[192, 0, 2, 1]);
        changed.add(b"\x01a\x00", 1, 1, 60, &[192, 0, 2, 2]);
        changed.add(b"\x01b\x00", 16, 1, 60, b"\x02hi");
        assert_ne!(changed.finish(), digest(&[0, 1, 2]), "a TTL is content");
    }

    #[test]
    fn served_versions_survive_a_round_trip_and_tolerate_junk() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(ServedVersions::read(dir.path()), ServedVersions::default());
        let mut served = ServedVersions::default();
        served.set("example.com.", v(2026010101, 0xdead_beef));
        served.set("other.test.", v(7, u64::MAX));
        served.set_served("overlaid.test.", v(7, 1), 9);
        served.write(dir.path()).expect("write");
        let read = ServedVersions::read(dir.path());
        assert_eq!(read, served);
        assert_eq!(read.served_serial("overlaid.test."), Some(9));
        assert_eq!(read.served_serial("other.test."), None);
        assert_eq!(read.get("other.test."), Some(v(7, u64::MAX)));
        let mut kept = read.clone();
        kept.retain(&["other.test.".to_owned()]);
        assert_eq!(kept.get("example.com."), None);

        let path = ServedVersions::path(dir.path());
        std::fs::write(
            &path,
            format!("{HEADER}\nbroken line\nz. 1 xyz\nok. 3 ff\n"),
        )
        .expect("write");
        let read = ServedVersions::read(dir.path());
        assert_eq!(read.get("ok."), Some(v(3, 0xff)));
        assert_eq!(read.get("z."), None);
        std::fs::write(&path, "# another format\nok. 3 ff\n").expect("write");
        assert_eq!(ServedVersions::read(dir.path()), ServedVersions::default());
    }
}
