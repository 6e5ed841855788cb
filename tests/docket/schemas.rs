//! Every event Docket writes matches the JSON Schema of its type in schema/events/.
//!
//! The schemas use a small subset of JSON Schema (object, string, required, properties,
//! additionalProperties: false, const, pattern); the checker below implements exactly that
//! subset and refuses any other keyword, so a schema can never be silently half-checked.

use std::collections::HashMap;
use std::path::PathBuf;

use futures::TryStreamExt;
use serde_json::Value;

use crate::support::{Backend, TestLog, sample_log};

const KNOWN_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "additionalProperties",
    "required",
    "properties",
    "const",
    "pattern",
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
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        schemas.insert((event_type.to_owned(), version.parse().unwrap()), schema);
    }
    schemas
}

/// Checks `value` against `schema`; returns what does not match.
fn violations(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut found = Vec::new();
    let object = schema.as_object().expect("a schema is an object");
    for keyword in object.keys() {
        assert!(
            KNOWN_KEYWORDS.contains(&keyword.as_str()),
            "unsupported keyword {keyword} at {at}"
        );
    }
    if let Some(expected) = object.get("const")
        && value != expected
    {
        found.push(format!("{at}: expected {expected}"));
    }
    match object.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(members) = value.as_object() else {
                return vec![format!("{at}: not an object")];
            };
            for required in object
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !members.contains_key(required.as_str().unwrap()) {
                    found.push(format!("{at}: missing {required}"));
                }
            }
            let properties = object.get("properties").and_then(Value::as_object);
            for (name, member) in members {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => {
                        found.extend(violations(property, member, &format!("{at}.{name}")))
                    }
                    None if object.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        found.push(format!("{at}: unexpected member {name}"))
                    }
                    None => {}
                }
            }
        }
        Some("string") => match value.as_str() {
            Some(text) => {
                if let Some(pattern) = object.get("pattern").and_then(Value::as_str)
                    && !regex::Regex::new(pattern).unwrap().is_match(text)
                {
                    found.push(format!("{at}: does not match {pattern}"));
                }
            }
            None => found.push(format!("{at}: not a string")),
        },
        Some(other) => panic!("unsupported type {other} at {at}"),
        None => {}
    }
    found
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
fn the_schema_checker_reports_what_does_not_match() {
    let schemas = schemas();
    let genesis = &schemas[&("log.genesis".to_owned(), 1)];
    let wrong: Value =
        serde_json::json!({"format": "other", "log_id": "x", "key_id": "AB", "extra": 1});
    let found = violations(genesis, &wrong, "log.genesis");
    assert_eq!(found.len(), 5, "{found:?}");
}
