//! Writing an archive while Docket runs: a consistent cut of the log and the access chain at
//! the heads read when the backup starts, with the tables beside them as they are meanwhile,
//! each part encrypted in chunks as it is read, the signed manifest stored last, and every
//! stored part read back and checked against the manifest before the archive counts as made.

use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use super::format::{
    CHUNK_BYTES, EncryptionRecord, FORMAT, HeadRecord, MANIFEST_FILE, Manifest, ManifestSignature,
    PARTS, PartCipher, PartRecord, SIGNATURE_FILE, SignerRecord, part_file, wrap_key_id,
};
use super::kek::existing_master_keys;
use super::reader::hash_part;
use super::records::{CheckpointLine, DataKeyLine, IdempotencyLine, Record};
use super::target::{PartUpload, Target};
use super::{BackupError, format};
use crate::access::chain::open_existing_access_store;
use crate::identity::credentials::CredentialStore;
use crate::keyring::Keyring;
use crate::log::system_events::GENESIS;
use crate::store::pages::{PAGE_SIZE, log_pages};
use crate::store::{LogHead, LogOptions, LogStore, open_existing_store};
use crate::vault::{DataKey, MasterKeys};

/// Rows read per page from the tables beside the log.
const ROWS_PER_PAGE: u32 = 500;

/// What a finished backup wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub name: String,
    pub archive_id: String,
    pub target: String,
    pub head: u64,
    pub access_head: u64,
    pub parts: Vec<PartRecord>,
    pub erased_subjects: usize,
    /// Every part was read back from the target and matched the manifest.
    pub verified: bool,
}

/// Backs up the Docket that `options` describe into `target`.
pub async fn write_backup(
    options: &LogOptions,
    target: &Target,
) -> Result<BackupReport, BackupError> {
    let store = open_existing_store(options).await?;
    let access = open_existing_access_store(options).await?;
    // The cut: everything up to these heads, read before anything else.
    let head = store.head().await?;
    let access_head = match &access {
        Some(access) => access.head().await?,
        None => LogHead {
            position: 0,
            hash: None,
            key_id: None,
        },
    };
    let signing_key_id = head.key_id.clone().ok_or(BackupError::Inconsistent {
        what: "log head (the log has no genesis)",
    })?;
    let signer = Keyring::open(&options.data_dir)
        .and_then(|keys| keys.get(&signing_key_id))
        .map_err(|error| BackupError::Store(error.into()))?;
    let master = existing_master_keys(&options.data_dir)?;
    let credentials =
        CredentialStore::open(&options.data_dir, options.database_url.as_deref()).await?;

    let archive_id = uuid::Uuid::now_v7().simple().to_string();
    let created = chrono::Utc::now();
    let name = format!(
        "docket-{}-{}",
        created.format("%Y%m%dT%H%M%S%3fZ"),
        &archive_id[archive_id.len() - 8..]
    );
    let data_key = DataKey::generate().map_err(|_| BackupError::Crypto)?;
    let kek_version = master
        .current()
        .await
        .map_err(|error| BackupError::MasterKey {
            detail: error.to_string(),
        })?;
    let wrapped = master
        .wrap(kek_version, &wrap_key_id(&archive_id), &data_key)
        .await
        .map_err(|_| BackupError::Crypto)?;

    let mut parts = Vec::new();
    let mut erased_subjects = Vec::new();
    let mut log_id = None;
    for part in PARTS {
        let cipher = PartCipher::new(data_key.as_bytes(), &archive_id, part)?;
        let upload = target.upload(&name, &part_file(part)).await?;
        let mut writer = PartWriter::new(part, cipher, upload);
        let written = match part {
            "log" => {
                let first = write_log(&mut writer, &store, head.position).await;
                if let Ok(Some(id)) = &first {
                    log_id = Some(id.clone());
                }
                first.map(|_| ())
            }
            "access" => match &access {
                Some(access) => write_log(&mut writer, access, access_head.position)
                    .await
                    .map(|_| ()),
                None => Ok(()),
            },
            "keys" => write_keys(&mut writer, &store, &mut erased_subjects).await,
            "documents" => write_documents(&mut writer, &store).await,
            "checkpoints" => write_checkpoints(&mut writer, &store, head.position).await,
            _ => write_credentials(&mut writer, &credentials).await,
        };
        match written {
            Ok(()) => parts.push(writer.finish().await?),
            Err(error) => {
                writer.abort().await;
                return Err(error);
            }
        }
    }

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        archive_id: archive_id.clone(),
        name: name.clone(),
        created_at: crate::log::time::format_timestamp(created),
        log_id: log_id.ok_or(BackupError::Inconsistent {
            what: "log (no genesis event)",
        })?,
        backend: store.backend().to_string(),
        head: head_record(&head),
        access_head: head_record(&access_head),
        encryption: EncryptionRecord {
            cipher: "AES-256-GCM".to_owned(),
            chunk_bytes: CHUNK_BYTES as u64,
            kek_version,
            wrapped_key: hex::encode(&wrapped),
        },
        parts,
        erased_subjects,
        signer: SignerRecord {
            key_id: signer.id().to_string(),
            public_key: signer.public_key_hex(),
        },
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|_| BackupError::Malformed {
        what: "manifest could not be written",
    })?;
    let signature = ManifestSignature {
        key_id: signer.id().to_string(),
        signature: hex::encode(signer.sign_manifest(&bytes)),
    };
    let signature = serde_json::to_vec_pretty(&signature).map_err(|_| BackupError::Malformed {
        what: "signature could not be written",
    })?;
    target.put(&name, MANIFEST_FILE, bytes).await?;
    target.put(&name, SIGNATURE_FILE, signature).await?;

    // Read everything back: an archive counts only once the target holds what was sent.
    for part in &manifest.parts {
        let (hash, size) = hash_part(target, &name, &part.file).await?;
        if hash != part.blake3 || size != part.bytes {
            return Err(BackupError::PartHashMismatch {
                part: part.name.clone(),
            });
        }
    }
    Ok(BackupReport {
        name,
        archive_id,
        target: target.to_string(),
        head: head.position,
        access_head: access_head.position,
        erased_subjects: manifest.erased_subjects.len(),
        parts: manifest.parts,
        verified: true,
    })
}

