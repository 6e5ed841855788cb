//! Every event Docket writes matches the JSON Schema of its type in schema/events/.
//!
//! The schemas use a subset of JSON Schema (draft 2020-12): the annotations `$schema`, `$id`,
//! `title` and `description`; `type` (one name or a list), `enum` and `const`; `pattern`,
//! `minLength` and `maxLength` for strings; `minimum` and `maximum` for numbers; `properties`,
//! `required`, `additionalProperties` (a boolean) and `minProperties` for objects; `items`,
//! `minItems` and `maxItems` for arrays; and `allOf`, `anyOf`, `oneOf` and `not`. The checker
//! below implements exactly that subset and refuses any other keyword, so a schema can never be
//! silently half-checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use docket::domain::DomainEvent;
use docket::domain::commands::*;
use docket::domain::contact;
use docket::domain::events::*;
use docket::domain::ids::new_entity_id;
use docket::log::canonical::canonical_json;
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::domain::{
    ATTORNEY, Case, HASH, PARALEGAL, conflict_check, contact_exists, created_id, define_field,
    details, document, entry, field_lookup, force_close, note, open_matter, open_matter_fully,
    party, person, person_fully, round_trip, set_field, set_task, stored, task, time, to,
    to_because, upload,
};
use crate::support::{Backend, TestLog, sample_log};

const KNOWN_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "items",
    "minItems",
    "maxItems",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
];

const KNOWN_TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

/// The log's own event types, written by the log rather than the domain.
const LOG_TYPES: &[(&str, u32)] = &[
    ("log.genesis", 1),
    ("keys.rotated", 1),
    // The access chain's one type (a log of its own, in the same format).
    ("access.recorded", 1),
];

/// Identity events: written by the identity service, not decided by the pure domain, so they
/// are checked against what the service writes (`identity_events_match_their_schemas`).
const IDENTITY_TYPES: &[&str] = &[
    "user.added",
    "user.enrolment_issued",
    "user.enrolled",
    "user.role_changed",
    "user.locked",
    "user.unlocked",
    "user.disabled",
    "user.enabled",
    "user.password_changed",
    "auth.login_succeeded",
    "auth.login_failed",
    "auth.sessions_revoked",
    "auth.credentials_revoked",
    "group.members_set",
    "wall.erected",
    "wall.lifted",
    "access.break_glass_opened",
    "api_client.registered",
    "api_client.key_issued",
    "api_client.key_revoked",
    "api_client.scopes_set",
    "api_client.key_rotated",
    "firm.policy_set",
];

fn schemas() -> HashMap<(String, u64), Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/events");
    let mut schemas = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let (event_type, version) = name.rsplit_once(".v").expect("<type>.v<version>.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|error| panic!("{name}.json: {error}"));
        schemas.insert((event_type.to_owned(), version.parse().unwrap()), schema);
    }
    schemas
}

fn schema_of<'a>(
    schemas: &'a HashMap<(String, u64), Value>,
    event_type: &str,
    version: u32,
) -> &'a Value {
    schemas
        .get(&(event_type.to_owned(), u64::from(version)))
        .unwrap_or_else(|| panic!("no schema/events/{event_type}.v{version}.json"))
}

fn keywords<'a>(schema: &'a Value, at: &str) -> &'a serde_json::Map<String, Value> {
    let object = schema
        .as_object()
        .unwrap_or_else(|| panic!("the schema at {at} is not an object"));
    for keyword in object.keys() {
        assert!(
            KNOWN_KEYWORDS.contains(&keyword.as_str()),
            "unsupported keyword {keyword} at {at}"
        );
    }
    object
}

fn type_names<'a>(types: &'a Value, at: &str) -> Vec<&'a str> {
    let names: Vec<&str> = match types {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names
            .iter()
            .map(|name| {
                name.as_str()
                    .unwrap_or_else(|| panic!("a type name at {at} is not a string"))
            })
            .collect(),
        _ => panic!("type at {at} is neither a name nor a list of names"),
    };
    for name in &names {
        assert!(
            KNOWN_TYPES.contains(name),
            "unsupported type {name} at {at}"
        );
    }
    names
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => unreachable!("type names are checked"),
    }
}

/// JSON equality, with numbers compared by value (1 equals 1.0), as JSON Schema's const and enum
/// compare.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn count(schema: &serde_json::Map<String, Value>, keyword: &str, at: &str) -> Option<usize> {
    schema.get(keyword).map(|n| {
        let n = n
            .as_u64()
            .unwrap_or_else(|| panic!("{keyword} at {at} is not a non-negative integer"));
        usize::try_from(n).unwrap()
    })
}

fn number(schema: &serde_json::Map<String, Value>, keyword: &str, at: &str) -> Option<f64> {
    schema.get(keyword).map(|n| {
        n.as_f64()
            .unwrap_or_else(|| panic!("{keyword} at {at} is not a number"))
    })
}

fn subschemas<'a>(
    schema: &'a serde_json::Map<String, Value>,
    keyword: &str,
    at: &str,
) -> &'a [Value] {
    match schema.get(keyword) {
        None => &[],
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(_) => panic!("{keyword} at {at} is not a non-empty list of schemas"),
    }
}

