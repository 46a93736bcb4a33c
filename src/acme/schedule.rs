//! When to renew, and how long to wait after a failure. Pure: times in, times out.
//!
//! - Renewal: when the CA offers ACME Renewal Information (RFC 9773), a time drawn uniformly
//!   at random in its suggested window (§4.2), once per window; otherwise `renew_before` ahead
//!   of expiry, but never earlier than half-way through the certificate's life, so that a
//!   short-lived certificate (or a `renew_before` longer than the lifetime) is not renewed
//!   over and over.
//! - Failures: the CA's `Retry-After` when it gave one (rate limits, maintenance), at least a
//!   second and at most a week; otherwise one minute, doubling with each failure in a row up
//!   to six hours (as certmagic and the Let's Encrypt integration guide suggest: retry, but
//!   never hammer a CA whose failed-validation limit counts every attempt).

use std::time::{Duration, SystemTime};

/// The first wait after a failure without `Retry-After`.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);

/// The longest wait after failures without `Retry-After`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// `Retry-After` is honoured up to this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// When a certificate valid from `not_before` to `not_after` is renewed without ARI.
pub fn renewal_time(
    not_before: SystemTime,
    not_after: SystemTime,
    renew_before: Duration,
) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    not_after
        .checked_sub(renew_before.min(lifetime / 2))
        .unwrap_or(not_before)
}

/// A time drawn from the window `[start, end]` by `random` (uniform bits).
pub fn in_window(start: SystemTime, end: SystemTime, random: u64) -> SystemTime {
    let width = end.duration_since(start).unwrap_or_default();
    let offset = width.as_secs_f64() * (random as f64 / u64::MAX as f64);
    start + Duration::from_secs_f64(offset.max(0.0))
}

/// How long to wait after the `failures`-th failure in a row (1 for the first), given the
/// CA's `Retry-After`, if any.
pub fn backoff(failures: u32, retry_after: Option<SystemTime>, now: SystemTime) -> Duration {
    if let Some(at) = retry_after {
        let wait = at.duration_since(now).unwrap_or_default();
        return wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER);
    }
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Uniform random bits from the system's generator (ring, as everything else).
pub fn random() -> u64 {
    let mut bytes = [0u8; 8];
    // The system generator does not fail on Linux; a zero draw is still a valid time.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn renew_before_is_capped_at_half_the_lifetime() {
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let ninety = start + 90 * DAY;
        assert_eq!(renewal_time(start, ninety, 30 * DAY), start + 60 * DAY);
        // A six-day certificate with the default 30 days: renewed at half-life, not at once.
        assert_eq!(
            renewal_time(start, start + 6 * DAY, 30 * DAY),
            start + 3 * DAY
        );
        // A renew_before longer than the life: half-life too.
        assert_eq!(renewal_time(start, ninety, 100_000 * DAY), start + 45 * DAY);
    }

    #[test]
    fn a_window_draw_stays_inside_it() {
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let end = start + DAY;
        assert_eq!(in_window(start, end, 0), start);
        assert_eq!(in_window(start, end, u64::MAX), end);
        let middle = in_window(start, end, u64::MAX / 2);
        assert!(middle > start + DAY / 3 && middle < end - DAY / 3);
        assert_eq!(
            in_window(end, start, 7),
            end,
            "an inverted window is its start"
        );
        for _ in 0..100 {
            let at = in_window(start, end, random());
            assert!(at >= start && at <= end);
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_retry_after_wins() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let waits: Vec<u64> = (1..=10).map(|n| backoff(n, None, now).as_secs()).collect();
        assert_eq!(
            waits,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600]
        );
        assert_eq!(backoff(u32::MAX, None, now), MAX_BACKOFF);
        let soon = Some(now + Duration::from_secs(3));
        assert_eq!(backoff(5, soon, now), Duration::from_secs(3));
        assert_eq!(
            backoff(1, Some(now), now),
            Duration::from_secs(1),
            "at least 1 s"
        );
        assert_eq!(
            backoff(1, Some(now + 30 * DAY), now),
            7 * DAY,
            "at most a week"
        );
    }
}
