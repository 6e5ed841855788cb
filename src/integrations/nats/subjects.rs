//! How an event becomes a NATS message: its subject, its headers and its body.
//!
//! Subject: `<prefix>.<category>.<key>.<type words...>`, one token each for the stream's
//! category and key, then one token per word of the event type. A matter's events are thus
//! under `docket.matter.<matter number>.>`, and `docket.*.*.time_entry.logged` is one type in
//! every stream. A stream without a key (`system`, `directory`, ...) has `%` as its key token.
//!
//! Tokens are percent-encoded: every byte other than an ASCII letter, digit, `-`, `_` or `~`
//! is written `%XX` (upper-case hex), so `.`, `*`, `>`, whitespace and `%` itself never reach a
//! subject as such, and any URL decoder gives the text back. The empty text is the token `%`,
//! which encoding never produces otherwise.
//!
//! Body: the event exactly as stored, in the JSON form of docs/log-format.md section 13.2, so
//! that a consumer can recompute its hash and check its signature without trusting NATS.

use async_nats::jetstream::message::PublishMessage;

use crate::log::Event;

/// JetStream's deduplication header: the event id.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// The event's position in the log.
pub const POSITION_HEADER: &str = "Docket-Position";
/// The event id (the same as `Nats-Msg-Id`).
pub const EVENT_ID_HEADER: &str = "Docket-Event-Id";
/// The event's stream, e.g. `matter:2026-0042`.
pub const STREAM_HEADER: &str = "Docket-Stream";
/// The event's version within its stream.
pub const STREAM_VERSION_HEADER: &str = "Docket-Stream-Version";
/// The event type, e.g. `matter.opened`.
pub const TYPE_HEADER: &str = "Docket-Event-Type";
/// The event's blake3 hash, lowercase hex.
pub const HASH_HEADER: &str = "Docket-Hash";
/// The id of the key that signed the event.
pub const KEY_ID_HEADER: &str = "Docket-Key-Id";

/// The token written for empty text (a stream without a key).
const EMPTY_TOKEN: &str = "%";

fn is_kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~')
}

/// One subject token for `text`, reversibly (see the module documentation).
pub fn encode_token(text: &str) -> String {
    if text.is_empty() {
        return EMPTY_TOKEN.to_owned();
    }
    let mut token = String::with_capacity(text.len());
    for byte in text.bytes() {
        if is_kept(byte) {
            token.push(char::from(byte));
        } else {
            token.push_str(&format!("%{byte:02X}"));
        }
    }
    token
}

/// The text a token stands for; `None` if it is not a token [`encode_token`] writes.
pub fn decode_token(token: &str) -> Option<String> {
    if token == EMPTY_TOKEN {
        return Some(String::new());
    }
    let text = percent_decode(token)?;
    (!text.is_empty() && encode_token(&text) == token).then_some(text)
}

/// Decodes `%XX` escapes (either case of hex); `None` for a malformed escape or bytes that
/// are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The subject an event is published on.
pub fn subject(prefix: &str, event: &Event) -> String {
    let (category, key) = event
        .stream
        .split_once(':')
        .unwrap_or((event.stream.as_str(), ""));
    let mut subject = format!("{prefix}.{}.{}", encode_token(category), encode_token(key));
    for word in event.event_type.split('.') {
        subject.push('.');
        subject.push_str(&encode_token(word));
    }
    subject
}

/// The stream and event type a subject names, if it is one of [`subject`]'s under `prefix`.
pub fn parse_subject(prefix: &str, subject: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let mut tokens = rest.split('.');
    let category = decode_token(tokens.next()?)?;
    let key = decode_token(tokens.next()?)?;
    let words = tokens.map(decode_token).collect::<Option<Vec<_>>>()?;
    if category.is_empty() || words.is_empty() {
        return None;
    }
    let stream = if key.is_empty() {
        category
    } else {
        format!("{category}:{key}")
    };
    Some((stream, words.join(".")))
}