fn head_record(head: &LogHead) -> HeadRecord {
    HeadRecord {
        position: head.position,
        hash: head.hash.map(hex::encode),
    }
}

/// Events 1 to `end`, then the idempotency records of those events; the log id of a genesis
/// event found first.
async fn write_log(
    writer: &mut PartWriter,
    store: &Arc<dyn LogStore>,
    end: u64,
) -> Result<Option<String>, BackupError> {
    let mut log_id = None;
    let mut pages = std::pin::pin!(log_pages(store.clone(), 1, PAGE_SIZE));
    'pages: while let Some(page) = pages.next().await {
        for event in page? {
            if event.position > end {
                break 'pages;
            }
            if event.position == 1 && event.event_type == GENESIS {
                log_id = serde_json::from_str::<serde_json::Value>(&event.payload)
                    .ok()
                    .and_then(|payload| payload.get("log_id")?.as_str().map(str::to_owned));
            }
            let last = event.position == end;
            writer.add(&Record::Event(Box::new(event))).await?;
            if last {
                break 'pages;
            }
        }
    }
    let mut after = String::new();
    loop {
        let page = store
            .archive()
            .idempotency_page(&after, ROWS_PER_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.key.clone();
        for record in page {
            if record.last_position <= end {
                writer
                    .add(&Record::Idempotency(IdempotencyLine::from(record)))
                    .await?;
            }
        }
    }
    Ok(log_id)
}

