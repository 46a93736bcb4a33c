//! Zone files: RFC 1035 master files in, validated record lists out.
//!
//! `parse` turns one file (and what it `$INCLUDE`s) into records, reporting every error as
//! `file:line: message`. [`load_dir`] loads every `*.zone` file of the zones directory; the zone's
//! name is the file's name without `.zone` (`foobar.com.zone` is `foobar.com.`).
//!
//! `onebox check` and `onebox serve` both call [`load_dir`], so what check accepts, serve serves.

mod lex;
mod parse;
mod rdata;

use std::fmt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::serial::{Digest, Version};

/// One zone as read from its file: validated, not yet indexed for answering.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The zone's apex (fully qualified, lower case).
    pub origin: Name,
    /// The SOA serial.
    pub serial: u32,
    /// Every record of the zone, the SOA first, then in file order.
    pub records: Vec<Record>,
    /// The file it came from.
    pub source: PathBuf,
}

impl Zone {
    /// The serial and content digest the serial rules compare (see `dns::serial`).
    pub fn version(&self) -> Version {
        let mut digest = Digest::default();
        let mut rdata = Vec::with_capacity(512);
        for record in &self.records {
            rdata.clear();
            let mut encoder = BinEncoder::new(&mut rdata);
            // Encoding what was read from a zone file does not fail; if it did, the record
            // would still count through its owner, type and TTL.
            let _ = record.data.emit(&mut encoder);
            digest.add(
                &crate::dns::catalog::key_of(&record.name),
                u16::from(record.record_type()),
                u16::from(record.dns_class),
                record.ttl,
                &rdata,
            );
        }
        Version {
            serial: self.serial,
            digest: digest.finish(),
        }
    }
}

/// Something wrong in a zone file, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    /// The file holding the error (an `$INCLUDE`d file names itself).
    pub file: PathBuf,
    /// The 1-based line, or 0 when the error concerns the whole file.
    pub line: usize,
    /// What is wrong, and where useful how to fix it.
    pub message: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ZoneError {}

/// The outcome of loading one zone file: the zone, or every error found in it.
pub type ZoneResult = Result<Zone, Vec<ZoneError>>;

/// Loads one zone file. The zone is named after the file (`<origin>.zone`).
pub fn load_file(path: &Path) -> ZoneResult {
    let origin = origin_of(path).map_err(|message| {
        vec![ZoneError {
            file: path.to_owned(),
            line: 0,
            message,
        }]
    })?;
    parse::parse_zone(path, &origin)
}

/// Loads every `*.zone` file in `dir`, sorted by file name. Other files are ignored (give
/// `$INCLUDE`d files another extension). An unreadable directory is an error of its own.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, ZoneResult)>, ZoneError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ZoneError {
        file: dir.to_owned(),
        line: 0,
        message: format!("cannot read the zones directory: {e} (key dns.zones_dir)"),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "zone") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let result = load_file(&path);
            (path, result)
        })
        .collect())
}

/// The zone a file holds, from its name: `foobar.com.zone` holds `foobar.com.`.
pub fn origin_of(path: &Path) -> Result<Name, String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| "the file name is not a zone name: name it <zone>.zone".to_owned())?;
    let mut name = Name::from_ascii(stem).map_err(|e| {
        format!("the file name {stem:?} is not a zone name ({e}): name it <zone>.zone")
    })?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}
