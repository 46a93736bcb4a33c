//! RFC 1035 master-file reader: one zone file, and what it `$INCLUDE`s, to a validated
//! [`Zone`].
//!
//! The file is read as NSD and BIND read it. [`lex`](super::lex) splits it into entries (it
//! owns comments, parentheses and quoting); this module handles directives, owners, TTLs and
//! classes, [`rdata`](super::rdata) builds each record's data in wire form, and the zone
//! [`Builder`] files the records and applies the rules that need the whole zone. Errors never
//! stop the read: each bad entry is reported as `file:line: message` and the next entry is
//! read, so one run of `onebox check` shows every problem.
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
//! records collide): every owner inside the zone, and the builder's rules (one SOA at the apex,
//! apex NS, CNAME and DNAME exclusivity, TTLs within an RRset: see `build`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::parse_ttl;
use tracing::warn;

use super::build::{Builder, Loc, Problem};
use super::data::code;
use super::lex::{self, Entry, Lexer, Token};
use super::{ZoneError, ZoneResult, name, rdata, types};

/// How deep `$INCLUDE`s may nest.
pub(super) const MAX_INCLUDE_DEPTH: usize = 16;

/// The largest TTL; larger values are read as 0 (RFC 2181 §8).
const MAX_TTL: u32 = 0x7fff_ffff;

/// Reads the zone `origin` from the master file at `path`.
pub(super) fn parse_zone(path: &Path, origin: &Name) -> ZoneResult {
    let mut loader = Loader::new(origin, path);
    loader.file(path, None);
    loader.finish()
}

/// Reads the zone `origin` from `text`, as if it were the file `path` (`$INCLUDE`s are read
/// relative to its directory).
#[cfg(test)]
pub(crate) fn parse_text(path: &Path, origin: &Name, text: &[u8]) -> ZoneResult {
    let mut loader = Loader::new(origin, path);
    let file = loader.files.len();
    loader.files.push(path.to_owned());
    let origin = loader.builder.apex().to_vec();
    loader.read(file, text, origin);
    loader.finish()
}

/// The reading state of one file: it ends with the file, which is how an `$INCLUDE`'s origin
/// and owner stay inside it.
struct Frame {
    file: usize,
    /// The current origin, a wire name.
    origin: Vec<u8>,
    /// The owner of the last record, a wire name; empty before the first.
    owner: Vec<u8>,
}

/// The state of one zone load, across all its files.
struct Loader {
    builder: Builder,
    /// Every file read, the zone file first.
    files: Vec<PathBuf>,
    /// The canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    /// `$TTL`, or the SOA MINIMUM standing in for it.
    default_ttl: Option<u32>,
    /// The last TTL written on a record.
    last_ttl: Option<u32>,
    /// An SOA, and an NS at the apex, were written, even if with errors: the zone-wide checks
    /// then have nothing to add to the errors already reported.
    soa_written: bool,
    apex_ns_written: bool,
    /// The RDATA of the record being read (reused).
    rdata: Vec<u8>,
    errors: Vec<ZoneError>,
}

impl Loader {
    fn new(apex: &Name, path: &Path) -> Self {
        Self {
            builder: Builder::new(apex, Some(path.to_owned())),
            files: Vec::new(),
            stack: Vec::new(),
            default_ttl: None,
            last_ttl: None,
            soa_written: false,
            apex_ns_written: false,
            rdata: Vec::with_capacity(512),
            errors: Vec::new(),
        }
    }

