//! Zones: master files in, validated and indexed zone versions out.
//!
//! - `lex`, `parse` and `rdata` read one master file (and what it `$INCLUDE`s) as NSD and BIND
//!   read it, every error reported as `file:line: message`; `types` is the table of record
//!   types and their RDATA layouts that drives `rdata`, and `name` the wire-name helpers;
//! - `build` ([`Builder`]) turns records from any source (a file, a transfer, an overlay) into a
//!   [`Zone`], applying the rules that need the whole zone;
//! - `data` ([`Zone`]) is one zone version in memory: compact, immutable, indexed for
//!   answering and walkable for transfers.
//!
//! [`load_dir`] loads every `*.zone` file of the zones directory; the zone's name is the file's
//! name without `.zone` (`foobar.com.zone` is `foobar.com.`). `onebox check` and `onebox serve`
//! both call it, so what check accepts, serve serves.

mod build;
pub(crate) mod data;
mod lex;
pub(crate) mod name;
mod parse;
mod rdata;
pub(crate) mod types;

use std::fmt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, Record};

pub use build::{Builder, Loc, Problem};
pub(crate) use data::{APEX, Kind, RRset, code};
pub use data::{RecordBuf, RecordRef, Zone};
#[cfg(test)]
pub(crate) use parse::parse_text;

/// A zone as a list of hickory-proto records: SOA first, then the others. What the DNSSEC
/// signer reads and writes until it works on [`Zone`] directly; [`Zone::to_records`] and
/// [`Records::build`] convert.
#[derive(Debug, Clone)]
pub struct Records {
    /// The apex.
    pub origin: Name,
    /// The SOA serial.
    pub serial: u32,
    /// Every record, the SOA first.
    pub records: Vec<Record>,
    /// The file the zone was read from.
    pub source: PathBuf,
}

impl Zone {
    /// The zone's records as hickory-proto models them (types it does not know as
    /// `RData::Unknown`), the SOA first.
    pub fn to_records(&self) -> Records {
        Records {
            origin: self.origin().clone(),
            serial: self.serial(),
            records: self.records().filter_map(|r| r.to_record()).collect(),
            source: self.source().map(Path::to_path_buf).unwrap_or_default(),
        }
    }
}

impl Records {
    /// The zone these records make, with every rule of a zone read from a file applied.
    pub fn build(&self) -> Result<Zone, Vec<Problem>> {
        let mut builder = Builder::new(&self.origin, Some(self.source.clone()));
        let mut problems = Vec::new();
        for (i, record) in self.records.iter().enumerate() {
            let loc = Loc {
                file: u32::MAX,
                line: i as u32 + 1,
            };
            if let Err(message) = builder.add_record(record, loc) {
                problems.push(Problem { loc, message });
            }
        }
        match builder.finish() {
            Ok((zone, _)) if problems.is_empty() => Ok(zone),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
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
