//! `onebox check`: the builders `serve` runs, with nothing bound and nothing written, so that
//! check passes exactly when serve would start with everything in place.
//!
//! In `serve`'s order: the log filter; the account to serve as (`user`, `group`: it exists,
//! and started as root the builders below run with its effective IDs, as serve's do); every
//! zone (one line each: name, serial, records; or
//! its errors as `file:line: message`; a serial that went backwards since the version last
//! served from this `state_dir` is an error, changed content under the same serial a warning;
//! the DNSSEC keys of the signed zones); every secondary zone (`[[dns.secondary]]`: the copy
//! kept in `state_dir`, its serial and records, or "not transferred yet"; a zone file of the
//! same name is not read); the listen addresses (none listed twice or
//! overlapping); the database URL (as the driver parses it, without connecting); the page
//! templates; the web site (web root, header values, names and certificates, loaded and
//! matched as for serving); ACME (names, challenge, the zones and listeners it needs, roots). Every problem found is printed, not just the first; exit status 1
//! if there was any.

use std::io::Write;
use std::process::ExitCode;

use super::{Cli, load_config, serve};
use crate::{acme, app, db, dns, ops, web};

pub(super) fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    // Warnings (a TTL that differs within an RRset, ...) go to stderr, as serve would log them.
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let mut problems: Vec<String> = Vec::new();
    let mut problem = |error: &(dyn std::error::Error + 'static)| {
        problems.push(ops::chain(error).to_string());
    };
    let mut stdout = std::io::stdout().lock();
    // Who serve would serve as; started as root for another user, the builders run with that
    // user's effective IDs, as serve's do.
    let plan = match ops::privileges::plan(&config.user, &config.group) {
        Ok(plan) => Some(plan),
        Err(error) => {
            problem(&error);
            None
        }
    };
    if let Some(Err(error)) = plan.as_ref().map(|plan| plan.assume()) {
        problem(&error);
    }
    let mut loaded = Vec::new();
    match dns::zone::load_dir(&config.dns.zones_dir) {
        Err(error) => problem(&error),
        Ok(zones) if zones.is_empty() && config.dns.secondary.is_empty() => {
            problem(&std::io::Error::other(format!(
                "{}: no *.zone files: nothing to serve (key dns.zones_dir)",
                config.dns.zones_dir.display()
            )))
        }
        Ok(zones) => {
            // The serial rules, against the versions the server last served from this
            // state_dir.
            let served = dns::serial::ServedVersions::read(&config.state_dir);
            let signed = dns::dnssec::zones(&config.dns.dnssec).unwrap_or_default();
            let secondaries: Vec<_> = config
                .dns
                .secondary
                .iter()
                .filter_map(dns::secondary::origin_of)
                .collect();
            for (path, result) in zones {
                if dns::zone::origin_of(&path).is_ok_and(|origin| secondaries.contains(&origin)) {
                    eprintln!(
                        "{}: not read: the zone is a [[dns.secondary]], transferred from its primaries",
                        path.display()
                    );
                    continue;
                }
                let zone = match result {
                    Ok(zone) => zone,
                    Err(errors) => {
                        errors.iter().for_each(|error| problem(error));
                        continue;
                    }
                };
                let signing = if signed.contains(zone.origin()) {
                    " signed"
                } else {
                    ""
                };
                writeln!(
                    stdout,
                    "{} serial {} records {}{signing}",
                    zone.origin(),
                    zone.serial(),
                    zone.len()
                )?;
                loaded.push(zone.origin().clone());
                let name = zone.origin().to_string();
                let Some(prior) = served.get(&name) else {
                    continue;
                };
                let change = dns::serial::judge(prior, zone.version());
                if let Some(text) = change.problem(&name, prior, zone.version()) {
                    let source = zone.source().unwrap_or(&config.dns.zones_dir);
                    let text = format!("{}: {text}", source.display());
                    if change == dns::serial::Change::Backwards {
                        problem(&std::io::Error::other(text));
                    } else {
                        eprintln!("{text}");
                    }
                }
            }
        }
    }
    // The secondary zones: the copy a restart would serve, kept in state_dir.
    for secondary in &config.dns.secondary {
        let Some(origin) = dns::secondary::origin_of(secondary) else {
            continue;
        };
        let primaries: Vec<String> = secondary.primaries.iter().map(|p| p.to_string()).collect();
        let primaries = primaries.join(", ");
        match dns::secondary::stored_copy(&config.state_dir, &origin) {
            Ok(Some((serial, records))) => writeln!(
                stdout,
                "{origin} serial {serial} records {records} secondary of {primaries}"
            )?,
            Ok(None) => writeln!(
                stdout,
                "{origin} secondary of {primaries}: not transferred yet"
            )?,
            Err(error) => {
                writeln!(
                    stdout,
                    "{origin} secondary of {primaries}: not transferred yet"
                )?;
                eprintln!("{error}");
            }
        }
    }
    for text in dns::dnssec::manage::check(&config.dns, &config.state_dir, &loaded) {
        problem(&std::io::Error::other(text.to_string()));
    }
    if let Err(error) = ops::listen::check(&serve::sockets(&config)) {
        problem(&error);
    }
    // With the application off, serve opens no database and compiles no template.
    if config.app.enabled {
        if let Err(error) = db::check_url(&config) {
            problem(&error);
        }
        if let Err(error) = app::check_templates(config.templates_dir().as_deref()) {
            problem(&error);
        }
    }
    if let Err(error) = web::check(&config) {
        problem(&error);
    }
    if config.web.acme.enabled
        && let Err(message) = acme::check(&config)
    {
        problem(&std::io::Error::other(message));
    }
    if let Some(Err(error)) = plan.as_ref().map(|plan| plan.resume_root()) {
        problem(&error);
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
