//! How long to make someone wait after failed sign-in attempts, and when to lock an account.
//!
//! Failures of a password, a TOTP code or a recovery code all count alike, kept by the caller
//! per account and per client address; this module holds only the arithmetic, with the time
//! passed in, so it can be tested exhaustively and used by any store.

use std::time::Duration;

/// The throttling curve: a few free failures, then a delay that doubles with each further
/// failure up to a ceiling, and an account lock after many failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before any delay (default 3), so a typo costs nothing.
    pub free_failures: u32,
    /// The delay after the first failure past the free ones (default 1 s).
    pub base_delay: Duration,
    /// The longest delay, however many failures (default 15 minutes).
    pub max_delay: Duration,
    /// Account failures at which the account is locked until an administrator or a recovery
    /// step unlocks it (default 10). Applies to accounts only, never to client addresses,
    /// whose failures are only delayed.
    pub lock_after: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            lock_after: 10,
        }
    }
}

impl ThrottlePolicy {
    /// The wait after `failures` consecutive failures: nothing for the first `free_failures`,
    /// then `base_delay`, doubling with each further failure, never more than `max_delay`.
    /// Defined for every `u32` without overflow.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures <= self.free_failures {
            return Duration::ZERO;
        }
        let doublings = failures - self.free_failures - 1;
        1u32.checked_shl(doublings)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |delay| delay.min(self.max_delay))
    }

    /// Whether an account with `account_failures` consecutive failures is to be locked.
    pub fn should_lock(&self, account_failures: u32) -> bool {
        account_failures >= self.lock_after
    }

    /// The earliest unix time (seconds) at which another attempt is considered, after
    /// `failures` consecutive failures the last of which was at `last_failure_unix`. A delay
    /// with a fraction of a second is rounded up; the result saturates rather than overflows.
    pub fn retry_at(&self, failures: u32, last_failure_unix: i64) -> i64 {
        let delay = self.delay_after(failures);
        let whole = delay
            .as_secs()
            .saturating_add(u64::from(delay.subsec_nanos() > 0));
        last_failure_unix.saturating_add(i64::try_from(whole).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_failures_then_doubling() {
        let policy = ThrottlePolicy::default();
        for failures in 0..=3 {
            assert_eq!(policy.delay_after(failures), Duration::ZERO, "{failures}");
        }
        assert_eq!(policy.delay_after(4), Duration::from_secs(1));
        assert_eq!(policy.delay_after(5), Duration::from_secs(2));
        assert_eq!(policy.delay_after(6), Duration::from_secs(4));
        assert_eq!(policy.delay_after(7), Duration::from_secs(8));
        assert_eq!(policy.delay_after(13), Duration::from_secs(512));
    }

    #[test]
    fn delay_is_capped() {
        let policy = ThrottlePolicy::default();
        assert_eq!(policy.delay_after(14), Duration::from_secs(900));
        assert_eq!(policy.delay_after(35), Duration::from_secs(900));
        assert_eq!(policy.delay_after(36), Duration::from_secs(900));
        assert_eq!(policy.delay_after(u32::MAX), Duration::from_secs(900));
        let mut previous = Duration::ZERO;
        for failures in 0..200 {
            let delay = policy.delay_after(failures);
            assert!(delay >= previous && delay <= policy.max_delay);
            previous = delay;
        }
    }

    #[test]
    fn extreme_policies_do_not_overflow() {
        let huge = ThrottlePolicy {
            free_failures: 0,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            lock_after: u32::MAX,
        };
        assert_eq!(huge.delay_after(1), Duration::MAX);
        assert_eq!(huge.delay_after(u32::MAX), Duration::MAX);
        assert_eq!(huge.retry_at(u32::MAX, i64::MAX), i64::MAX);
        assert_eq!(huge.retry_at(1, 0), i64::MAX);
        let all_free = ThrottlePolicy {
            free_failures: u32::MAX,
            ..ThrottlePolicy::default()
        };
        assert_eq!(all_free.delay_after(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn lock_after_ten_account_failures() {
        let policy = ThrottlePolicy::default();
        assert!(!policy.should_lock(0));
        assert!(!policy.should_lock(9));
        assert!(policy.should_lock(10));
        assert!(policy.should_lock(u32::MAX));
    }

    #[test]
    fn retry_time_adds_the_delay_rounded_up() {
        let policy = ThrottlePolicy::default();
        assert_eq!(policy.retry_at(2, 1_000), 1_000);
        assert_eq!(policy.retry_at(4, 1_000), 1_001);
        assert_eq!(policy.retry_at(6, 1_000), 1_004);
        assert_eq!(policy.retry_at(u32::MAX, 1_000), 1_900);
        assert_eq!(policy.retry_at(u32::MAX, i64::MAX - 1), i64::MAX);
        let fractional = ThrottlePolicy {
            base_delay: Duration::from_millis(1_500),
            ..ThrottlePolicy::default()
        };
        assert_eq!(fractional.retry_at(4, 1_000), 1_002);
    }
}
