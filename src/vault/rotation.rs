//! KEK rotation: a new version, every data key rewrapped under it, online.
//!
//! Rotation first adds the version, so every key created from then on is wrapped under it.
//! It then pages through the keys still wrapped under older versions and rewraps each (unwrap
//! under its version, wrap under the new one, compare-and-set on the stored version), and
//! repeats until a pass finds nothing: a key created by a process that had not yet seen the new
//! version is caught by the next pass. The log is not touched: ciphertexts are sealed under
//! data keys, which do not change.
//!
//! A version is retired only when no key uses it; after that nothing wrapped under it, in this
//! database, a copy of it or a backup, can be unwrapped.

use std::time::{Duration, Instant};

use super::{Vault, VaultError};
use crate::store::Rewrap;

/// Keys rewrapped per transaction.
const REWRAP_BATCH: u32 = 1_000;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub to_version: u32,
    pub rewrapped: u64,
    pub passes: u32,
    pub elapsed: Duration,
}

/// A rotation, and how many data keys it left under older versions (0 when complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRotationOutcome {
    pub rotation: Rotation,
    pub remaining: u64,
}

/// Reported after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    pub rewrapped: u64,
}

impl Vault {
    /// Adds a KEK version and rewraps every data key under it.
    pub async fn rotate_kek(
        &self,
        progress: &(dyn Fn(RotationProgress) + Send + Sync),
    ) -> Result<Rotation, VaultError> {
        let to_version = self.master().add_version().await?;
        self.rewrap_all(to_version, progress).await
    }

    /// Rotates (as [`Vault::rotate_kek`]) and then counts the keys still wrapped under older
    /// versions: keys created meanwhile by a process that had not yet seen the new version.
    /// What `docket keys rotate-kek` and the `rotateKek` mutation both run.
    pub async fn rotate_kek_completely(
        &self,
        progress: &(dyn Fn(RotationProgress) + Send + Sync),
    ) -> Result<KekRotationOutcome, VaultError> {
        let rotation = self.rotate_kek(progress).await?;
        let remaining = self
            .kek_usage()
            .await?
            .iter()
            .filter(|(version, _)| *version < rotation.to_version)
            .map(|(_, count)| count)
            .sum();
        Ok(KekRotationOutcome {
            rotation,
            remaining,
        })
    }

    /// Rewraps every key wrapped under a version below `to_version` (also how an interrupted
    /// rotation is finished).
    pub async fn rewrap_all(
        &self,
        to_version: u32,
        progress: &(dyn Fn(RotationProgress) + Send + Sync),
    ) -> Result<Rotation, VaultError> {
        let started = Instant::now();
        let mut rewrapped = 0;
        let mut passes = 0;
        loop {
            passes += 1;
            let mut found = 0;
            let mut after = String::new();
            loop {
                let page = self
                    .store()
                    .keys()
                    .keys_wrapped_below(to_version, &after, REWRAP_BATCH)
                    .await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.key_id.clone();
                found += page.len();

                let mut batch = Vec::with_capacity(page.len());
                for stored in &page {
                    let (Some(from_version), Some(wrapped)) = (stored.kek_version, &stored.wrapped)
                    else {
                        continue;
                    };
                    let key = self
                        .master()
                        .unwrap(from_version, &stored.key_id, wrapped)
                        .await?;
                    batch.push(Rewrap {
                        key_id: stored.key_id.clone(),
                        from_version,
                        to_version,
                        wrapped: self.master().wrap(to_version, &stored.key_id, &key).await?,
                    });
                }
                rewrapped += self.store().keys().rewrap(&batch).await?;
                progress(RotationProgress { rewrapped });
            }
            if found == 0 || passes >= 10 {
                break;
            }
        }
        Ok(Rotation {
            to_version,
            rewrapped,
            passes,
            elapsed: started.elapsed(),
        })
    }

    /// How many keys each KEK version wraps.
    pub async fn kek_usage(&self) -> Result<Vec<(u32, u64)>, VaultError> {
        Ok(self.store().keys().kek_usage().await?)
    }

    /// Destroys KEK `version`, refused while any key is wrapped under it or when it is the
    /// current version.
    pub async fn retire_kek(&self, version: u32) -> Result<(), VaultError> {
        // A version the provider does not hold cannot be retired: saying it was would hide a
        // typo behind a success.
        if !self.master().versions().await?.contains(&version) {
            return Err(VaultError::KekUnavailable { version });
        }
        if self.master().current().await? == version {
            return Err(VaultError::CurrentVersion { version });
        }
        if let Some((_, count)) = self
            .kek_usage()
            .await?
            .into_iter()
            .find(|(used, count)| *used == version && *count > 0)
        {
            return Err(VaultError::VersionInUse { version, count });
        }
        self.master().retire(version).await
    }
}
