//! What the DNS service keeps in `state_dir/dns/`, per zone: the version last served (so a
//! restart knows what secondaries hold, and a secondary serves its zone before the first
//! refresh) and its IXFR journal.
//!
//! - `<zone>.zone`: the served version in wire form: a header line, the served and the base
//!   serial (they differ while an overlay has bumped the serial), then every record, SOA first;
//! - `<zone>.ixfr`: the journal, the steps that lead to that version, oldest first;
//! - `<zone>.secondary`: a secondary zone's refresh state (`secondary`), JSON.
//!
//! Records are stored in uncompressed wire form, each prefixed by its length, so every type
//! onebox serves (RFC 3597 unknown types included) round-trips unchanged. Every file is written to
//! a temporary name and renamed into place: a crash leaves the old file or the new one, never a
//! torn one. The journal is written before the version; a journal whose last step does not end
//! at the stored version's serial is ignored when read back (a crash between the two writes).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use super::catalog::ZoneData;
use super::journal::{Diff, History};
use super::zone::{Builder, Loc, RecordBuf, RecordRef, Zone};

const ZONE_MAGIC: &[u8] = b"onebox zone 1\n";
const JOURNAL_MAGIC: &[u8] = b"onebox ixfr 1\n";

/// Why a stored file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoredError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not one onebox wrote, or is damaged.
    #[error("{path}: not a file onebox can read ({what}); it is ignored and rewritten")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// The `state_dir/dns/` directory.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    dir: PathBuf,
}

impl Stored {
    /// The store in `dir` (created when first written).
    pub(crate) fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The file holding the served version of `origin`.
    pub(crate) fn zone_path(&self, origin: &Name) -> PathBuf {
        self.dir.join(format!("{}.zone", file_stem(origin)))
    }

    /// The file holding the journal of `origin`.
    pub(crate) fn journal_path(&self, origin: &Name) -> PathBuf {
        self.dir.join(format!("{}.ixfr", file_stem(origin)))
    }

    /// The file holding a secondary zone's state (`secondary::SecondaryStatus`).
    pub(crate) fn status_path(&self, origin: &Name) -> PathBuf {
        self.dir.join(format!("{}.secondary", file_stem(origin)))
    }

    /// Records a secondary zone's state (`bytes`), atomically.
    pub(crate) fn write_status(&self, origin: &Name, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        write_atomic(&self.status_path(origin), bytes).map_err(io::Error::other)
    }

    /// When the stored version of `origin` was written.
    pub(crate) fn zone_modified(&self, origin: &Name) -> Option<std::time::SystemTime> {
        fs::metadata(self.zone_path(origin)).ok()?.modified().ok()
    }

    /// The serials (served, base) of the stored version, reading only the file's head.
    pub(crate) fn serials(&self, origin: &Name) -> Option<(u32, u32)> {
        let path = self.zone_path(origin);
        let mut head = [0u8; ZONE_MAGIC.len() + 8];
        let mut file = fs::File::open(path).ok()?;
        io::Read::read_exact(&mut file, &mut head).ok()?;
        let rest = head.strip_prefix(ZONE_MAGIC)?;
        Some((be32(&rest[0..4]), be32(&rest[4..8])))
    }

    /// The stored version of `origin` (its SOA with the served serial), if any.
    pub(crate) fn read_zone(&self, origin: &Name) -> Result<Option<Zone>, StoredError> {
        let path = self.zone_path(origin);
        let Some(bytes) = read(&path)? else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoredError::Corrupt {
            path: path.clone(),
            what: what.to_owned(),
        };
        let body = bytes
            .strip_prefix(ZONE_MAGIC)
            .ok_or_else(|| corrupt("wrong header"))?;
        let mut reader = Reader { bytes: body };
        let served_serial = reader.u32().ok_or_else(|| corrupt("truncated"))?;
        let _base_serial = reader.u32().ok_or_else(|| corrupt("truncated"))?;
        let count = reader.u32().ok_or_else(|| corrupt("truncated"))? as usize;
        let mut builder = Builder::new(origin, None);
        for i in 0..count {
            let record = reader
                .record()
                .ok_or_else(|| corrupt("a record cannot be read"))?;
            if i == 0 && record.soa_serial() != Some(served_serial) {
                return Err(corrupt(
                    "the first record is not the SOA of the stored serial",
                ));
            }
            let loc = Loc {
                file: u32::MAX,
                line: i as u32 + 1,
            };
            let r = record.as_ref();
            builder
                .add(r.owner, r.rtype, r.ttl, r.rdata, loc)
                .map_err(|e| corrupt(&e))?;
        }
        let zone = builder
            .finish()
            .map_err(|problems| {
                corrupt(
                    &problems
                        .first()
                        .map(|p| p.message.clone())
                        .unwrap_or_default(),
                )
            })?
            .0;
        Ok(Some(zone))
    }

