//! RFC 1035 master-file reader: one zone file, and what it `$INCLUDE`s, to a validated [`Zone`].
//!
//! The file is read as NSD and BIND read it. [`lex`](super::lex) splits it into entries (it
//! owns comments, parentheses and quoting); this module handles directives, owners, TTLs and
//! classes, and [`rdata`](super::rdata) builds each record's data. Errors never stop the read:
//! each bad entry is reported as `file:line: message` and the next entry is read, so one run of
//! `onebox check` shows every problem.
//!
//! Rules worth knowing, all as BIND applies them:
//! - The file starts with `$ORIGIN` set to the zone's name (from the file name). `$ORIGIN` may
//!   be relative to the current origin.
//! - `$INCLUDE file [origin]`: a relative path is relative to the including file's directory.
//!   The included file starts with the given origin (or the current one) and with no current
//!   owner, so its first record must name its owner; when it ends, the including file's origin
//!   and owner are back. `$TTL` and the last explicit TTL carry across files. Nesting is limited
//!   to [`MAX_INCLUDE_DEPTH`] and a file that includes itself, directly or not, is an error.
//! - TTL of a record written without one: the `$TTL` value if one was given; otherwise the last
//!   TTL written explicitly on a record (RFC 1035); otherwise, for the SOA only, its MINIMUM
//!   field, which then serves as the default for the records after it (BIND's rule, with a
//!   warning); otherwise the record is an error. A TTL above 2^31-1 is read as 0 (RFC 2181 §8).
//! - Class: IN, or none. Other classes are an error: onebox serves the Internet class only.
//!
//! Validation, each error on the line of the record that breaks the rule (the later one when two
//! records collide): exactly one SOA, at the apex; every owner inside the zone; a name with a
//! CNAME has no other data and only one CNAME (RFC 1034 §3.6.2, RFC 2181 §10.1); the apex has
//! NS records (reported on the SOA's line). Identical records are merged silently. Records of
//! one RRset with different TTLs all get the first TTL, with a warning (RFC 2181 §5.2).

use std::collections::hash_map::Entry as MapEntry;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::parse_ttl;
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::warn;

use super::lex::{self, Entry, Lexer, Token};
use super::rdata;
use super::{Zone, ZoneError, ZoneResult};

/// How deep `$INCLUDE`s may nest.
pub(super) const MAX_INCLUDE_DEPTH: usize = 16;

/// The largest TTL; larger values are read as 0 (RFC 2181 §8).
const MAX_TTL: u32 = 0x7fff_ffff;

/// Reads the zone `origin` from the master file at `path`.
pub(super) fn parse_zone(path: &Path, origin: &Name) -> ZoneResult {
    let mut loader = Loader::new(origin);
    loader.file(path, origin.clone(), None);
    loader.finish()
}

/// Where something is: an index into [`Loader::files`] and a 1-based line.
#[derive(Debug, Clone, Copy)]
struct Loc {
    file: usize,
    line: usize,
}

/// What a name holds so far, for the CNAME rules.
#[derive(Debug, Default)]
struct NameUse {
    cname: Option<Loc>,
    other: Option<(RecordType, Loc)>,
}

/// The reading state of one file: it ends with the file, which is how an `$INCLUDE`'s origin
/// and owner stay inside it.
struct Frame {
    file: usize,
    origin: Name,
    owner: Option<Name>,
}

/// The state of one zone load, across all its files.
struct Loader {
    /// The zone's apex, lower case.
    apex: Name,
    /// Every file read, the zone file first.
    files: Vec<PathBuf>,
    /// The canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    /// `$TTL`, or the SOA MINIMUM standing in for it.
    default_ttl: Option<u32>,
    /// The last TTL written on a record.
    last_ttl: Option<u32>,
    /// The records kept, in file order.
    records: Vec<Record>,
    /// The SOA's index in `records`, and where it was written.
    soa: Option<(usize, Loc)>,
    /// An SOA, and an NS at the apex, were written, even if with errors: the zone-wide checks
    /// then have nothing to add to the errors already reported.
    soa_written: bool,
    apex_ns_written: bool,
    /// Every record kept, by owner and data, to merge duplicates.
    seen: FxHashSet<(LowerName, RData)>,
    /// Every RRset: its TTL and where it started.
    rrsets: FxHashMap<(LowerName, RecordType), (u32, Loc)>,
    /// What each name holds, for the CNAME rules.
    names: FxHashMap<LowerName, NameUse>,
    errors: Vec<ZoneError>,
}

