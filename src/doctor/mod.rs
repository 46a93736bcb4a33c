//! `onebox doctor`: checks, from the box itself, that what the configuration promises is what
//! a visitor gets — and says what to fix when it is not.
//!
//! In order: every zone loads; every secondary zone is transferred, not expired and not behind
//! its primary for longer than its refresh interval; every served name answers from onebox's own DNS with the
//! zone's addresses; the system resolver gives the same addresses (else browsers on this box
//! go elsewhere); those addresses are this box's; every site name is fetched over HTTPS
//! through `web.https_listen` with its certificate verified (development CA, configured
//! chains, or the system's roots) and not about to expire; `/readyz` says ready; an ACME
//! certificate is not failing to renew nor expiring before its next renewal could succeed; the
//! database answers with its schema up to date; scheduled backups (`backup.schedule`) can be
//! written to `backup.dir`, the last one succeeded and is not older than twice the schedule.
//!
//! Each check prints one line (`ok`, `warn` or `FAIL`), failures and warnings with a `fix:`
//! line. The exit status is non-zero when anything failed.

mod acme;
mod probe;
mod secondary;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::{Name, RData, RecordType};

use self::probe::{client_config, fetch, local_addresses, query, reachable};
use crate::config::Config;
use crate::db::{self, Db};
use crate::dns::zone;
use crate::ops::chain;

/// How long one network check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A certificate expiring within this is a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// The system's CA bundle (Debian's ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// As it should be.
    Ok,
    /// Works, but will not for long or not for everyone.
    Warn,
    /// Broken.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How it came out.
    pub outcome: Outcome,
    /// What was checked and what was seen.
    pub what: String,
    /// How to fix it (for warnings and failures).
    pub fix: Option<String>,
}

/// Every finding, in the order checked.
#[derive(Debug, Default)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    fn ok(&mut self, what: String) {
        self.push(Outcome::Ok, what, None);
    }

    fn warn(&mut self, what: String, fix: impl Into<String>) {
        self.push(Outcome::Warn, what, Some(fix.into()));
    }

    fn fail(&mut self, what: String, fix: impl Into<String>) {
        self.push(Outcome::Fail, what, Some(fix.into()));
    }

    fn push(&mut self, outcome: Outcome, what: String, fix: Option<String>) {
        self.findings.push(Finding { outcome, what, fix });
    }

    /// How many findings came out as `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome == outcome)
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let tag = match finding.outcome {
                Outcome::Ok => "ok  ",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
            };
            writeln!(f, "{tag}  {}", finding.what)?;
            if let Some(fix) = &finding.fix {
                writeln!(f, "      fix: {fix}")?;
            }
        }
        let (failed, warned) = (self.count(Outcome::Fail), self.count(Outcome::Warn));
        if failed == 0 && warned == 0 {
            writeln!(f, "all {} checks passed", self.findings.len())
        } else {
            writeln!(
                f,
                "{failed} failed, {warned} warning(s), {} checks",
                self.findings.len()
            )
        }
    }
}

/// Runs every check against the running onebox described by `config`.
pub async fn run(config: &Config) -> Report {
    let mut report = Report::default();
    let names = zones(config, &mut report);
    secondary::check(config, &mut report).await;
    let local = local_addresses();
    for (name, (zone, expected)) in &names {
        dns_direct(config, name, expected, &mut report).await;
        resolver(name, zone, expected, &local, &mut report).await;
    }
    https(config, &mut report).await;
    acme::check(config, &mut report).await;
    if config.app.enabled {
        database(config, &mut report).await;
    }
    backups(config, &mut report);
    report
}