    /// The stored journal of `origin`, if it leads to `serial`; empty otherwise.
    pub(crate) fn read_journal(&self, origin: &Name, serial: u32) -> Result<History, StoredError> {
        let path = self.journal_path(origin);
        let Some(bytes) = read(&path)? else {
            return Ok(History::default());
        };
        let corrupt = |what: &str| StoredError::Corrupt {
            path: path.clone(),
            what: what.to_owned(),
        };
        let body = bytes
            .strip_prefix(JOURNAL_MAGIC)
            .ok_or_else(|| corrupt("wrong header"))?;
        let mut reader = Reader { bytes: body };
        let steps = reader.u32().ok_or_else(|| corrupt("truncated"))?;
        let mut out = Vec::new();
        for _ in 0..steps {
            let step = reader
                .step()
                .ok_or_else(|| corrupt("a step cannot be read"))?;
            out.push(step);
        }
        let chained = out
            .windows(2)
            .all(|w| w[0].end_serial() == w[1].start_serial());
        if !chained || out.last().is_some_and(|s| s.end_serial() != serial) {
            return Ok(History::default());
        }
        Ok(History::from_steps(out))
    }

    /// Stores the version `zone` of `origin`, served with `served` serial (its base's is
    /// `base`), and the journal `history` that leads to it.
    pub(crate) fn write(
        &self,
        served: u32,
        base: u32,
        zone: &ZoneData,
        origin: &Name,
        history: &History,
    ) -> Result<(), StoredError> {
        fs::create_dir_all(&self.dir).map_err(|source| StoredError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut journal = Vec::with_capacity(history.bytes() + 64);
        journal.extend_from_slice(JOURNAL_MAGIC);
        journal.extend_from_slice(&(history.steps().len() as u32).to_be_bytes());
        for step in history.steps() {
            journal.extend_from_slice(&(step.removed.len() as u32).to_be_bytes());
            journal.extend_from_slice(&(step.added.len() as u32).to_be_bytes());
            for record in step.records() {
                put_record(&mut journal, &record.as_ref());
            }
        }
        write_atomic(&self.journal_path(origin), &journal)?;

        let mut bytes = Vec::with_capacity(zone.len() * 40 + 64);
        bytes.extend_from_slice(ZONE_MAGIC);
        bytes.extend_from_slice(&served.to_be_bytes());
        bytes.extend_from_slice(&base.to_be_bytes());
        bytes.extend_from_slice(&(zone.len() as u32).to_be_bytes());
        for record in zone.records() {
            put_record(&mut bytes, &record);
        }
        write_atomic(&self.zone_path(origin), &bytes)
    }

    /// Forgets `origin` (its zone is no longer served).
    pub(crate) fn remove(&self, origin: &Name) {
        for path in [
            self.zone_path(origin),
            self.journal_path(origin),
            self.status_path(origin),
        ] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(file = %path.display(), %error, "cannot remove"),
            }
        }
    }
}

