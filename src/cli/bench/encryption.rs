//! `docket bench --suite encryption`: what encryption at rest costs.
//!
//! - KEK rotation over `--data-keys` data keys: every key unwrapped under the old version,
//!   wrapped under the new one and written back in batches, beside the baseline of the same
//!   number of unwrap+wrap pairs in memory (the AES-GCM work alone, no database). A sample of
//!   the keys is created through the vault (one commit each, 16 at a time, its rate reported);
//!   the rest are generated and wrapped exactly as the vault does and inserted in bulk, so the
//!   setup does not take longer than the thing measured.
//! - Appends through the service from 64 writers, each creating contacts and adding notes of
//!   distinctive text to its own matter, with sealing on and off, alternated off, on, on, off so
//!   that drift in the machine hits both alike: one contact to four notes (the headline), then
//!   notes alone and contacts alone, which tell the cost of sealing under an existing key from
//!   that of creating a subject's key. After each run the log is checked to hold the client
//!   data sealed (on) or in clear (off).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection};

use super::report::Measurement;
use crate::domain::commands::{AddNote, CreateContact, MatterCommand, OpenMatter};
use crate::domain::events::{ContactDetails, ContactKind, LabelledValue};
use crate::log::Actor;
use crate::projection::{Projector, ReadDb};
use crate::service::{CommandContext, Service};
use crate::store::{Backend, EventLog, LogOptions, StoreError};
use crate::vault::master::{unwrap_with, wrap_with};
use crate::vault::{DataKey, LocalMasterKeys, MasterKeys, Vault, VaultError};

const WRITERS: u64 = 64;
/// Keys created through the vault, one commit each, before the bulk insert.
const VAULT_CREATED: u64 = 2_000;
const CREATING_TASKS: u64 = 16;
/// Rows per bulk INSERT.
const BULK_ROWS: usize = 1_000;
/// The operations of an append load: `(name, one contact per this many operations)`, the
/// others adding notes; 0 for notes alone.
const MIXES: [(&str, u64); 3] = [("1 contact : 4 notes", 5), ("notes", 0), ("contacts", 1)];

/// What the encryption suite measured on one backend.
#[derive(Debug, Serialize)]
pub struct EncryptionReport {
    pub backend: Backend,
    pub data_keys: u64,
    /// Keys created through the vault (16 concurrent tasks, one commit per key).
    pub key_creation: Measurement,
    pub bulk_insert: Measurement,
    /// The rewrap of every data key (after the new version was added).
    pub rotation: Measurement,
    pub rotation_passes: u32,
    /// Unwrap under one KEK and wrap under another, in memory, per key.
    pub raw_rewrap: Measurement,
    /// `rotation.per_second / raw_rewrap.per_second`.
    pub rotation_to_raw: f64,
    pub writers: u64,
    /// One entry per mix of [`MIXES`].
    pub appends: Vec<SealCost>,
    /// The first mix's ratio; the target is at least 0.80.
    pub seal_ratio: f64,
}

/// One append load with sealing off and on.
#[derive(Debug, Serialize)]
pub struct SealCost {
    pub mix: &'static str,
    pub unsealed: Vec<Measurement>,
    pub sealed: Vec<Measurement>,
    /// Mean sealed rate over mean unsealed rate.
    pub ratio: f64,
}

fn store_error(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: detail.to_string(),
    }
}

fn vault_error(error: VaultError) -> StoreError {
    crate::app::vault_unavailable(error)
}