/// Checks `value` against `schema`; returns what does not match.
fn violations(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let object = keywords(schema, at);
    let mut found = Vec::new();

    if let Some(types) = object.get("type") {
        let names = type_names(types, at);
        if !names.iter().any(|name| has_type(value, name)) {
            return vec![format!("{at}: not {}", names.join(" or "))];
        }
    }
    if let Some(expected) = object.get("const")
        && !same(value, expected)
    {
        found.push(format!("{at}: expected {expected}"));
    }
    if let Some(options) = object.get("enum") {
        let options = options
            .as_array()
            .unwrap_or_else(|| panic!("enum at {at} is not a list"));
        if !options.iter().any(|option| same(value, option)) {
            found.push(format!(
                "{at}: {value} is not one of {}",
                Value::Array(options.clone())
            ));
        }
    }

    match value {
        Value::String(text) => {
            let length = text.chars().count();
            if let Some(min) = count(object, "minLength", at)
                && length < min
            {
                found.push(format!("{at}: shorter than {min} characters"));
            }
            if let Some(max) = count(object, "maxLength", at)
                && length > max
            {
                found.push(format!("{at}: longer than {max} characters"));
            }
            if let Some(pattern) = object.get("pattern") {
                let pattern = pattern
                    .as_str()
                    .unwrap_or_else(|| panic!("pattern at {at} is not a string"));
                if !regex::Regex::new(pattern).unwrap().is_match(text) {
                    found.push(format!("{at}: does not match {pattern}"));
                }
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap();
            if let Some(min) = number(object, "minimum", at)
                && n < min
            {
                found.push(format!("{at}: less than {min}"));
            }
            if let Some(max) = number(object, "maximum", at)
                && n > max
            {
                found.push(format!("{at}: more than {max}"));
            }
        }
        Value::Object(members) => {
            if let Some(min) = count(object, "minProperties", at)
                && members.len() < min
            {
                found.push(format!("{at}: fewer than {min} members"));
            }
            for required in object
                .get("required")
                .map(|r| {
                    r.as_array()
                        .unwrap_or_else(|| panic!("required at {at} is not a list"))
                })
                .into_iter()
                .flatten()
            {
                let name = required
                    .as_str()
                    .unwrap_or_else(|| panic!("required at {at} names a non-string"));
                if !members.contains_key(name) {
                    found.push(format!("{at}: missing {name}"));
                }
            }
            let properties = object.get("properties").map(|p| {
                p.as_object()
                    .unwrap_or_else(|| panic!("properties at {at} is not an object"))
            });
            let closed = match object.get("additionalProperties") {
                None => false,
                Some(Value::Bool(allowed)) => !allowed,
                Some(_) => panic!("additionalProperties at {at} must be a boolean"),
            };
            for (name, member) in members {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => {
                        found.extend(violations(property, member, &format!("{at}.{name}")))
                    }
                    None if closed => found.push(format!("{at}: unexpected member {name}")),
                    None => {}
                }
            }
        }
        Value::Array(elements) => {
            if let Some(min) = count(object, "minItems", at)
                && elements.len() < min
            {
                found.push(format!("{at}: fewer than {min} items"));
            }
            if let Some(max) = count(object, "maxItems", at)
                && elements.len() > max
            {
                found.push(format!("{at}: more than {max} items"));
            }
            if let Some(items) = object.get("items") {
                for (index, element) in elements.iter().enumerate() {
                    found.extend(violations(items, element, &format!("{at}[{index}]")));
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }

    for (index, sub) in subschemas(object, "allOf", at).iter().enumerate() {
        found.extend(violations(sub, value, &format!("{at}/allOf/{index}")));
    }
    let anyof = subschemas(object, "anyOf", at);
    if !anyof.is_empty()
        && !anyof
            .iter()
            .enumerate()
            .any(|(index, sub)| violations(sub, value, &format!("{at}/anyOf/{index}")).is_empty())
    {
        found.push(format!("{at}: matches none of anyOf"));
    }
    let oneof = subschemas(object, "oneOf", at);
    if !oneof.is_empty() {
        let matching = oneof
            .iter()
            .enumerate()
            .filter(|(index, sub)| {
                violations(sub, value, &format!("{at}/oneOf/{index}")).is_empty()
            })
            .count();
        if matching != 1 {
            found.push(format!(
                "{at}: matches {matching} of oneOf, not exactly one"
            ));
        }
    }
    if let Some(sub) = object.get("not")
        && violations(sub, value, &format!("{at}/not")).is_empty()
    {
        found.push(format!("{at}: matches what it must not"));
    }
    found
}

/// Walks a whole schema, whatever instance it may meet: every keyword known and well formed,
/// every pattern compiles, and `required` names only declared properties (except in combinator
/// branches, where `required` alone states which members must be present).
fn check_schema(schema: &Value, at: &str, declared: bool) {
    let object = keywords(schema, at);
    if let Some(types) = object.get("type") {
        type_names(types, at);
    }
    if let Some(pattern) = object.get("pattern") {
        regex::Regex::new(pattern.as_str().expect("a pattern is a string"))
            .unwrap_or_else(|error| panic!("pattern at {at}: {error}"));
    }
    for keyword in [
        "minLength",
        "maxLength",
        "minProperties",
        "minItems",
        "maxItems",
    ] {
        count(object, keyword, at);
    }
    for keyword in ["minimum", "maximum"] {
        number(object, keyword, at);
    }
    if let Some(options) = object.get("enum") {
        assert!(
            options.as_array().is_some_and(|o| !o.is_empty()),
            "enum at {at} is not a non-empty list"
        );
    }
    if let Some(additional) = object.get("additionalProperties") {
        assert!(
            additional.is_boolean(),
            "additionalProperties at {at} must be a boolean"
        );
    }
    let properties = object
        .get("properties")
        .map(|p| p.as_object().expect("properties is an object"));
    if let Some(required) = object.get("required") {
        for name in required.as_array().expect("required is a list") {
            let name = name.as_str().expect("required names strings");
            if declared {
                assert!(
                    properties.is_some_and(|p| p.contains_key(name)),
                    "{at} requires {name}, which it does not declare"
                );
            }
        }
    }
    for (name, property) in properties.into_iter().flatten() {
        check_schema(property, &format!("{at}.{name}"), declared);
    }
    if let Some(items) = object.get("items") {
        check_schema(items, &format!("{at}[]"), declared);
    }
    for keyword in ["allOf", "anyOf", "oneOf"] {
        for (index, sub) in subschemas(object, keyword, at).iter().enumerate() {
            check_schema(sub, &format!("{at}/{keyword}/{index}"), false);
        }
    }
    if let Some(sub) = object.get("not") {
        check_schema(sub, &format!("{at}/not"), false);
    }
}

/// Declared members (under `properties`, through `items`) without a description.
fn undescribed(schema: &Value, at: &str, out: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    for (name, property) in object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let path = format!("{at}.{name}");
        if property
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            out.push(path.clone());
        }
        undescribed(property, &path, out);
    }
    if let Some(items) = object.get("items") {
        undescribed(items, &format!("{at}[]"), out);
    }
}

/// Optional members (declared but not required), by path: `type.member.member`, `[]` for items.
fn optional_members(schema: &Value, at: &str, out: &mut BTreeSet<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let path = format!("{at}.{name}");
        if !required.contains(&name.as_str()) {
            out.insert(path.clone());
        }
        optional_members(property, &path, out);
    }
    if let Some(items) = object.get("items") {
        optional_members(items, &format!("{at}[]"), out);
    }
}

