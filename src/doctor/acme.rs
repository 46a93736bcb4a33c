//! The ACME certificate, as `onebox cert status` reads it: a warning when it will expire
//! before its next renewal (or retry) could succeed, or when renewals are failing.

use std::time::{Duration, SystemTime};

use super::{Outcome, Report};
use crate::acme::{self, CertStatus};
use crate::config::Config;

/// A renewal attempt needs a little time: a certificate must outlive the next attempt by this.
const MARGIN: Duration = Duration::from_secs(3600);

/// Judges every certificate onebox obtains over ACME.
pub(super) async fn check(config: &Config, report: &mut Report) {
    if !config.web.acme.enabled {
        return;
    }
    let statuses = match acme::status(config).await {
        Ok(statuses) => statuses,
        Err(message) => {
            report.fail(
                format!("acme: {message}"),
                "fix [web.acme] (onebox check says the same)",
            );
            return;
        }
    };
    for status in statuses.iter().filter(|s| s.is_acme()) {
        let (outcome, what, fix) = judge(status, SystemTime::now());
        report.push(outcome, what, fix);
    }
}

/// One finding for `status` at `now`.
fn judge(status: &CertStatus, now: SystemTime) -> (Outcome, String, Option<String>) {
    let names = status.names.join(" ");
    let failing = status.last_error.as_ref().map(|(_, message, failures)| {
        format!("{failures} failed attempt(s) in a row, the last: {message}")
    });
    let see = "see `onebox cert status` and onebox's log (acme: ...); a certificate from \
               [web.tls] certs serves meanwhile if you add one"
        .to_owned();
    let Some(info) = &status.info else {
        let what = match &failing {
            Some(failing) => format!("acme {names}: no certificate yet; {failing}"),
            None => format!("acme {names}: no certificate yet (onebox orders one when it runs)"),
        };
        return (Outcome::Warn, what, Some(see));
    };
    let days = |at: SystemTime| at.duration_since(now).map_or(0, |d| d.as_secs() / 86_400);
    if info.not_after <= now {
        return (
            Outcome::Fail,
            format!(
                "acme {names}: the certificate expired at {}",
                rfc3339(info.not_after)
            ),
            Some(see),
        );
    }
    let next = status
        .next_attempt
        .filter(|_| failing.is_some())
        .or(status.next_renewal.as_ref().map(|(at, _)| *at));
    if let Some(next) = next
        && info.not_after <= next + MARGIN
    {
        return (
            Outcome::Warn,
            format!(
                "acme {names}: the certificate expires {} ({} days), before its next renewal \
                 attempt at {} could succeed",
                rfc3339(info.not_after),
                days(info.not_after),
                rfc3339(next)
            ),
            Some(format!(
                "{see}; a shorter web.acme.renew_before, or restarting onebox, tries sooner"
            )),
        );
    }
    if let Some(failing) = failing {
        return (
            Outcome::Warn,
            format!(
                "acme {names}: renewal failing ({failing}); the certificate expires in {} days",
                days(info.not_after)
            ),
            Some(see),
        );
    }
    let renewal = status
        .next_renewal
        .as_ref()
        .map_or_else(String::new, |(at, _)| {
            format!(", renewal at {}", rfc3339(*at))
        });
    (
        Outcome::Ok,
        format!(
            "acme {names}: valid until {} ({} days){renewal}",
            rfc3339(info.not_after),
            days(info.not_after)
        ),
        None,
    )
}

fn rfc3339(time: SystemTime) -> String {
    acme::rfc3339(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::CertInfo;

    const DAY: Duration = Duration::from_secs(86_400);

    fn status(not_after: Option<SystemTime>, renewal: SystemTime, error: bool) -> CertStatus {
        let now = SystemTime::now();
        CertStatus {
            source: "acme https://ca.test/dir (dns-01)".to_owned(),
            names: vec!["foobar.com".to_owned()],
            info: not_after.map(|not_after| CertInfo {
                names: vec!["foobar.com".to_owned()],
                issuer: "CN=Test".to_owned(),
                not_before: now - DAY,
                not_after,
                ari_id: None,
            }),
            next_renewal: Some((renewal, "web.acme.renew_before (30days)".to_owned())),
            next_attempt: error.then_some(now + 2 * DAY),
            last_error: error.then(|| (now, "the CA refused: rateLimited".to_owned(), 3)),
        }
    }

    #[test]
    fn warns_when_the_certificate_would_expire_before_the_next_attempt() {
        let now = SystemTime::now();
        let (outcome, what, _) = judge(&status(Some(now + 60 * DAY), now + 30 * DAY, false), now);
        assert_eq!(outcome, Outcome::Ok, "{what}");
        // Failing, and the back-off's next attempt comes after expiry.
        let (outcome, what, _) = judge(&status(Some(now + DAY), now - DAY, true), now);
        assert_eq!(outcome, Outcome::Warn);
        assert!(what.contains("before its next renewal attempt"), "{what}");
        // Failing, with time to spare: a warning naming the CA's answer.
        let (outcome, what, _) = judge(&status(Some(now + 20 * DAY), now - DAY, true), now);
        assert_eq!(outcome, Outcome::Warn);
        assert!(what.contains("rateLimited"), "{what}");
        let (outcome, _, _) = judge(&status(Some(now - DAY), now - DAY, true), now);
        assert_eq!(outcome, Outcome::Fail);
        let (outcome, what, _) = judge(&status(None, now, true), now);
        assert_eq!(outcome, Outcome::Warn);
        assert!(what.contains("no certificate yet"), "{what}");
    }
}
