//! Timestamps as they appear in hashed content: RFC 3339, UTC, exactly six fractional digits.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the only way Docket writes times into events, e.g. `2026-12-03T10:27:10.123456Z`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The current time in the canonical event format.
pub fn now_timestamp() -> String {
    format_timestamp(Utc::now())
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
}
