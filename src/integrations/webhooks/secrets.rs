//! Signing secrets at rest: each is sealed by the vault under the data key of its endpoint's
//! subject, `webhook:<endpoint id>`, bound to the key's own id. Removing an endpoint erases the
//! subject, after which its secrets open nowhere, backups included. Unsealed secrets are kept
//! in memory no longer than the vault keeps data keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::WebhookError;
use super::db::StoredKey;
use super::signing::SigningSecret;
use crate::vault::{Sealed, Vault, seal};

/// Most unsealed secrets kept at once; the cache is emptied when full.
const CACHE_LIMIT: usize = 10_000;

/// The vault subject of an endpoint's secrets.
pub fn subject(endpoint_id: &str) -> String {
    format!("webhook:{endpoint_id}")
}

fn context(endpoint_id: &str, key_id: &str) -> String {
    format!("webhook/{endpoint_id}/key/{key_id}")
}

/// A new key id: `whk_` and 16 random hex digits.
pub fn new_key_id() -> Result<String, WebhookError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| WebhookError::internal("key id", "no randomness"))?;
    Ok(format!("whk_{}", hex::encode(bytes)))
}

/// Seals a secret for storage: the JSON of the sealed value.
pub async fn seal_secret(
    vault: &Vault,
    endpoint_id: &str,
    key_id: &str,
    secret: &SigningSecret,
) -> Result<String, WebhookError> {
    let (data_key_id, data_key) = vault
        .sealing_key(&subject(endpoint_id))
        .await
        .map_err(|error| WebhookError::internal("the vault", error))?;
    let sealed = seal::seal(
        &data_key,
        &data_key_id,
        &context(endpoint_id, key_id),
        secret.as_bytes(),
    )
    .map_err(|error| WebhookError::internal("the vault", error))?;
    serde_json::to_string(&sealed).map_err(|error| WebhookError::internal("the vault", error))
}

/// Unsealed secrets, by key id, for a while.
#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<String, (Instant, Arc<SigningSecret>)>>,
}

impl SecretCache {
    /// The unsealed secrets of `keys`, in their order.
    pub async fn open(
        &self,
        vault: &Vault,
        keys: &[StoredKey],
    ) -> Result<Vec<Arc<SigningSecret>>, WebhookError> {
        let mut secrets = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(secret) = self.cached(&key.key_id) {
                secrets.push(secret);
                continue;
            }
            let secret = Arc::new(unseal(vault, key).await?);
            if let Ok(mut entries) = self.entries.lock() {
                if entries.len() >= CACHE_LIMIT {
                    entries.clear();
                }
                entries.insert(key.key_id.clone(), (Instant::now(), secret.clone()));
            }
            secrets.push(secret);
        }
        Ok(secrets)
    }

    fn cached(&self, key_id: &str) -> Option<Arc<SigningSecret>> {
        let entries = self.entries.lock().ok()?;
        let (loaded, secret) = entries.get(key_id)?;
        (loaded.elapsed() < crate::vault::CACHE_TTL).then(|| secret.clone())
    }

    /// Drops every cached secret (after an endpoint is removed).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

async fn unseal(vault: &Vault, key: &StoredKey) -> Result<SigningSecret, WebhookError> {
    let sealed: Sealed = serde_json::from_str(&key.sealed).map_err(|_| WebhookError::Corrupt {
        what: "sealed webhook key",
    })?;
    let keys = vault
        .keys([sealed.key.clone()])
        .await
        .map_err(|error| WebhookError::internal("the vault", error))?;
    let data_key = keys
        .key(&sealed.key)
        .map_err(|error| WebhookError::internal("the vault", error))?
        .ok_or(WebhookError::Conflict(
            "the endpoint's keys have been destroyed",
        ))?;
    let plain = seal::open(&data_key, &sealed, &context(&key.endpoint_id, &key.key_id))
        .map_err(|error| WebhookError::internal("the vault", error))?;
    SigningSecret::from_bytes(key.scheme, &plain).ok_or(WebhookError::Corrupt {
        what: "sealed webhook key",
    })
}
