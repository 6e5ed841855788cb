//! Global object ids (Relay): `base64url("<Type>:<key>")`, opaque to clients.

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The kinds of object a global id can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Matter,
    Contact,
    Party,
    Document,
    Task,
    CalendarEntry,
    Note,
    TimeEntry,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Matter => "Matter",
            Kind::Contact => "Contact",
            Kind::Party => "Party",
            Kind::Document => "Document",
            Kind::Task => "Task",
            Kind::CalendarEntry => "CalendarEntry",
            Kind::Note => "Note",
            Kind::TimeEntry => "TimeEntry",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Kind::Matter,
            Kind::Contact,
            Kind::Party,
            Kind::Document,
            Kind::Task,
            Kind::CalendarEntry,
            Kind::Note,
            Kind::TimeEntry,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

pub fn encode(kind: Kind, key: &str) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{key}", kind.name())))
}

/// The kind and key of a global id; `None` for anything that is not one of ours.
pub fn decode(id: &str) -> Option<(Kind, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (kind, key) = text.split_once(':')?;
    Some((Kind::parse(kind)?, key.to_owned()))
}

/// Page cursors: `base64url(<sort value> NUL <tie-breaker>)`.
pub fn encode_cursor(sort: &str, tie: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{sort}\u{0}{tie}"))
}

pub fn decode_cursor(cursor: &str) -> Option<(String, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (sort, tie) = text.split_once('\u{0}')?;
    Some((sort.to_owned(), tie.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_are_refused() {
        let id = encode(Kind::Matter, "2026-0042");
        assert_eq!(decode(&id), Some((Kind::Matter, "2026-0042".to_owned())));
        assert_eq!(decode("not-base64!"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("Unknown:1")), None);
        let cursor = encode_cursor("b", "2026-1");
        assert_eq!(decode_cursor(&cursor), Some(("b".into(), "2026-1".into())));
    }
}