impl Loader {
    fn new(apex: &Name) -> Self {
        Self {
            apex: apex.to_lowercase(),
            files: Vec::new(),
            stack: Vec::new(),
            default_ttl: None,
            last_ttl: None,
            records: Vec::new(),
            soa: None,
            soa_written: false,
            apex_ns_written: false,
            seen: FxHashSet::default(),
            rrsets: FxHashMap::default(),
            names: FxHashMap::default(),
            errors: Vec::new(),
        }
    }

    /// Reads one file into the zone; `from` is the `$INCLUDE` naming it (errors about the
    /// file itself go there).
    fn file(&mut self, path: &Path, origin: Name, from: Option<Loc>) {
        let (canonical, bytes) = match self.open(path, from.is_some()) {
            Ok(opened) => opened,
            Err(message) => {
                match from {
                    Some(loc) => self.error(loc, message),
                    None => self.errors.push(ZoneError {
                        file: path.to_owned(),
                        line: 0,
                        message,
                    }),
                }
                return;
            }
        };
        let file = self.files.len();
        self.files.push(path.to_owned());
        self.stack.push(canonical);
        let mut frame = Frame {
            file,
            origin,
            owner: None,
        };
        for entry in Lexer::new(&bytes) {
            match entry {
                Ok(entry) => {
                    let loc = Loc {
                        file,
                        line: entry.line,
                    };
                    if let Err(message) = self.entry(&mut frame, loc, &entry) {
                        self.error(loc, message);
                    }
                }
                Err(e) => self.error(Loc { file, line: e.line }, e.message),
            }
        }
        self.stack.pop();
    }

