//! Which events an endpoint asks for: matter numbers and event types. An empty list asks for
//! everything; what the endpoint's API client may read is decided apart from the filter, by
//! the event gate, for every event.

use serde::{Deserialize, Serialize};

use crate::domain::ids::MatterNumber;
use crate::log::Event;

/// Most matter numbers one endpoint may list.
pub const MAX_MATTERS: usize = 200;
/// Most event types one endpoint may list.
pub const MAX_TYPES: usize = 100;

/// An endpoint's event filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Matter numbers; empty for every matter.
    #[serde(default)]
    pub matters: Vec<String>,
    /// Event types, exactly (`matter.note_added`) or by prefix (`matter.task_*`); empty for
    /// every type.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// Why a filter was refused: the input field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

/// A matter number as the domain writes it (upper-cased), if `text` is one.
fn matter_number(text: &str) -> Option<String> {
    MatterNumber::parse(text)
        .ok()
        .map(|number| number.as_str().to_owned())
}

/// `matter.note_added`, or a prefix ending in `*` (`matter.*`, `matter.task_*`).
fn event_type(text: &str) -> Option<String> {
    event_type_ok(text).then(|| text.to_owned())
}

fn event_type_ok(text: &str) -> bool {
    let body = text.strip_suffix('*').unwrap_or(text);
    !body.is_empty()
        && text.len() <= 100
        && body.starts_with(|c: char| c.is_ascii_lowercase())
        && body
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
        && !body.contains("..")
        && (text.ends_with('*') || (body.contains('.') && !body.ends_with('.')))
}

impl EventFilter {
    /// A filter from input: trimmed, duplicates dropped, every entry checked. Matter numbers
    /// are upper-cased, as the domain writes them (`2026-0042`).
    pub fn new(matters: &[String], event_types: &[String]) -> Result<EventFilter, FilterError> {
        let matters = cleaned(
            matters,
            "matters",
            MAX_MATTERS,
            matter_number,
            "a matter number (1-32 letters, digits, '.', '_' or '-')",
        )?;
        let event_types = cleaned(
            event_types,
            "eventTypes",
            MAX_TYPES,
            event_type,
            "an event type such as matter.note_added or matter.task_*",
        )?;
        Ok(EventFilter {
            matters,
            event_types,
        })
    }

    /// Whether the endpoint asks for `event`.
    pub fn matches(&self, event: &Event) -> bool {
        // Alerts go only to endpoints that name their type (`alert.raised` or `alert.*`) and
        // no matters.
        let alert = event.stream == crate::monitoring::alert_log::STREAM;
        if alert && (!self.matters.is_empty() || self.event_types.is_empty()) {
            return false;
        }
        let matter_ok = self.matters.is_empty()
            || event
                .stream
                .strip_prefix("matter:")
                .is_some_and(|number| self.matters.iter().any(|m| m == number));
        let type_ok = self.event_types.is_empty()
            || self
                .event_types
                .iter()
                .any(|wanted| match wanted.strip_suffix('*') {
                    Some(prefix) => event.event_type.starts_with(prefix),
                    None => *wanted == event.event_type,
                });
        matter_ok && type_ok
    }
}

fn cleaned(
    values: &[String],
    field: &'static str,
    max: usize,
    normal: fn(&str) -> Option<String>,
    expected: &str,
) -> Result<Vec<String>, FilterError> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        let Some(value) = normal(value.trim()) else {
            return Err(FilterError {
                field,
                message: format!("each entry must be {expected}"),
            });
        };
        if !out.contains(&value) {
            out.push(value);
        }
    }
    if out.len() > max {
        return Err(FilterError {
            field,
            message: format!("at most {max} entries"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, event_type: &str) -> Event {
        Event {
            position: 1,
            id: "e".into(),
            stream: stream.into(),
            stream_version: 1,
            event_type: event_type.into(),
            schema_version: 1,
            payload: "{}".into(),
            actor: "system".into(),
            request_id: None,
            occurred_at: String::new(),
            recorded_at: String::new(),
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            prev_hash: None,
            stream_prev_hash: None,
            key_id: String::new(),
            hash: [0; 32],
            signature: [0; 64],
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn an_empty_filter_asks_for_everything() {
        let filter = EventFilter::new(&[], &[]).unwrap();
        assert!(filter.matches(&event("matter:2026-0001", "matter.opened")));
        assert!(filter.matches(&event("directory", "user.added")));
    }

    #[test]
    fn matters_and_types_both_have_to_match() {
        let filter = EventFilter::new(
            &strings(&["2026-0001", " 2026-0002 ", "2026-0001", "wh-7"]),
            &strings(&["matter.note_added", "matter.task_*"]),
        )
        .unwrap();
        assert_eq!(filter.matters, strings(&["2026-0001", "2026-0002", "WH-7"]));
        assert!(filter.matches(&event("matter:WH-7", "matter.note_added")));
        assert!(filter.matches(&event("matter:2026-0001", "matter.note_added")));
        assert!(filter.matches(&event("matter:2026-0002", "matter.task_created")));
        assert!(!filter.matches(&event("matter:2026-0003", "matter.note_added")));
        assert!(!filter.matches(&event("matter:2026-0001", "matter.opened")));
        assert!(!filter.matches(&event("contact:x", "matter.note_added")));
        assert!(!filter.matches(&event("matter:2026-00011", "matter.note_added")));
    }

    #[test]
    fn malformed_entries_are_refused_with_their_field() {
        for bad in [
            "",
            "Matter.Opened",
            "matter",
            "matter.",
            "matter..x",
            "*",
            "a b.c",
        ] {
            let error = EventFilter::new(&[], &strings(&[bad])).unwrap_err();
            assert_eq!(error.field, "eventTypes", "{bad}");
        }
        assert!(EventFilter::new(&[], &strings(&["matter.*", "matter.note_added"])).is_ok());
        for bad in ["", "a b", "2026/1", "-1", &"x".repeat(33)] {
            let error = EventFilter::new(&strings(&[bad]), &[]).unwrap_err();
            assert_eq!(error.field, "matters", "{bad}");
        }
        let many: Vec<String> = (0..=MAX_MATTERS).map(|n| format!("m-{n}")).collect();
        assert_eq!(EventFilter::new(&many, &[]).unwrap_err().field, "matters");
    }
}
