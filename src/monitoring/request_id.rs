//! A request's id: the caller's `X-Request-Id` when it is a well-formed, bounded token, so that
//! a proxy's or client's id follows the request into Docket's logs and access records;
//! otherwise a fresh UUIDv7.
//!
//! Invariant: an id is 1 to [`MAX_REQUEST_ID_CHARS`] characters of `[A-Za-z0-9._-]`, so it can
//! go into a log line, a header and an access record as it is, and cannot forge log structure
//! (no spaces, quotes, newlines or control characters).

use actix_web::http::header::HeaderMap;

/// The header a request id comes in and goes out in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest id accepted from a caller.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

/// Whether `id` may be used as a request id as it is.
pub fn is_well_formed(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// The id of a request with these headers: the caller's if it sent exactly one well-formed
/// `X-Request-Id`, a fresh UUIDv7 otherwise.
pub fn of_request(headers: &HeaderMap) -> String {
    let mut given = headers.get_all(REQUEST_ID_HEADER);
    let first = given.next();
    let only = first.filter(|_| given.next().is_none());
    only.and_then(|value| value.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_static(REQUEST_ID_HEADER),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_plain_bounded_id_is_kept() {
        assert_eq!(of_request(&with(&["abc-123_x.y"])), "abc-123_x.y");
        let longest = "a".repeat(MAX_REQUEST_ID_CHARS);
        assert_eq!(of_request(&with(&[&longest])), longest);
    }

    #[test]
    fn anything_else_gets_a_fresh_id() {
        let too_long = "a".repeat(MAX_REQUEST_ID_CHARS + 1);
        for bad in [
            &too_long,
            "",
            "has space",
            "quote\"",
            "semi;colon",
            "tab\tx",
            "ünï",
        ] {
            let headers = match HeaderValue::from_str(bad) {
                Ok(_) => with(&[bad]),
                Err(_) => HeaderMap::new(),
            };
            let id = of_request(&headers);
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        let id = of_request(&with(&["one", "two"]));
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert!(uuid::Uuid::parse_str(&of_request(&HeaderMap::new())).is_ok());
    }
}