/// The subject and message (headers and body) that publish `event`.
pub fn message(prefix: &str, event: &Event) -> Result<(String, PublishMessage), serde_json::Error> {
    let body = serde_json::to_vec(event)?;
    let message = PublishMessage::build()
        .payload(body.into())
        .message_id(&event.id)
        .header(POSITION_HEADER, event.position.to_string())
        .header(EVENT_ID_HEADER, event.id.as_str())
        .header(STREAM_HEADER, event.stream.as_str())
        .header(STREAM_VERSION_HEADER, event.stream_version.to_string())
        .header(TYPE_HEADER, event.event_type.as_str())
        .header(HASH_HEADER, hex::encode(event.hash))
        .header(KEY_ID_HEADER, event.key_id.as_str());
    Ok((subject(prefix, event), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_safe_characters_and_escape_the_rest_reversibly() {
        assert_eq!(encode_token("2026-0042"), "2026-0042");
        assert_eq!(encode_token("a.b"), "a%2Eb");
        assert_eq!(encode_token("x*y>z w\t%"), "x%2Ay%3Ez%20w%09%25");
        assert_eq!(encode_token(""), "%");
        for text in [
            "2026-0042",
            "a.b",
            "*",
            ">",
            "a b",
            "100%",
            "~_-",
            "é",
            "",
            "%",
        ] {
            let token = encode_token(text);
            assert!(
                !token.contains(['.', '*', '>', ' ', '\t']) && !token.is_empty(),
                "{token}"
            );
            assert_eq!(decode_token(&token).as_deref(), Some(text), "{token}");
        }
        // Only what encoding writes decodes: no lower-case hex, stray `%` or kept characters
        // written escaped.
        for token in ["a%2eb", "%2", "%zz", "%41", "a%", "%%"] {
            assert_eq!(decode_token(token), None, "{token}");
        }
    }

    fn event(stream: &str, event_type: &str) -> Event {
        Event {
            position: 7,
            id: "0190a3b4-7c1d-7000-8000-000000000007".into(),
            stream: stream.into(),
            stream_version: 2,
            event_type: event_type.into(),
            schema_version: 1,
            payload: "{}".into(),
            actor: "system".into(),
            request_id: None,
            occurred_at: "2026-01-01T00:00:00.000000Z".into(),
            recorded_at: "2026-01-01T00:00:00.000000Z".into(),
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            prev_hash: None,
            stream_prev_hash: None,
            key_id: "k1".into(),
            hash: [1; 32],
            signature: [2; 64],
        }
    }

    #[test]
    fn subjects_name_category_key_and_type_and_parse_back() {
        let cases = [
            (
                "matter:2026-0042",
                "matter.opened",
                "docket.matter.2026-0042.matter.opened",
            ),
            (
                "contact:a.b",
                "contact.created",
                "docket.contact.a%2Eb.contact.created",
            ),
            ("system", "log.genesis", "docket.system.%.log.genesis"),
        ];
        for (stream, event_type, expected) in cases {
            let subject = subject("docket", &event(stream, event_type));
            assert_eq!(subject, expected);
            assert_eq!(
                parse_subject("docket", &subject),
                Some((stream.to_owned(), event_type.to_owned()))
            );
        }
        assert_eq!(
            parse_subject("docket", "other.matter.1.matter.opened"),
            None
        );
        assert_eq!(parse_subject("docket", "docket.matter.1"), None);
        assert_eq!(parse_subject("docket", "docket.%.1.x"), None);
    }

    #[test]
    fn messages_carry_the_event_as_stored_and_its_headers() {
        let event = event("matter:2026-0042", "matter.opened");
        let (subject, message) = message("firm.docket", &event).unwrap();
        assert_eq!(subject, "firm.docket.matter.2026-0042.matter.opened");
        let outbound = message.outbound_message(subject);
        let body: Event = serde_json::from_slice(&outbound.payload).unwrap();
        assert_eq!(body, event);
        let headers = outbound.headers.unwrap();
        let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(get(MSG_ID_HEADER).as_deref(), Some(event.id.as_str()));
        assert_eq!(get(EVENT_ID_HEADER).as_deref(), Some(event.id.as_str()));
        assert_eq!(get(POSITION_HEADER).as_deref(), Some("7"));
        assert_eq!(get(STREAM_HEADER).as_deref(), Some("matter:2026-0042"));
        assert_eq!(get(STREAM_VERSION_HEADER).as_deref(), Some("2"));
        assert_eq!(get(TYPE_HEADER).as_deref(), Some("matter.opened"));
        assert_eq!(get(HASH_HEADER), Some(hex::encode([1u8; 32])));
        assert_eq!(get(KEY_ID_HEADER).as_deref(), Some("k1"));
    }
}