pub async fn run(
    options: &LogOptions,
    backend: Backend,
    data_keys: u64,
    events: u64,
) -> Result<EncryptionReport, StoreError> {
    let log = Arc::new(EventLog::open(options).await?);
    if log.head().await?.position > 1 {
        return Err(store_error(
            "the encryption benchmark needs an empty data directory (and a fresh database)",
        ));
    }
    // The key file provider, whatever the environment says: rotation is what is measured.
    let master = Arc::new(LocalMasterKeys::open_file(&options.data_dir).map_err(vault_error)?);
    let vault = Vault::open(log.store().clone(), master.clone())
        .await
        .map_err(vault_error)?;

    eprintln!("docket bench: creating {data_keys} data keys");
    let created = VAULT_CREATED.min(data_keys);
    let key_creation = create_through_vault(&vault, created).await?;
    let bulk_insert = insert_in_bulk(options, master.as_ref(), created, data_keys).await?;

    eprintln!("docket bench: rotating the key-encryption key");
    let rotation = vault.rotate_kek(&|_| {}).await.map_err(vault_error)?;
    let usage = vault.kek_usage().await.map_err(vault_error)?;
    if usage != vec![(rotation.to_version, data_keys + 1)] {
        return Err(store_error(format!(
            "after rotation the keys are not all under the new version: {usage:?}"
        )));
    }
    check_keys_open(options, &log, data_keys).await?;
    let rotation_passes = rotation.passes;
    let rotation = Measurement::throughput(rotation.rewrapped, rotation.elapsed.as_secs_f64());
    let raw_rewrap = raw_rewrap(rotation.events)?;
    let rotation_to_raw = rotation.per_second / raw_rewrap.per_second.max(1e-9);

    let db = ReadDb::open(&options.data_dir, options.database_url.as_deref()).await?;
    let projector = Projector::open(db, log.store().clone(), vault.clone()).await?;
    let sealed = Arc::new(Service::new(
        log.clone(),
        projector.clone(),
        vault.clone(),
        Duration::ZERO,
    ));
    let unsealed =
        Arc::new(Service::new(log.clone(), projector, vault, Duration::ZERO).without_sealing());
    let mean = |runs: &[Measurement]| {
        runs.iter().map(|m| m.per_second).sum::<f64>() / runs.len().max(1) as f64
    };
    let mut loads = Vec::new();
    let mut round = 0;
    for (mix, contact_every) in MIXES {
        let (mut unsealed_runs, mut sealed_runs) = (Vec::new(), Vec::new());
        for sealing in [false, true, true, false] {
            let on = if sealing { "on" } else { "off" };
            eprintln!("docket bench: {events} operations ({mix}), sealing {on}");
            let service = if sealing { &sealed } else { &unsealed };
            let load = Load {
                round,
                events,
                contact_every,
                sealing,
            };
            let measured = appends(service, &load).await?;
            round += 1;
            if sealing {
                sealed_runs.push(measured);
            } else {
                unsealed_runs.push(measured);
            }
        }
        let ratio = mean(&sealed_runs) / mean(&unsealed_runs).max(1e-9);
        loads.push(SealCost {
            mix,
            unsealed: unsealed_runs,
            sealed: sealed_runs,
            ratio,
        });
    }
    Ok(EncryptionReport {
        backend,
        data_keys,
        key_creation,
        bulk_insert,
        rotation,
        rotation_passes,
        raw_rewrap,
        rotation_to_raw,
        writers: WRITERS,
        seal_ratio: loads.first().map_or(0.0, |load| load.ratio),
        appends: loads,
    })
}

/// `count` keys of new subjects through [`Vault::sealing_key`], from concurrent tasks.
async fn create_through_vault(vault: &Arc<Vault>, count: u64) -> Result<Measurement, StoreError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..CREATING_TASKS {
        let vault = vault.clone();
        tasks.push(tokio::spawn(async move {
            for i in (task..count).step_by(CREATING_TASKS as usize) {
                vault.sealing_key(&format!("contact:key-{i}")).await?;
            }
            Ok::<_, VaultError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(store_error)?.map_err(vault_error)?;
    }
    Ok(Measurement::throughput(
        count,
        started.elapsed().as_secs_f64(),
    ))
}

/// Keys `from..to`, generated and wrapped under the current version as the vault does, inserted
/// in multi-row statements straight into the vault's table. Every value is generated here (hex
/// ids, numbers, a timestamp), so the statements are written out rather than bound.
async fn insert_in_bulk(
    options: &LogOptions,
    master: &LocalMasterKeys,
    from: u64,
    to: u64,
) -> Result<Measurement, StoreError> {
    sqlx::any::install_default_drivers();
    let (url, blob): (String, fn(&[u8]) -> String) = match &options.database_url {
        Some(url) => (url.clone(), |b| format!("'\\x{}'::bytea", hex::encode(b))),
        None => {
            let path = options.data_dir.join("docket.db");
            (format!("sqlite://{}", path.display()), |b| {
                format!("x'{}'", hex::encode(b))
            })
        }
    };
    let mut connection = sqlx::AnyConnection::connect(&url).await?;
    let version = master.current().await.map_err(vault_error)?;
    let created_at = crate::log::time::now_timestamp();
    let started = Instant::now();
    let mut values = Vec::with_capacity(BULK_ROWS);
    for i in from..to {
        let key = DataKey::generate().map_err(vault_error)?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|_| vault_error(VaultError::NoRandomness))?;
        let key_id = format!("dk_{}", hex::encode(id));
        let wrapped = master
            .wrap(version, &key_id, &key)
            .await
            .map_err(vault_error)?;
        values.push(format!(
            "('{key_id}', 'contact:key-{i}', {version}, {}, '{created_at}')",
            blob(&wrapped)
        ));
        if values.len() == BULK_ROWS || i + 1 == to {
            let sql = format!(
                "INSERT INTO data_keys (key_id, subject, kek_version, wrapped, created_at) \
                 VALUES {}",
                values.join(", ")
            );
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut connection)
                .await?;
            values.clear();
        }
    }
    connection.close().await?;
    Ok(Measurement::throughput(
        to.saturating_sub(from),
        started.elapsed().as_secs_f64(),
    ))
}