/// Scheduled backups (`backup.schedule`): `backup.dir` writable, the last one good, and
/// not older than twice the schedule.
fn backups(config: &Config, report: &mut Report) {
    use crate::backup::schedule::{Status, check_dir};
    let Some(interval) = config.backup.interval() else {
        return;
    };
    let dir = &config.backup.dir;
    if let Err(error) = check_dir(dir) {
        report.fail(
            format!("backups: backup.dir {}: {}", dir.display(), chain(&error)),
            "make backup.dir a directory the account onebox serves as may write, or change it",
        );
    }
    let status = Status::read(&config.state_dir);
    let now = chrono::Utc::now().timestamp();
    let ago = |at: i64| humantime_ago(now - at);
    match (&status.last_success, &status.last_failure) {
        (_, Some((failed, why)))
            if status.failures > 0
                && status
                    .last_success
                    .as_ref()
                    .is_none_or(|(ok, _)| ok <= failed) =>
        {
            report.fail(
                format!(
                    "backups: the last scheduled backup failed {} ({} failure(s) in a row): {why}",
                    ago(*failed),
                    status.failures
                ),
                "see onebox's log; `onebox backup` takes one by hand",
            );
        }
        (Some((at, path)), _) => {
            let age = Duration::from_secs(u64::try_from(now - at).unwrap_or(0));
            if age > interval * 2 {
                report.fail(
                    format!(
                        "backups: the last good backup is {} old, more than twice backup.schedule ({})",
                        humantime_ago(now - at).trim_end_matches(" ago"),
                        config.backup.schedule
                    ),
                    "is `onebox serve` running with this configuration? See its log",
                );
            } else {
                report.ok(format!(
                    "backups: last good backup {} ({})",
                    ago(*at),
                    path.display()
                ));
            }
        }
        _ => report.warn(
            format!(
                "backups: none taken yet (backup.schedule = {})",
                config.backup.schedule
            ),
            "`onebox serve` takes the first within a minute of starting",
        ),
    }
}

/// `3h 5m ago`, to the minute.
fn humantime_ago(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    match (minutes / 60, minutes % 60) {
        (0, 0) => "just now".to_owned(),
        (0, m) => format!("{m}m ago"),
        (h, m) => format!("{h}h {m}m ago"),
    }
}

/// What the zones say each name resolves to: name → (its zone, the addresses it leads to,
/// CNAMEs followed within the zone).
type Served = BTreeMap<Name, (Name, BTreeSet<IpAddr>)>;

fn zones(config: &Config, report: &mut Report) -> Served {
    let mut served = Served::new();
    let dir = &config.dns.zones_dir;
    let loaded = match zone::load_dir(dir) {
        Ok(loaded) => loaded,
        Err(error) => {
            report.fail(format!("zones: {error}"), "check dns.zones_dir");
            return served;
        }
    };
    if loaded.is_empty() && config.dns.secondary.is_empty() {
        report.fail(
            format!("zones: no *.zone file in {}", dir.display()),
            "add a zone file, e.g. zones/foobar.com.zone (key dns.zones_dir)",
        );
    }
    for (path, result) in loaded {
        match result {
            Ok(zone) => {
                report.ok(format!(
                    "zone {} serial {} ({} records)",
                    zone.origin(),
                    zone.serial(),
                    zone.len()
                ));
                let origin = zone.origin().clone();
                served.extend(
                    addresses_of(&zone)
                        .into_iter()
                        .map(|(name, addresses)| (name, (origin.clone(), addresses))),
                );
            }
            Err(errors) => {
                for error in errors {
                    report.fail(
                        format!("zone {}: {error}", path.display()),
                        "fix the zone file, check it with `onebox check`, then `kill -HUP` onebox",
                    );
                }
            }
        }
    }
    served
}

/// Every owner with an A, AAAA or CNAME record (no wildcards) and the addresses it leads to.
fn addresses_of(zone: &zone::Zone) -> BTreeMap<Name, BTreeSet<IpAddr>> {
    let mut direct: BTreeMap<Name, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut aliases: BTreeMap<Name, Name> = BTreeMap::new();
    let wanted = [RecordType::A, RecordType::AAAA, RecordType::CNAME].map(u16::from);
    let records = zone
        .records()
        .filter(|r| wanted.contains(&r.rtype))
        .filter_map(|r| r.to_record());
    for record in records {
        let name = record.name.to_lowercase();
        if name.is_wildcard() {
            continue;
        }
        match &record.data {
            RData::A(a) => {
                direct.entry(name).or_default().insert(IpAddr::V4(a.0));
            }
            RData::AAAA(aaaa) => {
                direct.entry(name).or_default().insert(IpAddr::V6(aaaa.0));
            }
            RData::CNAME(target) => {
                aliases.insert(name, target.0.to_lowercase());
            }
            _ => {}
        }
    }
    let mut served = direct.clone();
    for (alias, mut target) in aliases.clone() {
        for _ in 0..16 {
            if let Some(next) = aliases.get(&target) {
                target = next.clone();
            } else {
                break;
            }
        }
        served.insert(alias, direct.get(&target).cloned().unwrap_or_default());
    }
    served
}

