//! What one event changed in a matter: its folded state before and after, compared member by
//! member as the state serializes to JSON.
//!
//! The rule, the same at every depth: equal values are no change; two objects are compared
//! member by member and two lists index by index (a member missing on one side counts as
//! `null`); any other difference is one change at that path, with both whole values. So an edit
//! names the leaves it touched (`notes.<id>.body`), and an entity added or removed is one change
//! holding all of it (`notes.<id>`: `null` to the note).
//!
//! The bookkeeping members `version`, `position` and `updated_at` change with every event and
//! repeat the step's own stream version, position and recorded time, so they are left out. The
//! event that opens a matter lists each member it set, leaving out empty ones (`null`, `{}`,
//! `[]`).
//!
//! The result is that of comparing the two whole states as JSON, but the matter's collections
//! are compared entry by entry in their typed form first, and only entries that differ are
//! serialized: a step costs a walk over the state, not a copy of it.
//!
//! Limitation: that walk makes a timeline quadratic in a matter that only grows; a 10,000-event
//! matter of notes and time entries takes a few seconds to replay with its changes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use crate::domain::matter::Matter;

/// The members of the state that only mirror the step itself.
const BOOKKEEPING: [&str; 3] = ["version", "position", "updated_at"];

/// One step of a path into the matter's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PathSegment {
    /// A member of an object (a state member, or an entry's key such as a note id).
    Member(String),
    /// An index into a list.
    Index(usize),
}

/// One member of the matter's state that an event changed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// Where in the state, from the top: `["notes", "<id>", "body"]`.
    pub path: Vec<PathSegment>,
    /// `null` when the member did not exist.
    pub before: Value,
    /// `null` when the member no longer exists.
    pub after: Value,
}

impl FieldChange {
    /// The path for people: members joined with dots, those that are not plain words quoted
    /// (`team."a.okafor"`).
    pub fn field(&self) -> String {
        let mut text = String::new();
        for (index, segment) in self.path.iter().enumerate() {
            if index > 0 {
                text.push('.');
            }
            match segment {
                PathSegment::Member(name) if is_word(name) => text.push_str(name),
                PathSegment::Member(name) => text.push_str(&Value::from(name.as_str()).to_string()),
                PathSegment::Index(position) => text.push_str(&position.to_string()),
            }
        }
        text
    }
}

fn is_word(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Serialize for FieldChange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut change = serializer.serialize_struct("FieldChange", 4)?;
        change.serialize_field("field", &self.field())?;
        change.serialize_field("path", &self.path)?;
        change.serialize_field("before", &self.before)?;
        change.serialize_field("after", &self.after)?;
        change.end()
    }
}

/// What the step from `before` to `after` changed.
pub fn between(before: Option<&Matter>, after: Option<&Matter>) -> Vec<FieldChange> {
    let mut changes = Changes::default();
    match (before, after) {
        (Some(before), Some(after)) => changes.members(before, after),
        (None, Some(opened)) => changes.opened(opened),
        // Not opened yet: an event before the opening changes nothing.
        (_, None) => {}
    }
    changes.found
}

/// Compares the members of two matters in the state's member order, each by its shape.
///
/// Every member of `Matter` must be named once: the pattern match makes a member added to
/// `Matter` a compile error here until it is placed.
macro_rules! compare_members {
    ($changes:ident, $before:ident, $after:ident; $($shape:ident: [$($member:ident),* $(,)?];)*) => {{
        let Matter { $($($member: _,)*)* } = $after;
        $($( compare_members!(@$shape $changes, $before, $after, $member); )*)*
    }};
    (@value $changes:ident, $before:ident, $after:ident, $member:ident) => {
        if $before.$member != $after.$member {
            $changes.value(stringify!($member), &$before.$member, &$after.$member);
        }
    };
    (@map $changes:ident, $before:ident, $after:ident, $member:ident) => {
        $changes.map(stringify!($member), &$before.$member, &$after.$member)
    };
    (@list $changes:ident, $before:ident, $after:ident, $member:ident) => {
        $changes.list(stringify!($member), &$before.$member, &$after.$member)
    };
    (@bookkeeping $changes:ident, $before:ident, $after:ident, $member:ident) => {};
}

#[derive(Default)]
struct Changes {
    found: Vec<FieldChange>,
}