/// A fresh vault (nothing cached) unwraps a sample of the rewrapped keys, vault-made and bulk.
async fn check_keys_open(
    options: &LogOptions,
    log: &EventLog,
    data_keys: u64,
) -> Result<(), StoreError> {
    let master = LocalMasterKeys::open_file(&options.data_dir).map_err(vault_error)?;
    let fresh = Vault::open(log.store().clone(), Arc::new(master))
        .await
        .map_err(vault_error)?;
    let step = (data_keys / 100).max(1) as usize;
    for i in (0..data_keys).step_by(step) {
        let subject = format!("contact:key-{i}");
        let stored = log
            .store()
            .keys()
            .subject_key(&subject)
            .await?
            .ok_or_else(|| store_error(format!("{subject} has no data key")))?;
        let keys = fresh
            .keys([stored.key_id.clone()])
            .await
            .map_err(vault_error)?;
        if keys.key(&stored.key_id).map_err(vault_error)?.is_none() {
            return Err(store_error(format!("{subject}'s key does not unwrap")));
        }
    }
    Ok(())
}

/// `count` unwrap+wrap pairs in memory, the AES-GCM work of a rotation without its database.
fn raw_rewrap(count: u64) -> Result<Measurement, StoreError> {
    let mut old = [0u8; 32];
    let mut new = [0u8; 32];
    getrandom::fill(&mut old).map_err(|_| vault_error(VaultError::NoRandomness))?;
    getrandom::fill(&mut new).map_err(|_| vault_error(VaultError::NoRandomness))?;
    let mut wrapped = Vec::with_capacity(count as usize);
    for i in 0..count {
        let key_id = format!("dk_{i:016x}");
        let key = DataKey::generate().map_err(vault_error)?;
        let bytes = wrap_with(&old, 1, &key_id, &key).map_err(vault_error)?;
        wrapped.push((key_id, bytes));
    }
    let started = Instant::now();
    for (key_id, bytes) in &wrapped {
        let key = unwrap_with(&old, 1, key_id, bytes).map_err(vault_error)?;
        std::hint::black_box(wrap_with(&new, 2, key_id, &key).map_err(vault_error)?);
    }
    Ok(Measurement::throughput(
        count,
        started.elapsed().as_secs_f64(),
    ))
}

fn note_text(round: usize, writer: u64, sequence: u64) -> String {
    format!(
        "Privileged: client {round}-{writer}-{sequence} will settle at {} GBP; do not disclose",
        40_000 + sequence * 7
    )
}

fn contact_name(round: usize, writer: u64, sequence: u64) -> String {
    format!("Bench Client {round}-{writer}-{sequence}")
}

/// One timed append load.
struct Load {
    /// Distinguishes this load's matters and client data from every other's.
    round: usize,
    events: u64,
    contact_every: u64,
    sealing: bool,
}

impl Load {
    fn is_contact(&self, sequence: u64) -> bool {
        self.contact_every != 0 && sequence.is_multiple_of(self.contact_every)
    }
}