    /// The file's canonical path and contents, unless it cannot or must not be read.
    fn open(&self, path: &Path, included: bool) -> Result<(PathBuf, Vec<u8>), String> {
        let what = if included {
            "$INCLUDE file"
        } else {
            "zone file"
        };
        let cannot = |e: std::io::Error| format!("cannot read the {what} {}: {e}", path.display());
        let canonical = std::fs::canonicalize(path).map_err(cannot)?;
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(format!(
                "$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep: {} not read",
                path.display()
            ));
        }
        if self.stack.contains(&canonical) {
            return Err(format!(
                "$INCLUDE loop: {} is already being read; a file cannot include itself, directly \
                 or through others",
                path.display()
            ));
        }
        let bytes = std::fs::read(&canonical).map_err(cannot)?;
        Ok((canonical, bytes))
    }

    fn entry(&mut self, frame: &mut Frame, loc: Loc, entry: &Entry<'_>) -> Result<(), String> {
        if !entry.blank_owner
            && let Some((Token::Word(word), args)) = entry.tokens.split_first()
            && word.starts_with(b"$")
        {
            return self.directive(frame, loc, word, args);
        }
        self.record(frame, loc, entry)
    }

    fn directive(
        &mut self,
        frame: &mut Frame,
        loc: Loc,
        word: &[u8],
        args: &[Token<'_>],
    ) -> Result<(), String> {
        let directive = String::from_utf8_lossy(word).to_ascii_uppercase();
        match directive.as_str() {
            "$ORIGIN" => {
                let [arg] = args else {
                    return Err("$ORIGIN takes one domain name, like `$ORIGIN example.com.`".into());
                };
                frame.origin = rdata::name(plain(arg, "origin")?, &frame.origin)?;
            }
            "$TTL" => {
                let [arg] = args else {
                    return Err("$TTL takes one time, like `$TTL 3600` or `$TTL 1h`".into());
                };
                self.default_ttl = Some(self.ttl(plain(arg, "TTL")?, loc)?);
            }
            "$INCLUDE" => {
                let (file, origin) = match args {
                    [file] => (file, None),
                    [file, origin] => (file, Some(origin)),
                    _ => {
                        return Err("$INCLUDE takes a file name and optionally an origin, like \
                                    `$INCLUDE hosts.inc` or `$INCLUDE hosts.inc sub.example.com.`"
                            .into());
                    }
                };
                let bytes = match file {
                    Token::Word(raw) => lex::unescape(raw)?,
                    Token::Quoted(bytes) => bytes.to_vec(),
                };
                let mut path = PathBuf::from(OsString::from_vec(bytes));
                if path.is_relative()
                    && let Some(dir) = self.files[frame.file].parent()
                {
                    path = dir.join(path);
                }
                let origin = match origin {
                    Some(origin) => rdata::name(plain(origin, "origin")?, &frame.origin)?,
                    None => frame.origin.clone(),
                };
                self.file(&path, origin, Some(loc));
            }
            "$GENERATE" => {
                return Err(
                    "$GENERATE is a BIND extension onebox does not read: write the records out"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "unknown directive {directive}: master files know $ORIGIN, $TTL and $INCLUDE"
                ));
            }
        }
        Ok(())
    }

    fn record(&mut self, frame: &mut Frame, loc: Loc, entry: &Entry<'_>) -> Result<(), String> {
        let mut tokens = entry.tokens.as_slice();
        let owner = if entry.blank_owner {
            frame.owner.clone().ok_or(
                "this line starts with a blank, which means \"same owner as the record before\", \
                 but no record before it in this file names one: write the owner name (or @) at \
                 the start of the line",
            )?
        } else {
            let (first, rest) = tokens.split_first().ok_or("empty entry")?;
            tokens = rest;
            let owner = rdata::name(plain(first, "owner name")?, &frame.origin)?;
            frame.owner = Some(owner.clone());
            owner
        };

        let mut ttl = None;
        let mut class = false;
        let rtype = loop {
            let (first, rest) = tokens
                .split_first()
                .ok_or("no record type: a record is `owner [TTL] [IN] TYPE data`")?;
            tokens = rest;
            let word = plain(first, "record type")?;
            if ttl.is_none() && word.first().is_some_and(u8::is_ascii_digit) {
                ttl = Some(self.ttl(word, loc)?);
            } else if !class && is_class(word) {
                if !word.eq_ignore_ascii_case(b"IN") && !word.eq_ignore_ascii_case(b"CLASS1") {
                    return Err(format!(
                        "class {} is not served: onebox serves class IN only; write IN or leave \
                         the class out",
                        String::from_utf8_lossy(word)
                    ));
                }
                class = true;
            } else {
                break rdata::record_type(word).ok_or_else(|| {
                    format!("unknown record type {:?}", String::from_utf8_lossy(word))
                })?;
            }
        };

        self.soa_written |= rtype == RecordType::SOA;
        self.apex_ns_written |= rtype == RecordType::NS && owner == self.apex;
        if !self.apex.zone_of(&owner) {
            return Err(format!(
                "{owner} is out of zone: this file holds {}, so every owner must be in it (check \
                 $ORIGIN, and the final dot that makes a name absolute)",
                self.apex
            ));
        }
        let data = rdata::build(rtype, tokens, &frame.origin)?;
        let ttl = match ttl {
            Some(ttl) => {
                self.last_ttl = Some(ttl);
                ttl
            }
            None => self.implicit_ttl(&data, loc)?,
        };
        self.insert(Record::from_rdata(owner, ttl, data), loc)
    }

    /// Parses a TTL (seconds or units like `1h30m`); above 2^31-1 it is 0, as RFC 2181 says.
    fn ttl(&self, word: &[u8], loc: Loc) -> Result<u32, String> {
        let ttl = std::str::from_utf8(word)
            .ok()
            .and_then(|text| parse_ttl(text).ok())
            .ok_or_else(|| {
                format!(
                    "bad TTL {:?}: write seconds, or units like 1h, 2d, 1w, 1h30m",
                    String::from_utf8_lossy(word)
                )
            })?;
        if ttl > MAX_TTL {
            warn!(
                "{}: TTL {ttl} is above {MAX_TTL} and is read as 0 (RFC 2181 section 8)",
                self.at(loc)
            );
            return Ok(0);
        }
        Ok(ttl)
    }

    /// The TTL of a record written without one (see the module documentation).
    fn implicit_ttl(&mut self, data: &RData, loc: Loc) -> Result<u32, String> {
        if let Some(ttl) = self.default_ttl.or(self.last_ttl) {
            return Ok(ttl);
        }
        if let RData::SOA(soa) = data {
            let ttl = if soa.minimum > MAX_TTL {
                0
            } else {
                soa.minimum
            };
            warn!(
                "{}: no TTL and no $TTL: the SOA and the records after it without a TTL get \
                 the SOA MINIMUM, {ttl}; add `$TTL` at the top of the file to choose",
                self.at(loc)
            );
            self.default_ttl = Some(ttl);
            return Ok(ttl);
        }
        Err(
            "no TTL for this record and no default: add `$TTL 3600` (or another time) at the \
             top of the file, or give the record a TTL"
                .into(),
        )
    }

    /// Adds one record, enforcing the per-record rules.
    fn insert(&mut self, mut record: Record, loc: Loc) -> Result<(), String> {
        let rtype = record.record_type();
        let key = (LowerName::new(&record.name), record.data.clone());
        if self.seen.contains(&key) {
            return Ok(());
        }
        let name = &record.name;
        if rtype == RecordType::SOA {
            if *name != self.apex {
                return Err(format!(
                    "SOA record for {name}, but this file holds the zone {} (named after the \
                     file): the SOA belongs at the apex, written @",
                    self.apex
                ));
            }
            if let Some((_, first)) = self.soa {
                return Err(format!(
                    "a second SOA record (the first is at {}): a zone has exactly one SOA",
                    self.place(first, loc)
                ));
            }
        }

        if !matches!(rtype, RecordType::RRSIG | RecordType::NSEC) {
            let usage = self.names.get(&key.0);
            let conflict = match (
                rtype,
                usage.and_then(|u| u.cname),
                usage.and_then(|u| u.other),
            ) {
                (RecordType::CNAME, Some(first), _) => Some(format!(
                    "a second CNAME at {name} (the first is at {}): a name has at most one CNAME",
                    self.place(first, loc)
                )),
                (RecordType::CNAME, None, Some((other, at))) => Some(format!(
                    "CNAME at {name}, which already has {other} data (at {}): {CNAME_RULE}",
                    self.place(at, loc)
                )),
                (_, Some(at), _) if rtype != RecordType::CNAME => Some(format!(
                    "{rtype} record at {name}, which has a CNAME (at {}): {CNAME_RULE}",
                    self.place(at, loc)
                )),
                _ => None,
            };
            if let Some(message) = conflict {
                return Err(message);
            }
            let usage = self.names.entry(key.0.clone()).or_default();
            if rtype == RecordType::CNAME {
                usage.cname = Some(loc);
            } else if usage.other.is_none() {
                usage.other = Some((rtype, loc));
            }
        }

        match self.rrsets.entry((key.0.clone(), rtype)) {
            MapEntry::Occupied(set) => {
                let (ttl, first) = *set.get();
                if record.ttl != ttl {
                    warn!(
                        "{}: TTL {} differs from the TTL {ttl} of the {rtype} records at {} \
                         (first at {}): using {ttl}",
                        self.at(loc),
                        record.ttl,
                        record.name,
                        self.place(first, loc)
                    );
                    record.ttl = ttl;
                }
            }
            MapEntry::Vacant(set) => {
                set.insert((record.ttl, loc));
            }
        }
        if rtype == RecordType::SOA {
            self.soa = Some((self.records.len(), loc));
        }
        self.seen.insert(key);
        self.records.push(record);
        Ok(())
    }

    /// The zone-wide checks, then the zone or every error found.
    fn finish(mut self) -> ZoneResult {
        match self.soa {
            None if !self.files.is_empty() && !self.soa_written => self.errors.push(ZoneError {
                file: self.files[0].clone(),
                line: 0,
                message: format!(
                    "no SOA record: a zone needs one, at its apex, like `@ IN SOA ns1.{0} \
                     hostmaster.{0} 1 1h 15m 1w 5m`",
                    self.apex
                ),
            }),
            Some((_, loc)) if !self.apex_ns_written => {
                self.error(
                    loc,
                    format!(
                        "the apex {0} has no NS records: add at least one, like `@ IN NS ns1.{0}`",
                        self.apex
                    ),
                );
            }
            _ => {}
        }
        let Some((soa, _)) = self.soa.filter(|_| self.errors.is_empty()) else {
            return Err(self.errors);
        };
        self.records[..=soa].rotate_right(1);
        let serial = match &self.records[0].data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        };
        Ok(Zone {
            origin: self.apex,
            serial,
            records: self.records,
            source: self.files.swap_remove(0),
        })
    }

    fn error(&mut self, loc: Loc, message: String) {
        self.errors.push(ZoneError {
            file: self.files[loc.file].clone(),
            line: loc.line,
            message,
        });
    }

    /// `file:line`, for log lines.
    fn at(&self, loc: Loc) -> String {
        format!("{}:{}", self.files[loc.file].display(), loc.line)
    }

    /// Where `loc` is, seen from `from`: `line N` in the same file, else `file:N`.
    fn place(&self, loc: Loc, from: Loc) -> String {
        if loc.file == from.file {
            format!("line {}", loc.line)
        } else {
            self.at(loc)
        }
    }
}

const CNAME_RULE: &str = "a name with a CNAME can have no other data (RFC 1034 section 3.6.2, \
                          RFC 2181 section 10.1); remove one of them";

/// The token as a plain word; a quoted string is not allowed where `what` belongs.
fn plain<'t>(token: &'t Token<'_>, what: &str) -> Result<&'t [u8], String> {
    match token {
        Token::Word(word) => Ok(word),
        Token::Quoted(_) => Err(format!(
            "a quoted string where the {what} belongs: remove the quotes"
        )),
    }
}

/// Whether `word` is a class mnemonic (RFC 1035 and RFC 3597's `CLASSnnn`).
fn is_class(word: &[u8]) -> bool {
    const CLASSES: [&[u8]; 8] = [
        b"IN", b"CH", b"CHAOS", b"HS", b"HESIOD", b"CS", b"NONE", b"ANY",
    ];
    CLASSES.iter().any(|c| word.eq_ignore_ascii_case(c))
        || (word.len() > 5
            && word[..5].eq_ignore_ascii_case(b"CLASS")
            && word[5..].iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests;
