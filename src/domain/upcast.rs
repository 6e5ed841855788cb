//! Upcasters: stored payloads of older schema versions are brought to the current shape on read,
//! so the log is never rewritten and every reader sees one shape per event type.
//!
//! `matter.time_recorded` v1 carried the duration as `hours`, a decimal string such as "1.5";
//! v2 carries whole `minutes`. The v1 -> v2 step rounds to the nearest minute.

use serde_json::Value;

/// Brings `payload` from `stored` to `current`; an error says why it could not.
pub fn to_current(
    event_type: &str,
    stored: u32,
    current: u32,
    mut payload: Value,
) -> Result<Value, String> {
    if stored > current {
        return Err(format!(
            "schema version {stored} is newer than this build understands ({current})"
        ));
    }
    let mut version = stored;
    while version < current {
        payload = step(event_type, version, payload)?;
        version += 1;
    }
    Ok(payload)
}

fn step(event_type: &str, from: u32, payload: Value) -> Result<Value, String> {
    match (event_type, from) {
        ("matter.time_recorded", 1) => time_recorded_v1_to_v2(payload),
        _ => Err(format!("no upcaster from version {from}")),
    }
}

fn time_recorded_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let object = payload
        .as_object_mut()
        .ok_or_else(|| "payload is not an object".to_owned())?;
    let hours = object
        .remove("hours")
        .and_then(|hours| hours.as_str().map(str::to_owned))
        .ok_or_else(|| "v1 needs `hours` as a decimal string".to_owned())?;
    let minutes = hours_to_minutes(&hours).ok_or_else(|| "`hours` is not a decimal".to_owned())?;
    object.insert("minutes".to_owned(), Value::from(minutes));
    Ok(payload)
}

/// "1.5" -> 90, "0.1" -> 6, "2" -> 120; at most 24 hours.
fn hours_to_minutes(hours: &str) -> Option<u32> {
    let (whole, fraction) = hours.split_once('.').unwrap_or((hours, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 6 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let scale = 10u64.pow(u32::try_from(fraction.len()).ok()?);
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let micro_hours = whole.checked_mul(scale)?.checked_add(fraction)?;
    // minutes = micro_hours * 60 / scale, rounded half up.
    let doubled = micro_hours.checked_mul(120)?.checked_add(scale)?;
    let minutes = doubled / (scale * 2);
    // v2 entries last 1 to 1440 minutes; a non-zero v1 duration under half a minute counts as 1.
    let minutes = if minutes == 0 && micro_hours > 0 {
        1
    } else {
        minutes
    };
    u32::try_from(minutes)
        .ok()
        .filter(|m| (1..=24 * 60).contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_hours_become_minutes() {
        assert_eq!(hours_to_minutes("1.5"), Some(90));
        assert_eq!(hours_to_minutes("0.1"), Some(6));
        assert_eq!(hours_to_minutes("2"), Some(120));
        assert_eq!(hours_to_minutes("0.0083"), Some(1));
        assert_eq!(hours_to_minutes("0"), None);
        assert_eq!(hours_to_minutes("153722867280912931"), None);
        assert_eq!(hours_to_minutes("0.01"), Some(1));
        assert_eq!(hours_to_minutes("25"), None);
        assert_eq!(hours_to_minutes("-1"), None);
        assert_eq!(hours_to_minutes("1,5"), None);
        assert_eq!(hours_to_minutes(""), None);
    }

    #[test]
    fn time_recorded_v1_is_upcast_to_v2() {
        let v1 = json!({"time_entry_id": "t", "user_id": "u", "worked_on": "2026-01-02",
            "hours": "1.25", "billable": true, "private": {"description": "d"}});
        let v2 = to_current("matter.time_recorded", 1, 2, v1).unwrap();
        assert_eq!(v2["minutes"], json!(75));
        assert!(v2.get("hours").is_none());
    }

    #[test]
    fn newer_versions_than_the_build_are_refused() {
        assert!(to_current("matter.opened", 2, 1, json!({})).is_err());
    }
}