/// `load.events` operations from [`WRITERS`] writers, each on its own matter, opened first
/// (untimed).
async fn appends(service: &Arc<Service>, load: &Load) -> Result<Measurement, StoreError> {
    let (round, per_writer) = (load.round, (load.events / WRITERS).max(5));
    let context = CommandContext::new(Actor::parse("user:a.okafor").map_err(store_error)?);
    let number = |writer: u64| format!("ENC-{round}-{writer}");
    for writer in 0..WRITERS {
        let open = OpenMatter {
            matter_number: number(writer),
            title: format!("Encryption bench {round}-{writer}"),
            description: None,
            practice_area: "litigation".into(),
            responsible_attorney: "a.okafor".into(),
            originating_attorney: None,
            opened_on: None,
            statute_of_limitations_on: None,
            intake: false,
        };
        service
            .open_matter(&context, &open)
            .await
            .map_err(store_error)?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (service, context, number) = (service.clone(), context.clone(), number(writer));
        let contacts: Vec<bool> = (0..per_writer).map(|s| load.is_contact(s)).collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_writer as usize);
            let mut first_contact = None;
            for (sequence, is_contact) in (0..per_writer).zip(contacts) {
                let sent = Instant::now();
                if is_contact {
                    let name = contact_name(round, writer, sequence);
                    let details = ContactDetails {
                        display_name: name.clone(),
                        emails: vec![LabelledValue {
                            value: format!("client-{round}-{writer}-{sequence}@bench.example"),
                            label: Some("work".into()),
                        }],
                        ..Default::default()
                    };
                    let command = CreateContact {
                        kind: ContactKind::Organisation,
                        details,
                    };
                    let (id, _) = service.create_contact(&context, &command).await?;
                    first_contact.get_or_insert((id, name));
                } else {
                    let note = MatterCommand::AddNote(AddNote {
                        privileged: true,
                        subject: Some("Settlement position".into()),
                        body: note_text(round, writer, sequence),
                    });
                    service.change_matter(&context, &number, &note).await?;
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, crate::service::ServiceError>((latencies, first_contact))
        }));
    }
    let mut latencies = Vec::new();
    let mut first_contact = None;
    for task in tasks {
        let (mine, contact) = task.await.map_err(store_error)?.map_err(store_error)?;
        latencies.extend(mine);
        first_contact = first_contact.or(contact);
    }
    let seconds = started.elapsed().as_secs_f64();

    // Writer 0's first note and one writer's first contact hold the client data in the form
    // the run was meant to write.
    let log = service.log();
    if let Some(sequence) = (0..per_writer).find(|&s| !load.is_contact(s)) {
        let stream = format!("matter:{}", number(0));
        let text = note_text(round, 0, sequence);
        check_sealing(log, &stream, "matter.note_added", &text, load.sealing).await?;
    }
    if let Some((id, name)) = first_contact {
        let stream = format!("contact:{id}");
        check_sealing(log, &stream, "contact.created", &name, load.sealing).await?;
    }
    Ok(Measurement::with_latencies(WRITERS, latencies, seconds))
}

/// The log holds `text` in the first `event_type` event of `stream` only when sealing was off.
async fn check_sealing(
    log: &EventLog,
    stream: &str,
    event_type: &str,
    text: &str,
    sealing: bool,
) -> Result<(), StoreError> {
    let events = log.store().read_stream_page(stream, 0, 3).await?;
    let event = events
        .iter()
        .find(|event| event.event_type == event_type)
        .ok_or_else(|| store_error(format!("{stream} has no {event_type}")))?;
    let in_clear = event.payload.contains(text);
    if in_clear == sealing {
        return Err(store_error(format!(
            "with sealing {}, the log holds {event_type} {}",
            if sealing { "on" } else { "off" },
            if in_clear { "in clear" } else { "sealed" }
        )));
    }
    Ok(())
}

pub fn to_table(report: &EncryptionReport) -> String {
    let rates = |runs: &[Measurement]| {
        runs.iter()
            .map(|m| format!("{:.0}", m.per_second))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "\nencryption ({}), {} data keys\n",
        report.backend, report.data_keys
    );
    let m = &report.key_creation;
    out.push_str(&format!(
        "  key creation (vault)   {:>10.0} keys/s ({} keys, {CREATING_TASKS} tasks, one commit each)\n",
        m.per_second, m.events
    ));
    let m = &report.bulk_insert;
    out.push_str(&format!(
        "  bulk key insert        {:>10.0} keys/s ({} keys in {:.1} s)\n",
        m.per_second, m.events, m.seconds
    ));
    let m = &report.rotation;
    out.push_str(&format!(
        "  KEK rotation           {:>10.0} keys/s ({} keys in {:.2} s, {} passes)\n",
        m.per_second, m.events, m.seconds, report.rotation_passes
    ));
    out.push_str(&format!(
        "  unwrap+wrap in memory  {:>10.0} keys/s (baseline); rotation/baseline {:.3}\n",
        report.raw_rewrap.per_second, report.rotation_to_raw
    ));
    out.push_str(&format!("  appends, {} writers:\n", report.writers));
    for load in &report.appends {
        out.push_str(&format!(
            "    {:<20} unsealed {}/s; sealed {}/s; ratio {:.2}\n",
            load.mix,
            rates(&load.unsealed),
            rates(&load.sealed),
            load.ratio
        ));
    }
    out
}