async fn dns_direct(
    config: &Config,
    name: &Name,
    expected: &BTreeSet<IpAddr>,
    report: &mut Report,
) {
    for &listen in &config.dns.listen {
        if listen.port() == 0 {
            report.warn(
                format!("dns {name}: dns.listen {listen} picks a free port at start; not checked"),
                "give dns.listen a fixed port",
            );
            continue;
        }
        let server = reachable(listen);
        let mut got = BTreeSet::new();
        let mut failure = None;
        for rtype in [RecordType::A, RecordType::AAAA] {
            match query(server, name, rtype).await {
                Ok(addresses) => got.extend(addresses),
                Err(error) => failure = Some(error),
            }
        }
        match failure {
            Some(error) => report.fail(
                format!("dns {name} at {server}: {error}"),
                "is `onebox serve` running with this configuration? (key dns.listen)",
            ),
            None if &got == expected => {
                report.ok(format!("dns {name} → {} (onebox at {server})", list(&got)))
            }
            None => report.fail(
                format!(
                    "dns {name} at {server}: answers {}, the zone file says {}",
                    list(&got),
                    list(expected)
                ),
                "reload the zones: kill -HUP $(pidof onebox)",
            ),
        }
    }
}

async fn resolver(
    name: &Name,
    zone: &Name,
    expected: &BTreeSet<IpAddr>,
    local: &BTreeSet<IpAddr>,
    report: &mut Report,
) {
    let host = name.to_string();
    let host = host.trim_end_matches('.').to_owned();
    let looked_up =
        tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), 443))).await;
    let got: BTreeSet<IpAddr> = match looked_up {
        Ok(Ok(addresses)) => addresses.map(|a| a.ip()).collect(),
        Ok(Err(error)) => {
            report.fail(
                format!("resolver {host}: the system resolver cannot resolve it: {error}"),
                resolver_fix(zone),
            );
            return;
        }
        Err(_) => {
            report.fail(
                format!("resolver {host}: the system resolver did not answer within {TIMEOUT:?}"),
                resolver_fix(zone),
            );
            return;
        }
    };
    if &got != expected {
        report.fail(
            format!(
                "resolver {host}: the system resolver says {}, the zone says {}",
                list(&got),
                list(expected)
            ),
            resolver_fix(zone),
        );
        return;
    }
    report.ok(format!("resolver {host} → {}", list(&got)));
    let foreign: Vec<_> = expected.iter().filter(|a| !local.contains(a)).collect();
    if !foreign.is_empty() && !local.is_empty() {
        report.warn(
            format!(
                "address {host} → {}: not an address of this box",
                foreign.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            "fine behind NAT or a load balancer; otherwise put this box's public address in the zone file",
        );
    }
}

fn resolver_fix(zone: &Name) -> String {
    format!(
        "send queries for {zone} to this box: delegate it (NS and glue at the registrar), or \
         add a stub zone to a local resolver (unbound: stub-zone, stub-addr: 127.0.0.1@<dns \
         port>) named in /etc/resolv.conf"
    )
}

