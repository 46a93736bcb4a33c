//! The secondary zones (`[[dns.secondary]]`): each is transferred, not expired, and not behind
//! its primary's serial for longer than its refresh interval — the state the running server
//! records in `state_dir` (`dns::secondary::SecondaryStatus`), held against the serial each
//! primary gives now.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Report;
use crate::config::Config;
use crate::dns::secondary::{self, SecondaryStatus};
use crate::dns::serial::serial_gt;

/// One line per secondary zone.
pub(super) async fn check(config: &Config, report: &mut Report) {
    for zone in &config.dns.secondary {
        let Some(origin) = secondary::origin_of(zone) else {
            continue;
        };
        let status = SecondaryStatus::read(&config.state_dir, &origin);
        // The newest serial a primary gives now.
        let mut primary = None;
        let mut unreachable = Vec::new();
        for &address in &zone.primaries {
            match secondary::primary_serial(address, &origin).await {
                Ok(serial) if primary.is_none_or(|(_, s)| serial_gt(serial, s)) => {
                    primary = Some((address, serial));
                }
                Ok(_) => {}
                Err(error) => unreachable.push(format!("{address}: {error}")),
            }
        }
        let fix_transfer = format!(
            "onebox's log says why (`secondary zone refresh failed`); check that the primaries \
             ({}) allow transfers to this box{}",
            zone.primaries
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            zone.tsig_key
                .as_ref()
                .map_or_else(String::new, |key| format!(" signed with the key {key}"))
        );
        let Some(status) = status else {
            report.fail(
                format!("secondary zone {origin}: not transferred yet"),
                format!("is `onebox serve` running with this configuration? {fix_transfer}"),
            );
            continue;
        };
        let Some(serial) = status.serial else {
            report.fail(
                format!(
                    "secondary zone {origin}: not transferred yet{}",
                    status
                        .error
                        .as_ref()
                        .map_or_else(String::new, |e| format!(": {e}"))
                ),
                fix_transfer,
            );
            continue;
        };
        if status.expired {
            report.fail(
                format!(
                    "secondary zone {origin} serial {serial}: expired, answered SERVFAIL (no primary answered within the SOA expire time)"
                ),
                fix_transfer,
            );
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let refresh = u64::from(status.refresh.unwrap_or(0));
        let newest = primary
            .map(|(_, s)| s)
            .or(status.primary_serial)
            .filter(|&s| serial_gt(s, serial));
        match newest {
            None => report.ok(format!(
                "secondary zone {origin} serial {serial}{}",
                primary.map_or_else(
                    || format!(" (primaries unreachable now: {})", unreachable.join("; ")),
                    |(address, s)| format!(", as its primary {address} ({s})")
                )
            )),
            Some(newer) => {
                // Behind since the server noticed, or at worst since it last heard a primary.
                let since = status.behind_since.or(status.last_contact).unwrap_or(now);
                let behind = now.saturating_sub(since);
                if behind > refresh {
                    report.fail(
                        format!(
                            "secondary zone {origin} serial {serial}: behind its primary's serial {newer} for {behind} s, longer than its refresh interval ({refresh} s){}",
                            status
                                .error
                                .as_ref()
                                .map_or_else(String::new, |e| format!(": {e}"))
                        ),
                        fix_transfer,
                    );
                } else {
                    report.ok(format!(
                        "secondary zone {origin} serial {serial}: its primary has {newer}, transferring (behind for {behind} s, refresh {refresh} s)"
                    ));
                }
            }
        }
    }
}
