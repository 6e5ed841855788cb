//! The private signing keys of the log, kept in `<data-dir>/keys/` one file per key.
//!
//! A key file is named `<key id>.key` and holds the 32-byte ed25519 seed as hex. Files are
//! created with mode 0600 in a 0700 directory, and a key file that others can read is refused.
//! Seeds never appear in errors or logs; only key ids do.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::log::LogSigner;
use thiserror::Error;

/// The data directory's signing keys, loaded on first use.
#[derive(Debug)]
pub struct Keyring {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LogSigner>>>,
}

/// Why a key could not be made or loaded. Messages name key ids and paths, never key material.
#[derive(Debug, Clone, Error)]
pub enum KeyringError {
    /// No usable key file for this id.
    #[error("signing key {key_id} is not in the keyring")]
    Unavailable { key_id: String },
    /// The key directory or a key file could not be used.
    #[error("key directory: {detail}")]
    DataDir { detail: String },
}

fn data_dir_error(what: &str, path: &Path, error: impl std::fmt::Display) -> KeyringError {
    KeyringError::DataDir {
        detail: format!("{what} {}: {error}", path.display()),
    }
}

impl Keyring {
    /// Opens (creating when needed) the key directory under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, KeyringError> {
        let dir = data_dir.join("keys");
        fs::create_dir_all(&dir).map_err(|e| data_dir_error("cannot create", &dir, e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| data_dir_error("cannot restrict", &dir, e))?;
        Ok(Keyring {
            dir,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// Generates a key and writes it durably before anything is signed with it.
    pub fn create(&self) -> Result<Arc<LogSigner>, KeyringError> {
        let signer = LogSigner::generate().map_err(|e| KeyringError::DataDir {
            detail: format!("no randomness: {e}"),
        })?;
        let path = self.path_of(signer.id().as_str());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| data_dir_error("cannot create key file", &path, e))?;
        let encoded = Zeroizing::new(hex::encode(signer.seed().as_ref()));
        file.write_all(encoded.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| data_dir_error("cannot write key file", &path, e))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| data_dir_error("cannot sync", &self.dir, e))?;

        let signer = Arc::new(signer);
        self.cache().insert(signer.id().to_string(), signer.clone());
        Ok(signer)
    }

    /// The key with this id, from memory or from its file.
    pub fn get(&self, key_id: &str) -> Result<Arc<LogSigner>, KeyringError> {
        if let Some(signer) = self.cache().get(key_id) {
            return Ok(signer.clone());
        }
        let unavailable = || KeyringError::Unavailable {
            key_id: key_id.to_owned(),
        };
        if key_id.len() != 32 || !key_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(unavailable());
        }
        let path = self.path_of(key_id);
        let metadata = fs::metadata(&path).map_err(|_| unavailable())?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(KeyringError::DataDir {
                detail: format!(
                    "key file {} is readable by others; chmod 600 it",
                    path.display()
                ),
            });
        }
        let text = Zeroizing::new(fs::read_to_string(&path).map_err(|_| unavailable())?);
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| unavailable())?;
        let signer = LogSigner::from_seed(&seed);
        if signer.id().as_str() != key_id {
            return Err(unavailable());
        }
        let signer = Arc::new(signer);
        self.cache().insert(key_id.to_owned(), signer.clone());
        Ok(signer)
    }

    /// Removes a key that was created but never entered the log.
    pub fn discard(&self, key_id: &str) {
        self.cache().remove(key_id);
        let _ = fs::remove_file(self.path_of(key_id));
    }

    fn path_of(&self, key_id: &str) -> PathBuf {
        self.dir.join(format!("{key_id}.key"))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LogSigner>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::open(dir.path()).unwrap();
        let signer = keyring.create().unwrap();
        let path = dir.path().join("keys").join(format!("{}.key", signer.id()));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let reopened = Keyring::open(dir.path()).unwrap();
        let loaded = reopened.get(signer.id().as_str()).unwrap();
        assert_eq!(loaded.public_key_hex(), signer.public_key_hex());
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = Keyring::open(dir.path())
            .unwrap()
            .create()
            .unwrap()
            .id()
            .to_string();
        let path = dir.path().join("keys").join(format!("{id}.key"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = Keyring::open(dir.path()).unwrap().get(&id).unwrap_err();
        assert!(matches!(error, KeyringError::DataDir { .. }));
        assert!(
            !error
                .to_string()
                .contains(&fs::read_to_string(&path).unwrap().trim().to_owned())
        );
    }

    #[test]
    fn unknown_or_malformed_key_ids_are_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::open(dir.path()).unwrap();
        for id in ["../../etc/passwd", &"0".repeat(32)] {
            assert!(matches!(
                keyring.get(id),
                Err(KeyringError::Unavailable { .. })
            ));
        }
    }
}