/// A file name for `origin`: its labels in lower case joined by dots ("root" for the root),
/// every other byte (a dot inside a label too) written as `%XX`.
pub(crate) fn file_stem(origin: &Name) -> String {
    if origin.is_root() {
        return "root".to_owned();
    }
    let mut out = String::with_capacity(origin.len());
    for (i, label) in origin.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        for byte in label.iter().map(u8::to_ascii_lowercase) {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, StoredError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoredError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` through a temporary file renamed into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoredError> {
    let io_error = |source| StoredError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp).map_err(io_error)?;
    file.write_all(bytes).map_err(io_error)?;
    file.sync_data().map_err(io_error)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error)
}

fn put_record(out: &mut Vec<u8>, record: &RecordRef<'_>) {
    out.extend_from_slice(&(record.wire_len() as u16).to_be_bytes());
    record.write_wire(out);
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Reads the stored formats.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.bytes.split_at_checked(4)?;
        self.bytes = rest;
        Some(be32(head))
    }

    fn record(&mut self) -> Option<RecordBuf> {
        let (len, rest) = self.bytes.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (data, rest) = rest.split_at_checked(len)?;
        self.bytes = rest;
        let (record, used) = RecordBuf::read_wire(data)?;
        (used == data.len()).then_some(record)
    }

    fn step(&mut self) -> Option<Diff> {
        let removed = self.u32()? as usize;
        let added = self.u32()? as usize;
        let old_soa = self.record()?;
        let removed = (0..removed)
            .map(|_| self.record())
            .collect::<Option<Vec<_>>>()?;
        let new_soa = self.record()?;
        let added = (0..added)
            .map(|_| self.record())
            .collect::<Option<Vec<_>>>()?;
        Some(Diff {
            old_soa,
            removed,
            new_soa,
            added,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;
    use crate::dns::journal::diff;
    use crate::dns::zone::parse_text;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn version(serial: u32, hosts: u8) -> ZoneData {
        let mut text = format!(
            "Example.org. 3600 IN SOA ns admin {serial} 3600 600 86400 300\n@ 3600 NS ns\n"
        );
        for i in 0..hosts {
            writeln!(text, "h{i}.Example.org. 60 A 192.0.2.{i}").unwrap();
        }
        let zone = parse_text(
            Path::new("example.org.zone"),
            &name("example.org."),
            text.as_bytes(),
        );
        ZoneData::new(zone.unwrap())
    }

    fn records(zone: &ZoneData) -> Vec<RecordBuf> {
        zone.records().map(|r| r.to_buf()).collect()
    }

    #[test]
    fn a_version_and_its_journal_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let stored = Stored::at(&dir.path().join("dns"));
        let origin = name("example.org.");
        assert!(stored.read_zone(&origin).unwrap().is_none());
        let v1 = version(1, 3);
        let v2 = version(2, 5);
        let history = History::default().then(diff(&v1, &v2), usize::MAX);
        stored.write(2, 2, &v2, &origin, &history).unwrap();
        assert_eq!(stored.serials(&origin), Some((2, 2)));
        let back = ZoneData::new(stored.read_zone(&origin).unwrap().unwrap());
        assert_eq!(records(&back), records(&v2));
        // Case is kept: the stored zone is served as it was.
        assert_eq!(
            records(&back)[2].owner.as_ref(),
            b"\x02h0\x07Example\x03org\x00"
        );
        let journal = stored.read_journal(&origin, 2).unwrap();
        assert_eq!(journal.steps().len(), 1);
        assert_eq!(*journal.steps()[0].as_ref(), diff(&v1, &v2));
        assert!(
            stored.read_journal(&origin, 3).unwrap().steps().is_empty(),
            "a journal leading elsewhere is ignored"
        );

        stored.remove(&origin);
        assert!(stored.read_zone(&origin).unwrap().is_none());
    }

    #[test]
    fn a_damaged_file_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let stored = Stored::at(dir.path());
        let origin = name("example.org.");
        fs::write(
            stored.zone_path(&origin),
            b"onebox zone 1\n\0\0\0\x01\0\0\0\x01\0\0\0\x09junk",
        )
        .unwrap();
        assert!(matches!(
            stored.read_zone(&origin),
            Err(StoredError::Corrupt { .. })
        ));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_stem(&name("Foobar.COM.")), "foobar.com");
        assert_eq!(file_stem(&Name::root()), "root");
        let odd = Name::from_labels(vec![&b"a/b"[..], &b"example"[..]]).unwrap();
        assert_eq!(file_stem(&odd), "a%2Fb.example");
    }
}