/// Records, per optional member, whether it was seen present (`.0`) and absent (`.1`).
fn observe(schema: &Value, value: &Value, at: &str, seen: &mut BTreeMap<String, (bool, bool)>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    if let (Some(properties), Some(members)) = (
        object.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, property) in properties {
            let path = format!("{at}.{name}");
            let member = members.get(name);
            if !required.contains(&name.as_str()) {
                let entry = seen.entry(path.clone()).or_default();
                if member.is_some() {
                    entry.0 = true;
                } else {
                    entry.1 = true;
                }
            }
            if let Some(member) = member {
                observe(property, member, &path, seen);
            }
        }
    }
    if let (Some(items), Some(elements)) = (object.get("items"), value.as_array()) {
        for element in elements {
            observe(items, element, &format!("{at}[]"), seen);
        }
    }
}

/// Optional members the domain never writes one way: (path, present, absent) as it writes them.
const ONE_WAY_MEMBERS: &[(&str, bool, bool)] = &[
    // `private` is written only when the description changed, so it always holds it.
    ("matter.details_changed.private.description", true, false),
    // A new document always has a title; further versions never carry title or description.
    ("matter.document_added.private.title", true, false),
    ("matter.document_version_added.private.title", false, true),
    (
        "matter.document_version_added.private.description",
        false,
        true,
    ),
];