async fn https(config: &Config, report: &mut Report) {
    let web = &config.web;
    let mut names = vec![web.canonical_host.clone()];
    names.extend(web.aliases.iter().cloned());
    let tls = match client_config(config) {
        Ok(tls) => Arc::new(tls),
        Err(error) => {
            report.fail(format!("https: {error}"), "check [web.tls] certs");
            return;
        }
    };
    for &listen in &web.https_listen {
        if listen.port() == 0 {
            report.warn(
                format!("https: web.https_listen {listen} picks a free port at start; not checked"),
                "give web.https_listen a fixed port",
            );
            continue;
        }
        let server = reachable(listen);
        for (index, name) in names.iter().enumerate() {
            let want = if index == 0 { 200 } else { 301 };
            let path = if index == 0 { "/readyz" } else { "/" };
            match fetch(server, name, path, tls.clone()).await {
                Ok(fetched) => {
                    judge_certificate(name, fetched.not_after, report);
                    // `/readyz`'s lines after the first: the dependencies the boxes share
                    // (the database), never part of readiness, but worth a warning.
                    let down: Vec<&str> = fetched
                        .body
                        .lines()
                        .skip(1)
                        .filter(|line| !line.ends_with(": up"))
                        .collect();
                    if fetched.status == want && index == 0 && !down.is_empty() {
                        report.warn(
                            format!(
                                "https://{name}/readyz → 200 (this box stays in a balancer's \
                                 rotation), but {}",
                                down.join("; ")
                            ),
                            "dynamic pages answer 503 until the database is back; see the \
                             database check below",
                        );
                    } else if fetched.status == want {
                        report.ok(format!(
                            "https://{name}{path} → {} (at {server})",
                            fetched.status
                        ));
                    } else if index == 0 && fetched.status == 503 {
                        let first = fetched.body.lines().next().unwrap_or_default();
                        let fix = if first.contains("draining") {
                            "onebox is stopping (SIGTERM, web.drain_delay); start it again"
                        } else {
                            "see the log of onebox for the check that is not ready"
                        };
                        report.fail(format!("https://{name}/readyz → 503: {first}"), fix);
                    } else {
                        report.fail(
                            format!(
                                "https://{name}{path} → {} (expected {want})",
                                fetched.status
                            ),
                            "check web.canonical_host and web.aliases",
                        );
                    }
                }
                Err(error) => report.fail(
                    format!("https://{name}/ at {server}: {error}"),
                    "is `onebox serve` running? Is the certificate valid for this name \
                     ([web.tls] certs, or the development CA in state_dir/dev-ca)?",
                ),
            }
        }
    }
}

fn judge_certificate(name: &str, not_after: Option<SystemTime>, report: &mut Report) {
    let Some(not_after) = not_after else {
        report.warn(
            format!("certificate for {name}: no readable expiry date"),
            "check the certificate",
        );
        return;
    };
    let left = not_after
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let days = left.as_secs() / 86_400;
    if left.is_zero() {
        report.fail(
            format!("certificate for {name}: expired"),
            "renew it and reload (SIGHUP)",
        );
    } else if left < EXPIRY_WARNING {
        report.warn(
            format!("certificate for {name}: expires in {days} day(s)"),
            "renew it and reload (SIGHUP)",
        );
    } else {
        report.ok(format!(
            "certificate for {name}: valid for {days} more days"
        ));
    }
}

async fn database(config: &Config, report: &mut Report) {
    let url = db::redact(&config.database_url());
    let database = match Db::connect(config).await {
        Ok(database) => database,
        Err(error) => {
            report.fail(format!("database: {}", chain(&error)), "fix database.url");
            return;
        }
    };
    if let Err(error) = database.ping().await {
        // The server's own answer ("connection refused"), without repeating the address.
        let why = match &error {
            db::DbError::Unreachable { source, .. } => chain(source).to_string(),
            other => chain(other).to_string(),
        };
        report.fail(
            format!("database {url}: unreachable: {why}"),
            "start the database server, or fix database.url",
        );
        return;
    }
    match database.migrations().await {
        Ok(migrations) => {
            let pending = migrations.iter().filter(|m| !m.applied).count();
            let newer: Vec<&str> = migrations
                .iter()
                .filter(|m| m.newer)
                .map(|m| m.name.as_str())
                .collect();
            if !newer.is_empty() {
                report.warn(
                    format!(
                        "database {url}: reachable; migrated by a newer onebox ({})",
                        newer.join(", ")
                    ),
                    "upgrade this onebox (served meanwhile: a migration keeps what the release before it uses)",
                );
            } else if pending == 0 {
                report.ok(format!("database {url}: reachable, schema up to date"));
            } else {
                report.fail(
                    format!("database {url}: {pending} migration(s) pending"),
                    "run `onebox migrate up`",
                );
            }
        }
        Err(error) => report.fail(
            format!("database {url}: {}", chain(&error)),
            "check the database's permissions",
        ),
    }
}

fn list(addresses: &BTreeSet<IpAddr>) -> String {
    if addresses.is_empty() {
        return "nothing".to_owned();
    }
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
