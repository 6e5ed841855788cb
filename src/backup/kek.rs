//! The key-encryption keys a backup or restore uses: those already configured for the data
//! directory (`DOCKET_MASTER_KEY`, or `keys/master.kek`), never a fresh one. Creating a KEK here
//! would make an archive nobody can open, or a restore whose data keys nothing unwraps.

use std::path::Path;

use crate::vault::master::{KEK_FILE, LocalMasterKeys, MASTER_KEY_ENV};

use super::BackupError;

/// The configured KEK versions of `data_dir`; an error when there are none.
pub fn existing_master_keys(data_dir: &Path) -> Result<LocalMasterKeys, BackupError> {
    let unavailable = |error: crate::vault::VaultError| BackupError::MasterKey {
        detail: error.to_string(),
    };
    if let Some(keys) = LocalMasterKeys::from_env().map_err(unavailable)? {
        return Ok(keys);
    }
    if !data_dir.join("keys").join(KEK_FILE).exists() {
        return Err(BackupError::MasterKey {
            detail: format!(
                "neither {MASTER_KEY_ENV} nor {} is there",
                data_dir.join("keys").join(KEK_FILE).display()
            ),
        });
    }
    LocalMasterKeys::open_file(data_dir).map_err(unavailable)
}
