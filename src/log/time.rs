//! Timestamps as they appear in hashed content: RFC 3339, UTC, exactly six fractional digits.

use std::cell::RefCell;

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the only way Docket writes times into events, e.g. `2026-12-03T10:27:10.123456Z`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The current time in the canonical event format.
pub fn now_timestamp() -> String {
    format_timestamp(Utc::now())
}

thread_local! {
    /// The current millisecond (since the epoch) and the time formatted in it, per thread.
    static NOW: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Calls `f` with the current time in the canonical format. The text is formatted at most once
/// per millisecond on each thread: decisions made in the same millisecond share one reading,
/// so a time compared against it (an expiry, the end of a break-glass window) takes effect up
/// to a millisecond late. For the per-event decisions of thousands of subscribers, where a
/// formatting per decision would cost more than the decision.
pub fn with_now<R>(f: impl FnOnce(&str) -> R) -> R {
    let at = Utc::now();
    let millis = at.timestamp_millis();
    NOW.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cached) => {
            if cached.0 != millis {
                *cached = (millis, format_timestamp(at));
            }
            f(&cached.1)
        }
        // Called again from inside `f`: formatted afresh rather than shared.
        Err(_) => f(&format_timestamp(at)),
    })
}

/// Parses a client-supplied time and re-renders it canonically; `None` if it is not RFC 3339.
pub fn normalise_timestamp(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| format_timestamp(at.with_timezone(&Utc)))
}

/// True when `text` is already in the canonical format (what verification expects).
pub fn is_canonical_timestamp(text: &str) -> bool {
    normalise_timestamp(text).as_deref() == Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_normalised_to_utc_with_micros() {
        assert_eq!(
            normalise_timestamp("2026-12-03T11:27:10+01:00").as_deref(),
            Some("2026-12-03T10:27:10.000000Z")
        );
        assert!(is_canonical_timestamp("2026-12-03T10:27:10.000000Z"));
        assert!(!is_canonical_timestamp("2026-12-03T10:27:10Z"));
        assert_eq!(normalise_timestamp("yesterday"), None);
    }

    #[test]
    fn the_shared_now_is_canonical_current_and_safe_to_nest() {
        let before = now_timestamp();
        let (outer, inner) = with_now(|outer| (outer.to_owned(), with_now(str::to_owned)));
        let after = now_timestamp();
        for now in [&outer, &inner] {
            assert!(is_canonical_timestamp(now), "{now}");
            // Canonical timestamps compare as text in time order. The shared reading may be
            // up to a millisecond old, never newer than the clock.
            assert!(now.as_str() <= after.as_str(), "{now} after {after}");
            let floor = &before[..23];
            assert!(now.as_str() >= floor, "{now} before {before}");
        }
    }
}
