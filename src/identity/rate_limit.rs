//! Rate limits per API client: the generic cell rate algorithm (GCRA), a token bucket kept as
//! one instant per client. A client with a limit of `requests` per `per_seconds` may make one
//! request every `per_seconds / requests` on average and a burst of up to `requests` after a
//! quiet window.
//!
//! The buckets live in the memory of each process: several processes serving one database each
//! count their own, so a client spread over `n` processes may make up to `n` times its limit.
//! A restart empties them (every client starts with a full bucket).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::scopes::RateLimit;

/// Buckets kept before the full ones (indistinguishable from absent ones) are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// A request was allowed: what is left of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub limit: RateLimit,
    /// Requests the client may still make at once.
    pub remaining: u32,
    /// Seconds until the bucket is full again (rounded up).
    pub reset_secs: u64,
}

/// A request was refused: when the next one will be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    pub limit: RateLimit,
    /// Seconds to wait before the next request (rounded up, at least 1).
    pub retry_after_secs: u64,
    /// Seconds until the bucket is full again (rounded up).
    pub reset_secs: u64,
}

/// The buckets of every API client this process has served.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Client id -> the theoretical arrival time of its next request.
    buckets: Mutex<HashMap<String, Instant>>,
}

fn ceil_secs(duration: Duration) -> u64 {
    let whole = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole
    }
}

impl RateLimiter {
    /// Counts one request of `client_id` against `limit` now: `Ok` with what is left, or `Err`
    /// with how long to wait (the refused request is not counted).
    pub fn check(&self, client_id: &str, limit: RateLimit) -> Result<Remaining, RetryAfter> {
        self.check_at(client_id, limit, Instant::now())
    }

    /// [`RateLimiter::check`] at a given instant.
    pub fn check_at(
        &self,
        client_id: &str,
        limit: RateLimit,
        now: Instant,
    ) -> Result<Remaining, RetryAfter> {
        let window = Duration::from_secs(u64::from(limit.per_seconds.max(1)));
        let interval = window / limit.requests.max(1);
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, arrival| *arrival > now);
        }
        let arrival = buckets
            .get(client_id)
            .copied()
            .filter(|arrival| *arrival > now)
            .unwrap_or(now);
        let next = arrival + interval;
        // The request fits if, counted, the bucket holds no more than one window of requests.
        let used = next.duration_since(now);
        if used > window {
            return Err(RetryAfter {
                limit,
                retry_after_secs: ceil_secs(used - window).max(1),
                reset_secs: ceil_secs(arrival.duration_since(now)),
            });
        }
        buckets.insert(client_id.to_owned(), next);
        let left = window - used;
        let remaining = u32::try_from(left.as_nanos() / interval.as_nanos().max(1))
            .unwrap_or(u32::MAX)
            .min(limit.requests);
        Ok(Remaining {
            limit,
            remaining,
            reset_secs: ceil_secs(used),
        })
    }

    /// Forgets every bucket (every client starts full).
    pub fn clear(&self) {
        match self.buckets.lock() {
            Ok(mut buckets) => buckets.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_passes_then_one_waits_for_the_next_slot() {
        let limiter = RateLimiter::default();
        let limit = RateLimit::new(3, 3).unwrap();
        let start = Instant::now();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check_at("billing", limit, start).unwrap().remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check_at("billing", limit, start).unwrap_err();
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.reset_secs, 3);
        // Another client has a bucket of its own.
        assert!(limiter.check_at("documents", limit, start).is_ok());
        // One interval later one request fits again.
        let later = start + Duration::from_secs(1);
        assert_eq!(
            limiter.check_at("billing", limit, later).unwrap().remaining,
            0
        );
        assert!(limiter.check_at("billing", limit, later).is_err());
        // A quiet window refills the whole bucket.
        let quiet = start + Duration::from_secs(10);
        let full = limiter.check_at("billing", limit, quiet).unwrap();
        assert_eq!((full.remaining, full.reset_secs), (2, 1));
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let limiter = RateLimiter::default();
        let limit = RateLimit::new(1, 60).unwrap();
        let start = Instant::now();
        assert!(limiter.check_at("c", limit, start).is_ok());
        for _ in 0..100 {
            assert!(limiter.check_at("c", limit, start).is_err());
        }
        let waited = limiter
            .check_at("c", limit, start + Duration::from_secs(30))
            .unwrap_err();
        assert_eq!(waited.retry_after_secs, 30);
        assert!(
            limiter
                .check_at("c", limit, start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn clearing_refills_every_bucket() {
        let limiter = RateLimiter::default();
        let limit = RateLimit::new(1, 60).unwrap();
        let now = Instant::now();
        assert!(limiter.check_at("c", limit, now).is_ok());
        assert!(limiter.check_at("c", limit, now).is_err());
        limiter.clear();
        assert!(limiter.check_at("c", limit, now).is_ok());
    }
}
