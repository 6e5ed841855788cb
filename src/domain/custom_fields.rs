//! Custom fields: defined once for the firm (each in its own `custom_field:<key>` stream, so a
//! key can be defined only once), then set on matters with values of the defined kind.

use serde_json::Value;

use super::commands::DefineCustomField;
use super::error::DomainError;
use super::events::{CustomFieldDefined, DomainEvent, FieldKind, RecordedEvent};
use super::ids::check_field_key;
use super::rules::{date, required_text};

/// A custom field's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomField {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    pub choices: Vec<String>,
    pub sensitive: bool,
}

impl CustomField {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Option<Self> {
        events
            .into_iter()
            .find_map(|recorded| match &recorded.event {
                DomainEvent::CustomFieldDefined(defined) => Some(CustomField {
                    key: defined.key.clone(),
                    label: defined.label.clone(),
                    kind: defined.kind,
                    choices: defined.choices.clone(),
                    sensitive: defined.sensitive,
                }),
                _ => None,
            })
    }

    /// A value of this field's kind, normalised: text trimmed, numbers finite, dates ISO, choices
    /// among the defined ones.
    pub fn check_value(&self, value: &Value) -> Result<Value, DomainError> {
        let wrong = || DomainError::invalid("value", format!("must be a {:?} value", self.kind));
        match (self.kind, value) {
            (FieldKind::Text, Value::String(text)) => {
                Ok(Value::String(required_text("value", text, 2_000)?))
            }
            (FieldKind::Number, Value::Number(number))
                if number.as_f64().is_some_and(f64::is_finite) =>
            {
                Ok(value.clone())
            }
            (FieldKind::Date, Value::String(text)) => Ok(Value::String(date("value", text)?)),
            (FieldKind::Choice, Value::String(choice)) if self.choices.contains(choice) => {
                Ok(value.clone())
            }
            (FieldKind::Choice, Value::String(_)) => Err(DomainError::invalid(
                "value",
                "not one of the field's choices",
            )),
            _ => Err(wrong()),
        }
    }
}

/// Defines a field; `stream_version` is the key's stream (non-zero when already defined).
pub fn define(
    command: &DefineCustomField,
    stream_version: u64,
) -> Result<DomainEvent, DomainError> {
    if stream_version > 0 {
        return Err(DomainError::DuplicateCustomField);
    }
    check_field_key(&command.key)?;
    let choices: Vec<String> = command
        .choices
        .iter()
        .map(|choice| required_text("choices", choice, 120))
        .collect::<Result<_, _>>()?;
    match command.kind {
        FieldKind::Choice if choices.is_empty() || choices.len() > 100 => {
            return Err(DomainError::invalid(
                "choices",
                "a choice field needs 1 to 100 choices",
            ));
        }
        FieldKind::Choice => {}
        _ if !choices.is_empty() => {
            return Err(DomainError::invalid(
                "choices",
                "only choice fields have choices",
            ));
        }
        _ => {}
    }
    Ok(DomainEvent::CustomFieldDefined(CustomFieldDefined {
        key: command.key.clone(),
        label: required_text("label", &command.label, 120)?,
        kind: command.kind,
        choices,
        sensitive: command.sensitive,
    }))
}
