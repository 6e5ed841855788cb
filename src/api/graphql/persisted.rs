//! Persisted queries: a client sends the SHA-256 of a registered document instead of its text
//! (`extensions.persistedQuery.sha256Hash`, the convention Apollo clients use). In
//! registered-only mode, documents not registered are refused, so a production front end can
//! run only the queries it shipped with.
//!
//! Documents are registered as `*.graphql` files in `<data-dir>/persisted-queries/`, read at
//! start-up.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Debug, Default, Clone)]
pub struct PersistedQueries {
    by_hash: HashMap<String, String>,
    pub registered_only: bool,
}

impl PersistedQueries {
    /// Reads every `*.graphql` file in `dir` (a missing directory registers nothing).
    pub fn load(dir: &Path, registered_only: bool) -> std::io::Result<Self> {
        let mut by_hash = HashMap::new();
        if dir.is_dir() {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "graphql") {
                    let text = std::fs::read_to_string(&path)?;
                    by_hash.insert(sha256_hex(&text), text);
                }
            }
        }
        Ok(PersistedQueries {
            by_hash,
            registered_only,
        })
    }

    pub fn register(&mut self, document: &str) -> String {
        let hash = sha256_hex(document);
        self.by_hash.insert(hash.clone(), document.to_owned());
        hash
    }

    pub fn get(&self, hash: &str) -> Option<&str> {
        self.by_hash
            .get(&hash.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn is_registered(&self, document: &str) -> bool {
        self.by_hash.contains_key(&sha256_hex(document))
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What to run for a request: its text, or a registered document named by hash.
pub fn resolve(
    persisted: &PersistedQueries,
    query: &str,
    hash: Option<&str>,
) -> Result<String, (&'static str, &'static str)> {
    match (query.trim().is_empty(), hash) {
        (true, Some(hash)) => persisted
            .get(hash)
            .map(str::to_owned)
            .ok_or(("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")),
        (true, None) => Err(("INVALID_REQUEST", "the request has no query")),
        (false, _) if persisted.registered_only && !persisted.is_registered(query) => Err((
            "PERSISTED_QUERY_REQUIRED",
            "this server runs registered documents only",
        )),
        (false, _) => Ok(query.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_resolve_to_registered_documents_only() {
        let mut persisted = PersistedQueries::default();
        let hash = persisted.register("{ projections { name } }");
        assert_eq!(
            resolve(&persisted, "", Some(&hash)).unwrap(),
            "{ projections { name } }"
        );
        assert_eq!(
            resolve(&persisted, "", Some("00")).unwrap_err().0,
            "PERSISTED_QUERY_NOT_FOUND"
        );
        assert_eq!(resolve(&persisted, "{ x }", None).unwrap(), "{ x }");
        persisted.registered_only = true;
        assert_eq!(
            resolve(&persisted, "{ x }", None).unwrap_err().0,
            "PERSISTED_QUERY_REQUIRED"
        );
        assert!(resolve(&persisted, "{ projections { name } }", None).is_ok());
    }
}