async fn write_keys(
    writer: &mut PartWriter,
    store: &Arc<dyn LogStore>,
    erased: &mut Vec<String>,
) -> Result<(), BackupError> {
    let mut after = String::new();
    loop {
        let page = store
            .archive()
            .data_keys_page(&after, ROWS_PER_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.key_id.clone();
        for key in page {
            if key.erased_at.is_some() {
                erased.push(key.subject.clone());
            }
            writer.add(&Record::DataKey(DataKeyLine::from(key))).await?;
        }
    }
    erased.sort();
    Ok(())
}

async fn write_documents(
    writer: &mut PartWriter,
    store: &Arc<dyn LogStore>,
) -> Result<(), BackupError> {
    let mut after = (String::new(), String::new());
    loop {
        let page = store
            .archive()
            .sealed_contents_page((&after.0, &after.1), ROWS_PER_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = (last.key_id.clone(), last.content_hash.clone());
        for content in page {
            writer.add(&Record::Content(content)).await?;
        }
    }
    let mut after = String::new();
    loop {
        let page = store.archive().blobs_page(&after, ROWS_PER_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.content_hash.clone();
        for blob in page {
            writer.add(&Record::Blob(blob)).await?;
        }
    }
    Ok(())
}

/// The checkpoints the cut covers, smallest first.
async fn write_checkpoints(
    writer: &mut PartWriter,
    store: &Arc<dyn LogStore>,
    end: u64,
) -> Result<(), BackupError> {
    let mut all = Vec::new();
    let mut before = Some(end + 1);
    loop {
        let page = store.tree().checkpoints(before, ROWS_PER_PAGE).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.tree_size);
        all.extend(page);
    }
    all.reverse();
    for checkpoint in all {
        writer
            .add(&Record::Checkpoint(CheckpointLine::from(checkpoint)))
            .await?;
    }
    Ok(())
}

async fn write_credentials(
    writer: &mut PartWriter,
    credentials: &CredentialStore,
) -> Result<(), BackupError> {
    for row in credentials.export_rows().await? {
        writer.add(&Record::Credential(row)).await?;
    }
    Ok(())
}

/// One part being written: records become JSON lines, lines fill chunks, chunks are sealed
/// and uploaded as they fill, and the stored bytes are hashed on the way.
struct PartWriter {
    name: &'static str,
    cipher: PartCipher,
    upload: PartUpload,
    plain: zeroize::Zeroizing<Vec<u8>>,
    index: u64,
    records: u64,
    bytes: u64,
    hasher: blake3::Hasher,
}

impl PartWriter {
    fn new(name: &'static str, cipher: PartCipher, upload: PartUpload) -> Self {
        PartWriter {
            name,
            cipher,
            upload,
            plain: zeroize::Zeroizing::new(Vec::with_capacity(CHUNK_BYTES * 2)),
            index: 0,
            records: 0,
            bytes: 0,
            hasher: blake3::Hasher::new(),
        }
    }

    async fn add(&mut self, record: &Record) -> Result<(), BackupError> {
        serde_json::to_writer(&mut *self.plain, record).map_err(|_| {
            BackupError::PartMalformed {
                part: self.name.to_owned(),
            }
        })?;
        self.plain.push(b'\n');
        self.records += 1;
        while self.plain.len() > CHUNK_BYTES {
            let rest = zeroize::Zeroizing::new(self.plain.split_off(CHUNK_BYTES));
            let full = std::mem::replace(&mut self.plain, rest);
            self.emit(&full, false).await?;
        }
        Ok(())
    }

    async fn emit(&mut self, plain: &[u8], last: bool) -> Result<(), BackupError> {
        let framed = self.cipher.seal(self.index, last, plain)?;
        self.index += 1;
        self.bytes += framed.len() as u64;
        self.hasher.update(&framed);
        self.upload.write(&framed).await
    }

    /// Seals what is left as the final chunk (possibly empty) and stores the part.
    async fn finish(mut self) -> Result<PartRecord, BackupError> {
        let rest = std::mem::take(&mut *self.plain);
        let rest = zeroize::Zeroizing::new(rest);
        self.emit(&rest, true).await?;
        let record = PartRecord {
            name: self.name.to_owned(),
            file: format::part_file(self.name),
            records: self.records,
            chunks: self.index,
            bytes: self.bytes,
            blake3: self.hasher.finalize().to_hex().to_string(),
        };
        self.upload.finish().await?;
        Ok(record)
    }

    async fn abort(self) {
        self.upload.abort().await;
    }
}