impl Changes {
    fn members(&mut self, before: &Matter, after: &Matter) {
        compare_members!(self, before, after;
            value: [number];
            bookkeeping: [version, position];
            value: [
                title, description, practice_area, status, responsible_attorney,
                originating_attorney, opened_on, closed_on, statute_of_limitations_on,
            ];
            map: [custom_fields, team];
            value: [firm_visible];
            map: [parties];
            list: [conflict_checks];
            map: [documents, notes];
            // Only a state folded for decisions holds notes by id; a replay's holds them whole.
            bookkeeping: [note_ids];
            map: [tasks, calendar, time_entries];
            value: [created_at];
            bookkeeping: [updated_at];
            value: [erased, frozen];
        );
    }

    /// The opening: each member the new matter has, from nothing.
    fn opened(&mut self, matter: &Matter) {
        let Value::Object(members) = to_json(matter) else {
            return;
        };
        for (name, value) in members {
            let empty = match &value {
                Value::Null => true,
                Value::Object(members) => members.is_empty(),
                Value::Array(items) => items.is_empty(),
                _ => false,
            };
            if !empty && !BOOKKEEPING.contains(&name.as_str()) {
                self.push(vec![PathSegment::Member(name)], Value::Null, value);
            }
        }
    }

    fn value<T: Serialize>(&mut self, name: &str, before: &T, after: &T) {
        let mut path = vec![PathSegment::Member(name.to_owned())];
        self.json(&mut path, &to_json(before), &to_json(after));
    }

    /// A keyed collection: both maps walked together in key order, only differing entries
    /// serialized.
    fn map<T: Serialize + PartialEq>(
        &mut self,
        name: &str,
        before: &BTreeMap<String, T>,
        after: &BTreeMap<String, T>,
    ) {
        let mut path = vec![PathSegment::Member(name.to_owned())];
        let mut old = before.iter().peekable();
        let mut new = after.iter().peekable();
        loop {
            let (key, was, is) = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some((key, was)), Some((new_key, is))) if key == new_key => {
                    let entry = (*key, Some(*was), Some(*is));
                    old.next();
                    new.next();
                    entry
                }
                (Some((key, was)), Some((new_key, _))) if key < new_key => {
                    let entry = (*key, Some(*was), None);
                    old.next();
                    entry
                }
                (Some((key, was)), None) => {
                    let entry = (*key, Some(*was), None);
                    old.next();
                    entry
                }
                (_, Some((key, is))) => {
                    let entry = (*key, None, Some(*is));
                    new.next();
                    entry
                }
            };
            if was != is {
                path.push(PathSegment::Member(key.clone()));
                self.json(&mut path, &to_json(&was), &to_json(&is));
                path.pop();
            }
        }
    }

    /// A list: compared index by index, only differing items serialized.
    fn list<T: Serialize + PartialEq>(&mut self, name: &str, before: &[T], after: &[T]) {
        let mut path = vec![PathSegment::Member(name.to_owned())];
        for index in 0..before.len().max(after.len()) {
            let (was, is) = (before.get(index), after.get(index));
            if was != is {
                path.push(PathSegment::Index(index));
                self.json(&mut path, &to_json(&was), &to_json(&is));
                path.pop();
            }
        }
    }

    /// The rule of the module, on JSON values.
    fn json(&mut self, path: &mut Vec<PathSegment>, before: &Value, after: &Value) {
        if before == after {
            return;
        }
        match (before, after) {
            (Value::Object(old), Value::Object(new)) => {
                for (name, was) in old {
                    path.push(PathSegment::Member(name.clone()));
                    self.json(path, was, new.get(name).unwrap_or(&Value::Null));
                    path.pop();
                }
                for (name, is) in new.iter().filter(|(name, _)| !old.contains_key(*name)) {
                    path.push(PathSegment::Member(name.clone()));
                    self.json(path, &Value::Null, is);
                    path.pop();
                }
            }
            (Value::Array(old), Value::Array(new)) => {
                for index in 0..old.len().max(new.len()) {
                    path.push(PathSegment::Index(index));
                    let was = old.get(index).unwrap_or(&Value::Null);
                    self.json(path, was, new.get(index).unwrap_or(&Value::Null));
                    path.pop();
                }
            }
            _ => self.push(path.clone(), before.clone(), after.clone()),
        }
    }

    fn push(&mut self, path: Vec<PathSegment>, before: Value, after: Value) {
        self.found.push(FieldChange {
            path,
            before,
            after,
        });
    }
}