    /// Reads one file into the zone, starting with origin `origin` (the zone's apex for the
    /// zone file); `from` is the `$INCLUDE` naming it (errors about the file itself go there).
    fn file(&mut self, path: &Path, from: Option<(Loc, Vec<u8>)>) {
        let (canonical, bytes) = match self.open(path, from.is_some()) {
            Ok(opened) => opened,
            Err(message) => {
                match from {
                    Some((loc, _)) => self.error(loc, message),
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
        let origin = match from {
            Some((_, origin)) => origin,
            None => self.builder.apex().to_vec(),
        };
        self.read(file, &bytes, origin);
        self.stack.pop();
    }

    /// Reads the entries of file number `file`, whose contents are `bytes`.
    fn read(&mut self, file: usize, bytes: &[u8], origin: Vec<u8>) {
        let mut frame = Frame {
            file,
            origin,
            owner: Vec::new(),
        };
        for entry in Lexer::new(bytes) {
            match entry {
                Ok(entry) => {
                    let loc = loc(file, entry.line);
                    if let Err(message) = self.entry(&mut frame, loc, &entry) {
                        self.error(loc, message);
                    }
                }
                Err(e) => self.error(loc(file, e.line), e.message),
            }
        }
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
                let mut origin = Vec::with_capacity(name::MAX_NAME);
                name::parse(plain(arg, "origin")?, &frame.origin, &mut origin)?;
                frame.origin = origin;
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
                    Some(origin) => {
                        let mut parsed = Vec::with_capacity(name::MAX_NAME);
                        name::parse(plain(origin, "origin")?, &frame.origin, &mut parsed)?;
                        parsed
                    }
                    None => frame.origin.clone(),
                };
                self.file(&path, Some((loc, origin)));
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
        if entry.blank_owner {
            if frame.owner.is_empty() {
                return Err(
                    "this line starts with a blank, which means \"same owner as the record \
                     before\", but no record before it in this file names one: write the owner \
                     name (or @) at the start of the line"
                        .into(),
                );
            }
        } else {
            let (first, rest) = tokens.split_first().ok_or("empty entry")?;
            tokens = rest;
            let raw = plain(first, "owner name")?;
            let mut owner = std::mem::take(&mut frame.owner);
            owner.clear();
            let parsed = name::parse(raw, &frame.origin, &mut owner);
            frame.owner = owner;
            parsed?;
        }

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
                break types::code_of(word).ok_or_else(|| {
                    format!(
                        "unknown record type {:?}: write a type onebox knows, or TYPEnnn with the \
                         RFC 3597 generic form \\# <length> <hex>",
                        String::from_utf8_lossy(word)
                    )
                })?;
            }
        };

        self.soa_written |= rtype == code::SOA;
        self.apex_ns_written |=
            rtype == code::NS && name::eq_ignore_case(&frame.owner, self.builder.apex());
        self.rdata.clear();
        rdata::build(rtype, tokens, &frame.origin, &mut self.rdata)?;
        let ttl = match ttl {
            Some(ttl) => {
                self.last_ttl = Some(ttl);
                ttl
            }
            None => self.implicit_ttl(rtype, loc)?,
        };
        self.builder.add(&frame.owner, rtype, ttl, &self.rdata, loc)
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

    /// The TTL of a record written without one (see the module documentation); `self.rdata`
    /// holds the record's data.
    fn implicit_ttl(&mut self, rtype: u16, loc: Loc) -> Result<u32, String> {
        if let Some(ttl) = self.default_ttl.or(self.last_ttl) {
            return Ok(ttl);
        }
        if rtype == code::SOA && self.rdata.len() >= 4 {
            let minimum = &self.rdata[self.rdata.len() - 4..];
            let minimum = u32::from_be_bytes([minimum[0], minimum[1], minimum[2], minimum[3]]);
            let ttl = if minimum > MAX_TTL { 0 } else { minimum };
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

    /// The zone-wide checks, then the zone or every error found.
    fn finish(mut self) -> ZoneResult {
        if self.files.is_empty() {
            return Err(self.errors); // The zone file itself could not be read.
        }
        self.builder.files = std::mem::take(&mut self.files);
        self.builder.soa_written = self.soa_written;
        self.builder.apex_ns_written = self.apex_ns_written;
        let files = self.builder.files.clone();
        let source = files.first().cloned().unwrap_or_default();
        let to_error = |problem: Problem| ZoneError {
            file: files
                .get(problem.loc.file as usize)
                .cloned()
                .unwrap_or_else(|| source.clone()),
            line: problem.loc.line as usize,
            message: problem.message,
        };
        match self.builder.finish() {
            Ok((zone, warnings)) => {
                for warning in warnings {
                    warn!("{}", to_error(warning));
                }
                if self.errors.is_empty() {
                    return Ok(zone);
                }
            }
            // Errors of single entries come in reading order, then those about the whole zone.
            Err(problems) => self.errors.extend(problems.into_iter().map(to_error)),
        }
        Err(self.errors)
    }

    fn error(&mut self, loc: Loc, message: String) {
        self.errors.push(ZoneError {
            file: self.files[loc.file as usize].clone(),
            line: loc.line as usize,
            message,
        });
    }

    /// `file:line`, for log lines.
    fn at(&self, loc: Loc) -> String {
        format!("{}:{}", self.files[loc.file as usize].display(), loc.line)
    }
}

fn loc(file: usize, line: usize) -> Loc {
    Loc {
        file: file as u32,
        line: line as u32,
    }
}

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
