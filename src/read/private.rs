//! Client data in read-model rows. A row keeps it only sealed (the column form of its event's
//! `private` member, see [`crate::vault::SealedRef`]); a reader opens it with the vault when an
//! authorised request resolves a field that shows it.
//!
//! Each row opens its column at most once ([`Opening`]), and a list opens all its rows with one
//! load of keys ([`open_all`]), so a page of notes costs one key lookup, not one per note.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::vault::{Column, Vault, VaultError};

/// What a sealed column opened to: the whole `private` member of its event, or nothing because
/// the subject's key was destroyed.
#[derive(Debug, Clone, PartialEq)]
pub enum Private {
    Plain(Value),
    Erased,
}

impl Private {
    pub fn is_erased(&self) -> bool {
        matches!(self, Private::Erased)
    }

    /// A member of the private object: `None` when absent, null or erased.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Private::Plain(value) => value.get(name).filter(|value| !value.is_null()),
            Private::Erased => None,
        }
    }

    /// A text member: `None` when absent or erased.
    pub fn text(&self, name: &str) -> Option<String> {
        self.member(name).and_then(Value::as_str).map(str::to_owned)
    }

    /// The private object as the domain's struct; its defaults when erased.
    pub fn decode<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        match self {
            Private::Plain(value) => serde_json::from_value(value.clone()).unwrap_or_default(),
            Private::Erased => T::default(),
        }
    }
}

impl From<Column> for Private {
    fn from(column: Column) -> Self {
        match column {
            Column::Plain(value) => Private::Plain(value),
            Column::Erased => Private::Erased,
        }
    }
}

/// A row's column, opened once and shared by the row's clones (a request's batch loaders hand
/// out clones of one cached row).
#[derive(Debug, Clone, Default)]
pub struct Opening(Arc<OnceCell<Private>>);

impl Opening {
    /// Opens `column` (a NULL column is an empty object), or returns what it opened to before.
    pub async fn open(&self, vault: &Vault, column: Option<&str>) -> Result<&Private, VaultError> {
        self.0
            .get_or_try_init(|| async {
                let Some(text) = column else {
                    return Ok(Private::Plain(Value::Object(Default::default())));
                };
                let keys = vault.keys_for_columns([text]).await?;
                keys.open_column(text).map(Private::from)
            })
            .await
    }
}

/// Opens the columns of many rows with one load of keys.
pub async fn open_all<'a>(
    vault: &Vault,
    rows: impl IntoIterator<Item = (&'a Opening, Option<&'a str>)>,
) -> Result<(), VaultError> {
    let mut pending: Vec<(&Opening, Option<&str>)> = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    for (opening, text) in rows {
        if opening.0.initialized() {
            continue;
        }
        texts.extend(text);
        pending.push((opening, text));
    }
    if pending.is_empty() {
        return Ok(());
    }
    let keys = vault.keys_for_columns(texts).await?;
    for (opening, text) in pending {
        let private = match text {
            Some(text) => keys.open_column(text).map(Private::from)?,
            None => Private::Plain(Value::Object(Default::default())),
        };
        // A concurrent resolver may have opened it meanwhile: the same value either way.
        let _ = opening.0.set(private);
    }
    Ok(())
}