/// The state's JSON form. Serializing it cannot fail (every map key is a string); were it to,
/// the value would read as `null`.
fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: both whole states serialized and compared by the module's rule.
    fn by_whole_states(before: &Matter, after: &Matter) -> Vec<FieldChange> {
        let strip = |matter: &Matter| {
            let mut value = to_json(matter);
            if let Value::Object(members) = &mut value {
                members.retain(|name, _| !BOOKKEEPING.contains(&name.as_str()));
            }
            value
        };
        let mut changes = Changes::default();
        changes.json(&mut Vec::new(), &strip(before), &strip(after));
        changes.found
    }

    fn member(name: &str) -> PathSegment {
        PathSegment::Member(name.into())
    }

    fn sample() -> Matter {
        let opened = serde_json::json!({
            "matter_number": "2026-0001", "title": "Smith v Jones", "practice_area": "employment",
            "status": "open", "responsible_attorney": "a.okafor", "opened_on": "2026-01-12",
            "private": { "description": "Instructions" }
        });
        let event = crate::domain::events::DomainEvent::MatterOpened(
            serde_json::from_value(opened).unwrap(),
        );
        let recorded = crate::domain::RecordedEvent {
            position: 2,
            stream: "matter:2026-0001".into(),
            stream_version: 1,
            actor: "user:a.okafor".into(),
            occurred_at: "2026-01-12T09:00:00.000000Z".into(),
            recorded_at: "2026-01-12T09:00:00.000000Z".into(),
            event,
            event_id: "019aef00-0000-7000-8000-000000000001".into(),
            privacy: Default::default(),
        };
        Matter::fold([&recorded]).unwrap()
    }

    #[test]
    fn the_opening_lists_the_members_it_set_and_no_empty_ones() {
        let changes = between(None, Some(&sample()));
        let fields: Vec<String> = changes.iter().map(FieldChange::field).collect();
        assert_eq!(
            fields,
            [
                "number",
                "title",
                "description",
                "practice_area",
                "status",
                "responsible_attorney",
                "opened_on",
                "firm_visible",
                "created_at"
            ]
        );
        assert!(changes.iter().all(|change| change.before.is_null()));
    }

    #[test]
    fn collections_compared_entry_by_entry_agree_with_whole_states() {
        let before = sample();
        let mut after = before.clone();
        after.title = "Smith v Jones plc".into();
        after.version += 1;
        after.team.insert(
            "a.okafor".into(),
            crate::domain::events::TeamCapacity::ResponsibleAttorney,
        );
        after
            .custom_fields
            .insert("court".into(), serde_json::json!(["Leeds", "County"]));
        let mut edited = before.clone();
        edited
            .custom_fields
            .insert("court".into(), serde_json::json!(["Leeds"]));

        let changes = between(Some(&before), Some(&after));
        assert_eq!(changes, by_whole_states(&before, &after));
        assert_eq!(
            changes
                .iter()
                .map(|change| change.path.clone())
                .collect::<Vec<_>>(),
            [
                vec![member("title")],
                vec![member("custom_fields"), member("court")],
                vec![member("team"), member("a.okafor")],
            ]
        );
        assert_eq!(changes[0].before, "Smith v Jones");
        assert_eq!(changes[0].after, "Smith v Jones plc");
        assert_eq!(changes[2].field(), "team.\"a.okafor\"");

        let shortened = between(Some(&after), Some(&edited));
        assert_eq!(shortened, by_whole_states(&after, &edited));
        assert!(shortened.iter().any(|change| change.path
            == [
                member("custom_fields"),
                member("court"),
                PathSegment::Index(1)
            ]
            && change.before == "County"
            && change.after.is_null()));
    }

    #[test]
    fn bookkeeping_alone_is_no_change() {
        let before = sample();
        let mut after = before.clone();
        after.version += 1;
        after.position += 5;
        after.updated_at = "2026-02-01T00:00:00.000000Z".into();
        assert!(between(Some(&before), Some(&after)).is_empty());
    }
}