/// Events made by the domain's own functions: every event type, optional members both present
/// and absent.
fn domain_events() -> Vec<DomainEvent> {
    let mut events = Vec::new();

    // A matter with every optional member of matter.opened, and one with none.
    let mut full = Case::open(&open_matter_fully("2026-0100"));
    let mut bare = Case::open(&open_matter("2026-0101"));
    let case = &mut full;

    case.run(details(ChangeMatterDetails {
        title: Some("Smith v Jones Ltd".to_owned()),
        ..ChangeMatterDetails::default()
    }));
    case.run(details(ChangeMatterDetails {
        practice_area: Some("litigation".to_owned()),
        responsible_attorney: Some("dave".to_owned()),
        originating_attorney: Some("erin".to_owned()),
        statute_of_limitations_on: Some("2029-01-31".to_owned()),
        description: Some("Claim and counterclaim".to_owned()),
        ..ChangeMatterDetails::default()
    }));

    // Custom fields of every kind, sensitive and not, set and cleared.
    let (defined, text) = define_field("court_reference", FieldKind::Text, &[], false);
    events.push(defined);
    let (defined, choice) = define_field(
        "track",
        FieldKind::Choice,
        &["small", "fast", "multi"],
        false,
    );
    events.push(defined);
    let (defined, sensitive) = define_field("client_income", FieldKind::Number, &[], true);
    events.push(defined);
    let (defined, _) = define_field("trial_window", FieldKind::Date, &[], true);
    events.push(defined);
    case.run_with(
        set_field("court_reference", Some(json!("HC-2026-000123"))),
        &field_lookup(&text),
    );
    case.run_with(
        set_field("track", Some(json!("multi"))),
        &field_lookup(&choice),
    );
    case.run_with(set_field("court_reference", None), &field_lookup(&text));
    case.run_with(
        set_field("client_income", Some(json!(52000.5))),
        &field_lookup(&sensitive),
    );
    case.run_with(set_field("client_income", None), &field_lookup(&sensitive));

    case.run(MatterCommand::SetVisibility { firm_visible: true });
    case.run(MatterCommand::SetVisibility {
        firm_visible: false,
    });
    case.run(MatterCommand::AddTeamMember(AddTeamMember {
        user_id: PARALEGAL.to_owned(),
        capacity: TeamCapacity::Paralegal,
    }));
    case.run(MatterCommand::RemoveTeamMember {
        user_id: PARALEGAL.to_owned(),
    });

    let created = contact::create(&person_fully("Jane Smith")).unwrap();
    let contact_id = created_id(std::slice::from_ref(&created));
    events.push(created);
    let party_id =
        created_id(&case.run_with(party(&contact_id, PartyRole::Client), &contact_exists()));
    case.run_with(party(&contact_id, PartyRole::Witness), &contact_exists());
    case.run(MatterCommand::RemoveParty { party_id });

    case.run(MatterCommand::RecordConflictCheck(RecordConflictCheck {
        query: "Jones Ltd; Tom Jones".to_owned(),
        outcome: ConflictOutcome::PotentialConflict,
        reviewer: ATTORNEY.to_owned(),
        hits: vec![ConflictHit {
            matter_number: "2025-0107".to_owned(),
            party_id: new_entity_id(),
            role: PartyRole::OpposingParty,
        }],
        notes: Some("A different Tom Jones; cleared by the partner".to_owned()),
    }));
    bare.run(conflict_check(Vec::new(), None));

    let document_id = created_id(&case.run(MatterCommand::AddDocument(AddDocument {
        document_type: "pleading".to_owned(),
        title: "Particulars of claim".to_owned(),
        description: Some("As served".to_owned()),
        content: UploadedContent {
            filename: Some("particulars.pdf".to_owned()),
            ..upload(HASH, "application/pdf")
        },
    })));
    case.run(MatterCommand::AddDocumentVersion {
        document_id: document_id.clone(),
        content: UploadedContent {
            filename: Some("particulars-amended.pdf".to_owned()),
            ..upload(&"a".repeat(64), "application/pdf")
        },
    });
    case.run(MatterCommand::AddDocumentVersion {
        document_id,
        content: upload(
            &"b".repeat(64),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    });
    bare.run(document(upload(HASH, "text/plain")));

    let note_id = created_id(&case.run(MatterCommand::AddNote(AddNote {
        privileged: true,
        subject: Some("Advice".to_owned()),
        body: "Strong claim; settle above 40k".to_owned(),
    })));
    case.run(MatterCommand::EditNote {
        note_id: note_id.clone(),
        subject: None,
        body: "Strong claim; settle above 45k".to_owned(),
    });
    case.run(MatterCommand::EditNote {
        note_id,
        subject: Some("Advice (revised)".to_owned()),
        body: "Settle above 50k".to_owned(),
    });
    bare.run(note("Called the client"));

    let first = created_id(&case.run(MatterCommand::CreateTask(CreateTask {
        title: "Serve the claim".to_owned(),
        assignee: Some(PARALEGAL.to_owned()),
        due_on: Some("2026-04-30".to_owned()),
    })));
    let second = created_id(&case.run(task("Instruct an expert")));
    case.run(set_task(&first, TaskStatus::Completed));
    case.run(set_task(&first, TaskStatus::Open));
    case.run(set_task(&second, TaskStatus::Cancelled));

    let hearing = created_id(&case.run(MatterCommand::ScheduleCalendarEntry(
        ScheduleCalendarEntry {
            kind: CalendarKind::Hearing,
            title: "Trial".to_owned(),
            starts_at: "2026-09-01T10:00:00+01:00".to_owned(),
            ends_at: Some("2026-09-03T16:30:00+01:00".to_owned()),
            all_day: false,
            rule: Some("Listed by the court".to_owned()),
            location: Some("Royal Courts of Justice, court 12".to_owned()),
        },
    )));
    case.run(MatterCommand::ScheduleCalendarEntry(
        ScheduleCalendarEntry {
            kind: CalendarKind::FilingDeadline,
            title: "Defence due".to_owned(),
            starts_at: "2026-05-14".to_owned(),
            ends_at: Some("2026-05-14".to_owned()),
            all_day: true,
            rule: Some("CPR 15.4: 14 days after service of the particulars".to_owned()),
            location: None,
        },
    ));
    let meeting = created_id(&case.run(entry(CalendarKind::Meeting, None)));
    case.run(MatterCommand::CancelCalendarEntry {
        entry_id: hearing,
        reason: Some("Settled".to_owned()),
    });
    case.run(MatterCommand::CancelCalendarEntry {
        entry_id: meeting,
        reason: None,
    });

    case.run(time(90));
    case.run(MatterCommand::RecordTime(RecordTime {
        user_id: PARALEGAL.to_owned(),
        worked_on: "2026-03-03".to_owned(),
        minutes: 6,
        billable: false,
        description: "Filed the bundle".to_owned(),
    }));

    // Through the lifecycle: with and without reasons, forced and not.
    case.run(force_close(Some("Claim settled; remaining task moot")));
    case.run(to_because(MatterStatus::Open, "Settlement fell through"));
    case.run(to(MatterStatus::Pending));
    case.run(to(MatterStatus::Open));
    bare.run(to(MatterStatus::Closed));
    bare.run(to(MatterStatus::Archived));

    // Contacts: a bare person and an organisation, and updates of both kinds.
    let organisation = contact::create(&CreateContact {
        kind: ContactKind::Organisation,
        details: ContactDetails {
            display_name: "Jones Ltd".to_owned(),
            identifiers: vec![Identifier {
                scheme: "company_number".to_owned(),
                value: "01234567".to_owned(),
            }],
            ..ContactDetails::default()
        },
    })
    .unwrap();
    let organisation_id = created_id(std::slice::from_ref(&organisation));
    let mut state = None;
    contact::Contact::apply(
        &mut state,
        &round_trip(1, &format!("contact:{organisation_id}"), 1, &organisation),
    );
    events.push(organisation);
    let renamed = ContactDetails {
        display_name: "Jones Holdings Ltd".to_owned(),
        ..ContactDetails::default()
    };
    events.push(state.unwrap().update(&renamed).unwrap());
    let bare_person = contact::create(&person("Tom Jones")).unwrap();
    let stream = format!("contact:{}", created_id(std::slice::from_ref(&bare_person)));
    let mut state = None;
    contact::Contact::apply(&mut state, &round_trip(1, &stream, 1, &bare_person));
    events.push(bare_person);
    events.push(
        state
            .unwrap()
            .update(&person_fully("Tom Jones").details)
            .unwrap(),
    );

    events.extend(full.written);
    events.extend(bare.written);
    events.extend(records_events());
    events.extend(freeze_events());
    events
}

/// A matter frozen for an incident and unfrozen again, as the matter decides them.
fn freeze_events() -> Vec<DomainEvent> {
    let mut case = Case::open(&open_matter("2026-0102"));
    let mut events = Vec::new();
    for freeze in [true, false] {
        let decided = {
            let matter = case.matter();
            if freeze {
                matter.freeze("INC-2026-7: suspected exfiltration")
            } else {
                matter.unfreeze("INC-2026-7 closed")
            }
        };
        let decided = decided.unwrap();
        case.record(&decided);
        events.extend(decided);
    }
    events
}

/// Records-management events, written by the records service (src/service/records.rs) with
/// their optional members present and absent.
fn records_events() -> Vec<DomainEvent> {
    use docket::domain::records::*;
    let id = "019aef00-0000-7000-8000-0000000000aa".to_owned();
    let erased = |key_id: Option<&str>| SubjectErased {
        request_id: id.clone(),
        subject: "contact:019aef00-0000-7000-8000-0000000000bb".to_owned(),
        key_id: key_id.map(str::to_owned),
        reason: "DSR-2026-114".to_owned(),
        basis: ErasureBasis::Request,
        requested_by: "user:p.one".to_owned(),
        confirmed_by: "user:p.two".to_owned(),
        erased: vec!["client_data".to_owned(), "blind_indexes".to_owned()],
    };
    vec![
        DomainEvent::ErasureRequested(ErasureRequested {
            request_id: id.clone(),
            subject: "matter:2026-0100".to_owned(),
            reason: "DSR-2026-114".to_owned(),
            basis: ErasureBasis::Request,
        }),
        DomainEvent::SubjectErased(erased(Some("dk_0123456789abcdef"))),
        DomainEvent::SubjectErased(erased(None)),
        DomainEvent::HoldPlaced(HoldPlaced {
            hold_id: id.clone(),
            target: "matter:2026-0100".to_owned(),
            reason: "LIT-77".to_owned(),
        }),
        DomainEvent::HoldReleased(HoldReleased {
            hold_id: id.clone(),
            reason: "settled".to_owned(),
        }),
        DomainEvent::RetentionPolicySet(RetentionPolicySet {
            practice_area: "employment".to_owned(),
            keep_years: Some(6),
        }),
        DomainEvent::RetentionPolicySet(RetentionPolicySet {
            practice_area: "employment".to_owned(),
            keep_years: None,
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_by_docket_match_their_schemas() {
    let test = TestLog::new(Backend::Sqlite).await;
    let log = test.open().await;
    sample_log(&log, 4).await;
    let pages: Vec<_> = log.pages_from(1).try_collect().await.unwrap();
    let schemas = schemas();
    let mut checked = 0;
    for event in pages.into_iter().flatten() {
        let key = (event.event_type.clone(), u64::from(event.schema_version));
        let Some(schema) = schemas.get(&key) else {
            continue;
        };
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            violations(schema, &payload, &event.event_type),
            Vec::<String>::new()
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "the genesis and the key rotation were checked");
}

#[test]
fn every_domain_event_type_has_a_schema_for_its_current_version() {
    let schemas = schemas();
    assert_eq!(DomainEvent::TYPES.len(), 54);
    for (event_type, version) in DomainEvent::TYPES {
        let schema = schema_of(&schemas, event_type, *version);
        assert_eq!(
            schema["$id"],
            format!("https://docket.example/schema/events/{event_type}.v{version}.json")
        );
        assert_eq!(
            schema["title"],
            format!("{event_type} (schema version {version})")
        );
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false, "{event_type}");
    }
    // And nothing else: every file is a log or domain type at a version up to the current one.
    for (event_type, version) in schemas.keys() {
        let current = DomainEvent::current_version(event_type).or_else(|| {
            LOG_TYPES
                .iter()
                .chain(docket::integrations::webhooks::events::TYPES)
                .chain(docket::monitoring::alert_log::TYPES)
                .find(|(t, _)| t == event_type)
                .map(|(_, v)| *v)
        });
        let current = current
            .unwrap_or_else(|| panic!("{event_type}.v{version}.json is no known event type"));
        assert!(
            (1..=u64::from(current)).contains(version),
            "{event_type}.v{version}.json"
        );
    }
    assert!(
        schemas.contains_key(&("matter.time_recorded".to_owned(), 1)),
        "the v1 shape is documented"
    );
}

#[test]
fn every_schema_uses_only_checked_keywords() {
    for ((event_type, version), schema) in schemas() {
        check_schema(&schema, &format!("{event_type}.v{version}"), true);
    }
}

#[test]
fn every_member_of_a_domain_event_is_described_and_client_data_is_marked() {
    let mut missing = Vec::new();
    let mut unmarked = Vec::new();
    for ((event_type, version), schema) in schemas() {
        if DomainEvent::current_version(&event_type).is_none() {
            continue;
        }
        let at = format!("{event_type}.v{version}");
        undescribed(&schema, &at, &mut missing);
        if let Some(private) = schema["properties"].get("private") {
            client_data_unmarked(private, &format!("{at}.private"), &mut unmarked);
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "members without a description"
    );
    assert_eq!(
        unmarked,
        Vec::<String>::new(),
        "client data not marked as such"
    );
}

/// Members under `private` whose description does not say they are client data.
fn client_data_unmarked(schema: &Value, at: &str, out: &mut Vec<String>) {
    if !schema["description"]
        .as_str()
        .is_some_and(|d| d.contains("Client data"))
    {
        out.push(at.to_owned());
    }
    for (name, property) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        client_data_unmarked(property, &format!("{at}.{name}"), out);
    }
    if let Some(items) = schema.get("items") {
        client_data_unmarked(items, &format!("{at}[]"), out);
    }
}

#[test]
fn the_readme_lists_every_event_type() {
    let readme = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/events/README.md"),
    )
    .unwrap();
    for ((event_type, version), _) in schemas() {
        assert!(
            readme.contains(&format!("[`{event_type}`]({event_type}.v{version}.json)")),
            "README.md does not link {event_type}.v{version}.json"
        );
    }
}

#[test]
fn events_decided_by_the_domain_match_their_schemas() {
    let schemas = schemas();
    let events = domain_events();
    let mut types = BTreeSet::new();
    let mut seen = BTreeMap::new();
    for event in &events {
        let draft = event.to_draft().unwrap();
        assert_eq!(
            Some(draft.schema_version),
            DomainEvent::current_version(&draft.event_type)
        );
        // As the log stores it: canonical JSON text.
        let payload: Value =
            serde_json::from_str(&canonical_json(&draft.payload).unwrap()).unwrap();
        let schema = schema_of(&schemas, &draft.event_type, draft.schema_version);
        assert_eq!(
            violations(schema, &payload, &draft.event_type),
            Vec::<String>::new(),
            "{payload}"
        );
        observe(schema, &payload, &draft.event_type, &mut seen);
        types.insert(draft.event_type);
    }

    let all: BTreeSet<String> = DomainEvent::TYPES
        .iter()
        .filter(|(t, _)| !IDENTITY_TYPES.contains(t))
        .map(|(t, _)| (*t).to_owned())
        .collect();
    assert_eq!(types, all, "every event type was produced");

    let mut optional = BTreeSet::new();
    for (event_type, version) in DomainEvent::TYPES
        .iter()
        .filter(|(t, _)| !IDENTITY_TYPES.contains(t))
    {
        optional_members(
            schema_of(&schemas, event_type, *version),
            event_type,
            &mut optional,
        );
    }
    let mut missing = Vec::new();
    for path in &optional {
        let (present, absent) = seen.get(path).copied().unwrap_or_default();
        let expected = ONE_WAY_MEMBERS
            .iter()
            .find(|(p, _, _)| p == path)
            .map_or((true, true), |(_, present, absent)| (*present, *absent));
        if (present, absent) != expected {
            missing.push(format!(
                "{path}: present {present}, absent {absent}, expected {expected:?}"
            ));
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "optional members both present and absent"
    );
}

fn time_recorded_v1() -> Value {
    json!({
        "time_entry_id": new_entity_id(),
        "user_id": ATTORNEY,
        "worked_on": "2025-11-03",
        "hours": "1.25",
        "billable": true,
        "private": {"description": "Advice call"},
    })
}

#[test]
fn time_recorded_v1_payloads_match_the_v1_schema_and_upcast_to_the_v2_schema() {
    let schemas = schemas();
    let v1_schema = schema_of(&schemas, "matter.time_recorded", 1);
    let v2_schema = schema_of(&schemas, "matter.time_recorded", 2);
    let v1 = time_recorded_v1();
    assert_eq!(violations(v1_schema, &v1, "v1"), Vec::<String>::new());
    assert_eq!(
        violations(v2_schema, &v1, "v2"),
        ["v2: missing minutes", "v2: unexpected member hours"]
    );

    let event = stored(1, "matter:2026-0001", 1, "matter.time_recorded", 1, &v1);
    let upcast = DomainEvent::decode(&event)
        .unwrap()
        .unwrap()
        .to_draft()
        .unwrap();
    assert_eq!(upcast.schema_version, 2);
    assert_eq!(upcast.payload["minutes"], 75);
    assert_eq!(
        violations(v2_schema, &upcast.payload, "v2"),
        Vec::<String>::new()
    );
    assert_eq!(
        violations(v1_schema, &upcast.payload, "v1"),
        ["v1: missing hours", "v1: unexpected member minutes"]
    );

    for hours in ["1.5", "2", "0.000001"] {
        let mut v1 = v1.clone();
        v1["hours"] = json!(hours);
        assert_eq!(
            violations(v1_schema, &v1, "v1"),
            Vec::<String>::new(),
            "{hours}"
        );
    }
    for hours in [
        json!("1,5"),
        json!("-1"),
        json!(".5"),
        json!(1.5),
        json!("1.0000001"),
    ] {
        let mut v1 = v1.clone();
        v1["hours"] = hours.clone();
        assert_eq!(violations(v1_schema, &v1, "v1").len(), 1, "{hours}");
    }
}

fn opened_payload() -> Value {
    let events = docket::domain::matter::decide::open(&open_matter_fully("2026-0200"), 0).unwrap();
    events[0].to_draft().unwrap().payload
}

fn check(event_type: &str, payload: &Value) -> Vec<String> {
    let schemas = schemas();
    let version = DomainEvent::current_version(event_type).unwrap();
    violations(
        schema_of(&schemas, event_type, version),
        payload,
        event_type,
    )
}

#[test]
fn the_schema_checker_reports_what_does_not_match() {
    let schemas = schemas();
    let genesis = &schemas[&("log.genesis".to_owned(), 1)];
    let wrong: Value =
        serde_json::json!({"format": "other", "log_id": "x", "key_id": "AB", "extra": 1});
    let found = violations(genesis, &wrong, "log.genesis");
    assert_eq!(found.len(), 5, "{found:?}");
}

#[test]
fn a_payload_missing_a_required_member_is_rejected() {
    let mut payload = opened_payload();
    assert_eq!(check("matter.opened", &payload), Vec::<String>::new());
    payload.as_object_mut().unwrap().remove("title");
    assert_eq!(
        check("matter.opened", &payload),
        ["matter.opened: missing title"]
    );

    let mut payload = opened_payload();
    payload["private"] = json!({});
    assert_eq!(
        check("matter.opened", &payload),
        Vec::<String>::new(),
        "the description is optional"
    );
    payload.as_object_mut().unwrap().remove("private");
    assert_eq!(
        check("matter.opened", &payload),
        ["matter.opened: missing private"]
    );

    let note =
        json!({"note_id": new_entity_id(), "privileged": false, "private": {"subject": "s"}});
    assert_eq!(
        check("matter.note_added", &note),
        ["matter.note_added.private: missing body"]
    );
}

#[test]
fn a_payload_with_an_extra_member_is_rejected() {
    let mut payload = opened_payload();
    payload["client_name"] = json!("Jane Smith");
    assert_eq!(
        check("matter.opened", &payload),
        ["matter.opened: unexpected member client_name"]
    );

    // Client data outside the declared private members is refused too.
    let mut payload = opened_payload();
    payload["private"]["client_name"] = json!("Jane Smith");
    assert_eq!(
        check("matter.opened", &payload),
        ["matter.opened.private: unexpected member client_name"]
    );

    let task = json!({"task_id": new_entity_id(), "reason": "done"});
    assert_eq!(
        check("matter.task_completed", &task),
        ["matter.task_completed: unexpected member reason"]
    );
}

#[test]
fn payloads_with_wrong_values_are_rejected() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "matter.opened",
            json!({"status": "reopened"}),
            "matter.opened.status: \"reopened\" is not one of",
        ),
        (
            "matter.opened",
            json!({"status": "closed"}),
            "matter.opened.status: \"closed\" is not one of",
        ),
        (
            "matter.opened",
            json!({"opened_on": "2026-2-3"}),
            "matter.opened.opened_on: does not match",
        ),
        (
            "matter.opened",
            json!({"matter_number": "2026-0001a"}),
            "matter.opened.matter_number: does not match",
        ),
        (
            "matter.opened",
            json!({"title": ""}),
            "matter.opened.title: shorter than 1",
        ),
        (
            "matter.opened",
            json!({"title": "x".repeat(301)}),
            "matter.opened.title: longer than 300",
        ),
        (
            "matter.opened",
            json!({"title": 7}),
            "matter.opened.title: not string",
        ),
        (
            "matter.opened",
            json!({"responsible_attorney": "a b"}),
            "matter.opened.responsible_attorney: does not match",
        ),
    ];
    for (event_type, change, expected) in cases {
        let mut payload = opened_payload();
        for (name, value) in change.as_object().unwrap() {
            payload[name] = value.clone();
        }
        let found = check(event_type, &payload);
        assert!(
            found.len() == 1 && found[0].starts_with(expected),
            "{change}: {found:?}"
        );
    }

    let time = |minutes: Value| {
        json!({"time_entry_id": new_entity_id(), "user_id": ATTORNEY, "worked_on": "2026-03-02",
            "minutes": minutes, "billable": true, "private": {"description": "d"}})
    };
    assert_eq!(
        check("matter.time_recorded", &time(json!(90))),
        Vec::<String>::new()
    );
    assert_eq!(
        check("matter.time_recorded", &time(json!(90.0))),
        Vec::<String>::new(),
        "90.0 is an integer"
    );
    assert_eq!(
        check("matter.time_recorded", &time(json!(1.5))),
        ["matter.time_recorded.minutes: not integer"]
    );
    assert_eq!(
        check("matter.time_recorded", &time(json!(0))),
        ["matter.time_recorded.minutes: less than 1"]
    );
    assert_eq!(
        check("matter.time_recorded", &time(json!(1441))),
        ["matter.time_recorded.minutes: more than 1440"]
    );
    assert_eq!(
        check("matter.time_recorded", &time(json!("90"))),
        ["matter.time_recorded.minutes: not integer"]
    );

    let hash = json!({"document_id": new_entity_id(), "document_type": "pleading",
        "content": {"version": 1, "content_hash": HASH.to_uppercase(), "size": 1, "media_type": "text/plain", "uploaded_by": ATTORNEY},
        "private": {}});
    assert_eq!(
        check("matter.document_added", &hash),
        ["matter.document_added.content.content_hash: does not match ^[0-9a-f]{64}$"]
    );

    let ids =
        json!({"party_id": new_entity_id().to_uppercase(), "contact_id": "x", "role": "judge"});
    assert_eq!(check("matter.party_added", &ids).len(), 3);
}

#[test]
fn arrays_and_combinators_are_checked() {
    let contact = |private: Value, kind: &str| json!({"contact_id": new_entity_id(), "kind": kind, "private": private});
    let ok = json!({"display_name": "Jane", "emails": [{"value": "jane@example.com"}]});
    assert_eq!(
        check("contact.created", &contact(ok, "person")),
        Vec::<String>::new()
    );
    let empty = json!({"display_name": "Jane", "emails": []});
    assert_eq!(
        check("contact.created", &contact(empty, "person")),
        ["contact.created.private.emails: fewer than 1 items"]
    );
    let lines = json!({"display_name": "Jane", "addresses": [{"lines": ["1", "2", "3", "4", "5", "6", "7"]}]});
    assert_eq!(
        check("contact.created", &contact(lines, "person")),
        ["contact.created.private.addresses[0].lines: more than 6 items"]
    );
    let phone = json!({"display_name": "Jane", "phones": [{"value": "call me"}]});
    assert_eq!(check("contact.created", &contact(phone, "person")).len(), 1);
    let named = json!({"display_name": "Jones Ltd", "given_name": "Tom"});
    assert_eq!(
        check("contact.created", &contact(named.clone(), "person")),
        Vec::<String>::new()
    );
    assert_eq!(
        check("contact.created", &contact(named, "organisation")),
        ["contact.created: matches none of anyOf"]
    );

    let both = json!({"key": "track", "value": "fast", "private": {"value": "fast"}});
    assert_eq!(
        check("matter.custom_field_set", &both),
        ["matter.custom_field_set: matches 0 of oneOf, not exactly one"]
    );
    let neither = json!({"key": "track"});
    assert_eq!(
        check("matter.custom_field_set", &neither),
        ["matter.custom_field_set: matches 0 of oneOf, not exactly one"]
    );
    let cleared = json!({"key": "track", "value": null});
    assert_eq!(
        check("matter.custom_field_set", &cleared),
        Vec::<String>::new()
    );
    let object = json!({"key": "track", "value": {"a": 1}});
    assert_eq!(
        check("matter.custom_field_set", &object),
        ["matter.custom_field_set.value: not string or number or null"]
    );

    let entry = |kind: &str, starts_at: &str, all_day: bool, rule: Option<&str>| {
        let mut entry = json!({"entry_id": new_entity_id(), "kind": kind, "title": "t", "starts_at": starts_at, "all_day": all_day});
        if let Some(rule) = rule {
            entry["rule"] = json!(rule);
        }
        entry
    };
    let schedule = "matter.calendar_entry_scheduled";
    assert_eq!(
        check(
            schedule,
            &entry("hearing", "2026-04-01T09:00:00Z", false, None)
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        check(
            schedule,
            &entry("deadline", "2026-04-01", true, Some("CPR 7.5"))
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        check(schedule, &entry("deadline", "2026-04-01", true, None)),
        [format!("{schedule}/allOf/1: matches none of anyOf")]
    );
    assert_eq!(
        check(schedule, &entry("hearing", "2026-04-01", false, None)),
        [format!(
            "{schedule}/allOf/0: matches 0 of oneOf, not exactly one"
        )]
    );

    let field = json!({"key": "track", "label": "Track", "kind": "text", "choices": ["a"], "sensitive": false});
    assert_eq!(
        check("custom_field.defined", &field),
        ["custom_field.defined: matches 0 of oneOf, not exactly one"]
    );
}

#[test]
#[should_panic(expected = "unsupported keyword format")]
fn the_checker_refuses_keywords_it_does_not_implement() {
    let schema = json!({"type": "string", "format": "uuid"});
    violations(&schema, &json!("x"), "test");
}

#[test]
#[should_panic(expected = "unsupported keyword patternProperties")]
fn the_checker_refuses_unimplemented_keywords_even_where_no_instance_reaches() {
    let schema =
        json!({"type": "object", "properties": {"a": {"type": "object", "patternProperties": {}}}});
    check_schema(&schema, "test", false);
}

#[test]
#[should_panic(expected = "unsupported type date")]
fn the_checker_refuses_types_it_does_not_know() {
    violations(&json!({"type": ["string", "date"]}), &json!(1), "test");
}

/// Runs the identity service through every kind of change and checks each event it wrote
/// against its schema (and that every identity type was written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_events_match_their_schemas() {
    use docket::domain::identity::{ApiClientReach, PartnerAccess, Role};
    use docket::identity::admin::WallSpec;
    use docket::identity::login::SecondFactor;
    use docket::log::Actor;
    use zeroize::Zeroizing;

    let test = TestLog::new(Backend::Sqlite).await;
    let docket = test.open_docket(std::time::Duration::ZERO).await;
    let identity = &docket.identity;
    let system = Actor::system();
    let user = crate::support::sign_in(identity, "k.ito", Role::Attorney).await;
    identity
        .change_role(
            &system,
            None,
            "k.ito",
            Role::Partner,
            &["employment".to_owned()],
        )
        .await
        .unwrap();
    identity
        .login(
            &user.email,
            Zeroizing::new(user.password.clone()),
            SecondFactor::RecoveryCode(&user.recovery_codes[0]),
            Some("10.0.0.7"),
        )
        .await
        .unwrap();
    let failed = identity
        .login(
            &user.email,
            Zeroizing::new("wrong".into()),
            SecondFactor::Totp("000000"),
            None,
        )
        .await;
    assert!(failed.is_err());
    let unknown = identity
        .login(
            "nobody@firm.example",
            Zeroizing::new("wrong".into()),
            SecondFactor::Totp("000000"),
            None,
        )
        .await;
    assert!(unknown.is_err());
    identity
        .change_password(
            &user.principal,
            Zeroizing::new(user.password.clone()),
            Zeroizing::new("Lantern-Oxbow-Thistle-93".into()),
            &user.code(1),
        )
        .await
        .unwrap();
    identity
        .disable_user(&system, None, "k.ito", "left")
        .await
        .unwrap();
    identity.enable_user(&system, None, "k.ito").await.unwrap();
    identity
        .reissue_enrolment(&system, None, "k.ito")
        .await
        .unwrap();
    let _second = crate::support::sign_in(identity, "r.diaz", Role::Paralegal).await;
    identity
        .set_group(
            &system,
            None,
            "litigation",
            "Litigation",
            &["r.diaz".to_owned()],
        )
        .await
        .unwrap();
    let wall = identity
        .erect_wall(
            &system,
            None,
            &WallSpec {
                name: "W".into(),
                reason: "conflict".into(),
                screened_users: vec!["r.diaz".into()],
                screened_groups: vec!["litigation".into()],
                matters: vec!["2026-0001".into()],
                clients: vec![new_entity_id()],
            },
        )
        .await
        .unwrap();
    identity
        .lift_wall(&system, None, &wall, "resolved")
        .await
        .unwrap();
    identity
        .break_glass(
            &system,
            None,
            "r.diaz",
            "2026-0001",
            "urgent court deadline today",
        )
        .await
        .unwrap();
    identity
        .register_api_client(&system, None, "billing", "Billing")
        .await
        .unwrap();
    let key = identity
        .issue_api_key(
            &system,
            None,
            "billing",
            Some(chrono::Utc::now() + chrono::Duration::days(30)),
        )
        .await
        .unwrap();
    identity
        .issue_api_key(&system, None, "billing", None)
        .await
        .unwrap();
    identity
        .revoke_api_key(&system, None, &key.key_id, "revoked")
        .await
        .unwrap();
    let spare = identity
        .issue_api_key(&system, None, "billing", None)
        .await
        .unwrap();
    identity
        .rotate_api_key(&system, None, &spare.key_id, 10, None)
        .await
        .unwrap();
    identity
        .set_api_client_scopes(
            &system,
            None,
            "billing",
            &docket::identity::api_clients::ScopesRequest {
                reach: ApiClientReach::Listed,
                matters: vec!["2026-0001".into()],
                commands: vec!["addNote".into()],
                expires_at: Some(chrono::Utc::now() + chrono::Duration::days(90)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    identity
        .set_firm_policy(&system, None, PartnerAccess::PracticeAreas, 30)
        .await
        .unwrap();
    // Lock an account by failures (through a second handle that does not slow attempts down).
    let locked = crate::support::sign_in(identity, "z.lock", Role::Staff).await;
    let quick = docket::identity::Identity::open_with(
        docket.log.clone(),
        &test.options(),
        docket::identity::secret::throttle::ThrottlePolicy {
            base_delay: std::time::Duration::ZERO,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    for _ in 0..10 {
        let refused = quick
            .login(
                &locked.email,
                Zeroizing::new("wrong".into()),
                SecondFactor::Totp("000000"),
                None,
            )
            .await;
        assert!(refused.is_err());
    }
    identity.directory_handle().refresh().await.unwrap();
    identity.unlock_user(&system, None, "z.lock").await.unwrap();
    identity
        .revoke_credentials(
            &system,
            None,
            &docket::identity::incident::Whose::ApiClient("billing".into()),
            "INC-1",
        )
        .await
        .unwrap();
    identity
        .lockdown(&system, None, "INC-1: everyone")
        .await
        .unwrap();

    let schemas = schemas();
    let events = docket
        .log
        .store()
        .read_stream_page("directory", 1, 10_000)
        .await
        .unwrap();
    let mut types = BTreeSet::new();
    for event in &events {
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        let schema = schema_of(&schemas, &event.event_type, event.schema_version);
        assert_eq!(
            violations(schema, &payload, &event.event_type),
            Vec::<String>::new(),
            "{payload}"
        );
        types.insert(event.event_type.clone());
    }
    let missing: Vec<&&str> = IDENTITY_TYPES
        .iter()
        .filter(|t| !types.contains(**t))
        .collect();
    assert!(missing.is_empty(), "not written: {missing:?}");
}

#[test]
fn alert_events_match_their_schema() {
    use docket::monitoring::alert_log::AlertRaised;
    use docket::monitoring::alerts::{Alert, AlertKind};
    use docket::monitoring::anomaly::rules::{Detector, Observation};
    use docket::monitoring::anomaly::{Rule, Threshold, Thresholds};

    let schemas = schemas();
    let schema = schema_of(&schemas, "alert.raised", 1);
    let mut thresholds = Thresholds::default();
    thresholds.set(Rule::ManyMatters, Threshold::new(2, 600));
    let mut detector = Detector::new(thresholds);
    let time = |ms: i64| {
        docket::log::time::format_timestamp(
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap(),
        )
    };
    let mut raised: Vec<AlertRaised> = Vec::new();
    for (n, matter) in ["2026-0001", "2026-0002"].iter().enumerate() {
        let observation = Observation {
            rule: Rule::ManyMatters,
            subject: "user:eve".into(),
            at_ms: 1_780_000_000_000 + i64::try_from(n).unwrap(),
            matter: Some((*matter).into()),
            position: 7 + u64::try_from(n).unwrap(),
        };
        raised.extend(detector.observe(observation, time));
    }
    assert_eq!(raised.len(), 1);
    raised.push(AlertRaised::integrity(
        &Alert {
            kind: AlertKind::CheckpointMismatch,
            position: Some(12),
            event_id: None,
            reason: "root_differs".into(),
            detail: "the root differs".into(),
        },
        &time(1_780_000_000_000),
    ));
    for alert in raised {
        let value = serde_json::to_value(&alert).unwrap();
        assert_eq!(
            violations(schema, &value, "alert.raised"),
            Vec::<String>::new()
        );
    }
}
