//! When a failed delivery is tried again, and when Docket gives up.
//!
//! The first attempt is made at once. After a failure the next waits, in turn, 5 seconds,
//! 1 minute, 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours and 14 hours: nine attempts
//! over about 31 hours and 36 minutes. Each wait is varied at random by up to a fifth either
//! way, so that receivers coming back from an outage are not hit by every sender at once, and
//! is never shorter than a `Retry-After` the receiver asked for (up to a day). A delivery that
//! fails its last attempt disables its endpoint.

use std::time::Duration;

/// The waits after each failed attempt, in order.
pub const DEFAULT_SCHEDULE: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    Duration::from_secs(14 * 60 * 60),
];

/// The most a `Retry-After` can push an attempt back.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Most retries a schedule may hold.
pub const MAX_RETRIES: usize = 50;

/// The longest single wait a configured schedule may hold.
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The wait after the first, second, ... failed attempt.
    pub waits: Vec<Duration>,
    /// How far each wait is varied at random, as a fraction of it (0 to 1).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            waits: DEFAULT_SCHEDULE.to_vec(),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// A schedule of waits in milliseconds, e.g. `"10,20,40"` (configuration, and tests that
    /// must not wait for hours). Empty means no retries at all; a wait above [`MAX_WAIT`] or
    /// more than [`MAX_RETRIES`] waits are refused.
    pub fn from_millis_list(text: &str) -> Option<Backoff> {
        let mut waits = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let wait = Duration::from_millis(part.parse::<u64>().ok()?);
            if wait > MAX_WAIT {
                return None;
            }
            waits.push(wait);
        }
        (waits.len() <= MAX_RETRIES).then_some(Backoff { waits, jitter: 0.2 })
    }

    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.waits.len() + 1).unwrap_or(u32::MAX)
    }

    /// The total of the waits, without jitter.
    pub fn span(&self) -> Duration {
        self.waits.iter().sum()
    }

    /// The wait after failed attempt number `failed` (1-based) of the current run, with
    /// jitter and at least `retry_after`; `None` when that was the last attempt.
    pub fn next_wait(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let index = usize::try_from(failed.checked_sub(1)?).ok()?;
        let base = (*self.waits.get(index)?).min(MAX_WAIT);
        let factor = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * unit_random() - 1.0);
        let jittered = base.mul_f64(factor.max(0.0));
        let asked = retry_after.map_or(Duration::ZERO, |asked| asked.min(MAX_RETRY_AFTER));
        Some(jittered.max(asked))
    }
}

/// A random number in [0, 1) (1/2 if the random source fails: jitter is not security).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// A `Retry-After` header's wait: delay-seconds, or an HTTP date (RFC 9110) from `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_a_day_and_a_quarter() {
        let backoff = Backoff::default();
        assert_eq!(backoff.attempts(), 9);
        assert_eq!(backoff.span(), Duration::from_secs(31 * 3600 + 36 * 60 + 5));
    }

    #[test]
    fn waits_vary_within_the_jitter_and_end_after_the_last_attempt() {
        let backoff = Backoff::default();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let wait = backoff.next_wait(1, None).unwrap();
            assert!(
                wait >= Duration::from_secs(4) && wait <= Duration::from_secs(6),
                "{wait:?}"
            );
            seen.insert(wait);
        }
        assert!(seen.len() > 1, "jitter varies the wait");
        let last = backoff.next_wait(8, None).unwrap();
        assert!(last >= Duration::from_secs(14 * 3600).mul_f64(0.8));
        assert_eq!(backoff.next_wait(9, None), None);
        assert_eq!(backoff.next_wait(0, None), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_day() {
        let backoff = Backoff::default();
        let wait = backoff
            .next_wait(1, Some(Duration::from_secs(120)))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(120));
        let capped = backoff
            .next_wait(1, Some(Duration::from_secs(10 * 86_400)))
            .unwrap();
        assert_eq!(capped, MAX_RETRY_AFTER);
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn schedules_can_be_given_in_milliseconds() {
        let backoff = Backoff::from_millis_list("10, 20,40").unwrap();
        assert_eq!(
            backoff.waits,
            vec![
                Duration::from_millis(10),
                Duration::from_millis(20),
                Duration::from_millis(40)
            ]
        );
        assert_eq!(backoff.attempts(), 4);
        assert_eq!(Backoff::from_millis_list("").unwrap().attempts(), 1);
        assert_eq!(Backoff::from_millis_list("10,x"), None);
        assert_eq!(Backoff::from_millis_list("999999999999"), None);
        assert_eq!(
            Backoff::from_millis_list(&vec!["1"; MAX_RETRIES + 1].join(",")),
            None
        );
    }
}
