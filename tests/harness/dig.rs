//! `dig`, the client people use: run it against a server and parse what it prints.

use std::net::SocketAddr;
use std::process::Command;

/// One record line of dig's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigRecord {
    /// Owner name as printed.
    pub name: String,
    /// TTL.
    pub ttl: u32,
    /// Class (`IN`).
    pub class: String,
    /// Type (`A`, `CNAME`, ...).
    pub rtype: String,
    /// The rest of the line.
    pub rdata: String,
}

/// What dig printed, taken apart.
#[derive(Debug, Default)]
pub struct DigOutput {
    /// dig's exit status was 0.
    pub success: bool,
    /// The whole of stdout and stderr.
    pub text: String,
    /// `status:` from the header line (`NOERROR`, `NXDOMAIN`, ...), if any.
    pub status: Option<String>,
    /// The header flags (`qr`, `aa`, ...).
    pub flags: Vec<String>,
    /// Records of the answer section (or every record of a zone transfer).
    pub answer: Vec<DigRecord>,
    /// Records of the authority section.
    pub authority: Vec<DigRecord>,
    /// Records of the additional section.
    pub additional: Vec<DigRecord>,
}

/// Runs `dig @IP -p PORT ARGS...` and parses its output.
pub fn dig(server: SocketAddr, args: &[&str]) -> DigOutput {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(args)
        .output()
        .expect("run dig (apt-get install bind9-dnsutils)");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    parse(output.status.success(), text)
}

/// Runs exactly `dig NAME @IP -p PORT`, the command the README shows.
pub fn dig_plain(server: SocketAddr, name: &str) -> DigOutput {
    let output = Command::new("dig")
        .arg(name)
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .output()
        .expect("run dig (apt-get install bind9-dnsutils)");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    parse(output.status.success(), text)
}

/// Parses dig's default output. Records before any section header (as in a zone transfer) go to
/// `answer`.
pub fn parse(success: bool, text: String) -> DigOutput {
    let mut out = DigOutput {
        success,
        ..DigOutput::default()
    };
    #[derive(PartialEq)]
    enum Section {
        Answer,
        Authority,
        Additional,
        Other,
    }
    let mut section = Section::Answer;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix(";; ->>HEADER<<-") {
            if let Some(status) = rest.split("status: ").nth(1) {
                out.status = Some(
                    status
                        .split(',')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                );
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(";; flags:") {
            let flags = rest.split(';').next().unwrap_or_default();
            out.flags = flags.split_whitespace().map(str::to_owned).collect();
            continue;
        }
        if line.starts_with(";; ") && line.ends_with("SECTION:") {
            section = match line {
                ";; ANSWER SECTION:" => Section::Answer,
                ";; AUTHORITY SECTION:" => Section::Authority,
                ";; ADDITIONAL SECTION:" => Section::Additional,
                _ => Section::Other,
            };
            continue;
        }
        if line.is_empty() || line.starts_with(';') || section == Section::Other {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(name), Some(ttl), Some(class), Some(rtype)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(ttl) = ttl.parse() else { continue };
        let record = DigRecord {
            name: name.to_owned(),
            ttl,
            class: class.to_owned(),
            rtype: rtype.to_owned(),
            rdata: fields.collect::<Vec<_>>().join(" "),
        };
        match section {
            Section::Answer => out.answer.push(record),
            Section::Authority => out.authority.push(record),
            Section::Additional => out.additional.push(record),
            Section::Other => {}
        }
    }
    out.text = text;
    out
}

impl DigOutput {
    /// Whether the header flags include `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The answer records as `name ttl class type rdata` lines.
    pub fn answer_lines(&self) -> Vec<String> {
        self.answer
            .iter()
            .map(|r| format!("{} {} {} {} {}", r.name, r.ttl, r.class, r.rtype, r.rdata))
            .collect()
    }
}
