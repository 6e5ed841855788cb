//! The `docket` command line: one binary, one subcommand per operation.

mod append;
mod backup;
pub mod bench;
mod bundle;
mod demo;
mod incident;
mod keys;
mod projections;
mod prove;
mod records;
mod replay;
mod users;
mod verify;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};
use crate::store::EventLog;

/// Docket: event-sourced case records with a signed, hash-chained log.
///
/// Every setting can come from a flag, a DOCKET_* environment variable or a TOML file, in that
/// order of precedence. The file is --config FILE, or docket.toml in the data directory.
/// File keys: data_dir, database_url, listen, max_payload_bytes, max_batch_events, log,
/// log_format, development, persisted_queries_only, read_your_writes_ms, checkpoint_origin,
/// checkpoint_every_events, checkpoint_interval_secs, retention_interval_secs, metrics_token,
/// verify_interval_secs, backup_to, backup_interval_secs, backup_keep, nats_url,
/// nats_stream, nats_subject_prefix, webhook_allow_http, webhook_allowed_cidrs,
/// webhook_backoff_ms, tls_cert, tls_key, allow_plain_http.
#[derive(Debug, Parser)]
#[command(name = "docket", version)]
pub struct Cli {
    /// TOML configuration file [default: <data-dir>/docket.toml when it exists].
    #[arg(long, global = true, env = "DOCKET_CONFIG")]
    config: Option<PathBuf>,
    /// Directory holding keys and, without a database URL, the SQLite log [default: ./docket-data].
    #[arg(long, global = true, env = "DOCKET_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...); without it the log is SQLite in the data directory.
    #[arg(
        long,
        global = true,
        env = "DOCKET_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Largest canonical payload of one event, in bytes [default: 262144].
    #[arg(long, global = true, env = "DOCKET_MAX_PAYLOAD_BYTES")]
    max_payload_bytes: Option<usize>,
    /// Most events the sequencer commits in one transaction [default: 4096].
    #[arg(long, global = true, env = "DOCKET_MAX_BATCH_EVENTS")]
    max_batch_events: Option<usize>,
    /// The origin line of the log's checkpoints; never change it once checkpoints exist
    /// [default: docket.log/<log id>].
    #[arg(long, global = true, env = "DOCKET_CHECKPOINT_ORIGIN")]
    checkpoint_origin: Option<String>,
    /// Log filter, e.g. `info` or `docket=debug` [default: info].
    #[arg(long, global = true, env = "DOCKET_LOG")]
    log: Option<String>,
    /// Log lines as `text` or `json` (one object per line, with request ids) [default: text].
    #[arg(long, global = true, env = "DOCKET_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

// The command line is parsed once per process: `serve`'s many settings inline cost nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory, database, first signing key and genesis event.
    Init,
    /// Serve the API over HTTPS and WSS (--tls-cert, --tls-key), or plain HTTP on loopback:
    /// /graphql, /healthz, /livez, /readyz, /metrics.
    Serve(ServeArgs),
    /// Check every hash, chain link, signature and key rotation of the whole log.
    Verify(verify::VerifyArgs),
    /// Signing keys, and the key-encryption keys that wrap the data keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Append requests read as JSON lines from standard input; one result line per request.
    Append(append::AppendArgs),
    /// Measure appends and verification against raw baselines (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Read models: their status and lag, and rebuilding them from the log.
    Projections {
        #[command(subcommand)]
        command: projections::ProjectionsCommand,
    },
    /// Fill an empty data directory with sample matters, contacts, documents and history, and
    /// one enrolled user per role (their credentials are printed: for local exploration only).
    Demo,
    /// Users: add (with a one-time enrolment token), list, unlock, re-enrol, disable.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Contain an incident: lockdown, revoke one principal's credentials, freeze or unfreeze a
    /// matter.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// A matter's forensic timeline: each event with its position, time, actor, type and the
    /// fields it changed, up to a position or time.
    Replay(replay::ReplayArgs),
    /// Retention policies: erase the closed matters whose retention has run out.
    Retention {
        #[command(subcommand)]
        command: records::RetentionCommand,
    },
    /// Signed checkpoints of the log's Merkle tree, and proofs against them.
    Checkpoint {
        #[command(subcommand)]
        command: prove::CheckpointCommand,
    },
    /// An inclusion proof for an event, or a consistency proof between two tree sizes.
    Prove {
        #[command(subcommand)]
        command: prove::ProveCommand,
    },
    /// Cosign a checkpoint as a witness, after checking it is consistent with the last one seen.
    Witness {
        #[command(subcommand)]
        command: witness::WitnessCommand,
    },
    /// Write an evidence bundle: a matter's events (or a range of positions), their inclusion
    /// proofs, a checkpoint and the log's keys, checkable offline with `verify-bundle`.
    Export(bundle::ExportArgs),
    /// Check an evidence bundle offline: no database, no server.
    VerifyBundle(bundle::VerifyBundleArgs),
    /// Write an encrypted, signed archive of everything Docket cannot rebuild, while it runs.
    Backup(backup::BackupArgs),
    /// Restore an archive into an empty data directory (and database), after verifying it all.
    Restore(backup::RestoreArgs),
}

/// `docket serve`'s settings (each also a `DOCKET_*` variable and a file key).
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "DOCKET_LISTEN")]
    listen: Option<String>,
    /// Development mode: also serve GraphiQL at /graphiql (`--dev=false` turns it off)
    /// [default: false].
    #[arg(
        long = "dev",
        env = "DOCKET_DEV",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    development: Option<bool>,
    /// Run only GraphQL documents registered in <data-dir>/persisted-queries/ [default: false].
    #[arg(
        long,
        env = "DOCKET_PERSISTED_QUERIES_ONLY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    persisted_queries_only: Option<bool>,
    /// How long a mutation waits for the read models to apply its events, 0 to 60000 ms
    /// [default: 5000].
    #[arg(long, env = "DOCKET_READ_YOUR_WRITES_MS", value_name = "MS")]
    read_your_writes_ms: Option<u64>,
    /// Sign a checkpoint once this many events were appended since the last [default: 10000].
    #[arg(long, env = "DOCKET_CHECKPOINT_EVERY_EVENTS", value_name = "N")]
    checkpoint_every_events: Option<u64>,
    /// Sign a checkpoint at least this often while the log grows [default: 60].
    #[arg(long, env = "DOCKET_CHECKPOINT_INTERVAL_SECS", value_name = "SECONDS")]
    checkpoint_interval_secs: Option<u64>,
    /// Run the retention policies this often; 0 turns the schedule off [default: 86400].
    #[arg(long, env = "DOCKET_RETENTION_INTERVAL_SECS", value_name = "SECONDS")]
    retention_interval_secs: Option<u64>,
    /// Serve /metrics to any client presenting this bearer token (16 to 256 characters);
    /// without it, only to loopback clients [default: none].
    #[arg(
        long,
        env = "DOCKET_METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    metrics_token: Option<String>,
    /// Re-verify new events and the latest checkpoint this often; 0 turns it off
    /// [default: 60].
    #[arg(long, env = "DOCKET_VERIFY_INTERVAL_SECS", value_name = "SECONDS")]
    verify_interval_secs: Option<u64>,
    /// Publish the log to NATS JetStream at this URL (nats://[user:password@]host:port, several
    /// comma-separated) [default: off].
    #[arg(
        long,
        env = "DOCKET_NATS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    nats_url: Option<String>,
    /// The JetStream stream the log is published to [default: DOCKET].
    #[arg(long, env = "DOCKET_NATS_STREAM", value_name = "NAME")]
    nats_stream: Option<String>,
    /// The first token(s) of every published subject [default: docket].
    #[arg(long, env = "DOCKET_NATS_SUBJECT_PREFIX", value_name = "PREFIX")]
    nats_subject_prefix: Option<String>,
    /// Back up to this directory or URL (s3://bucket/prefix, file:///path) every
    /// --backup-interval-secs [default: off].
    #[arg(long, env = "DOCKET_BACKUP_TO", value_name = "DIR_OR_URL")]
    backup_to: Option<String>,
    /// How often `serve` backs up; 0 turns scheduled backups off [default: 0].
    #[arg(long, env = "DOCKET_BACKUP_INTERVAL_SECS", value_name = "SECONDS")]
    backup_interval_secs: Option<u64>,
    /// How many complete archives scheduled backups keep; 0 keeps all [default: 7].
    #[arg(long, env = "DOCKET_BACKUP_KEEP", value_name = "N")]
    backup_keep: Option<usize>,
    /// Let webhooks go to plain http:// URLs (a test receiver, a trusted network)
    /// [default: false].
    #[arg(
        long,
        env = "DOCKET_WEBHOOK_ALLOW_HTTP",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    webhook_allow_http: Option<bool>,
    /// Address ranges webhooks may reach although they are private, loopback or link-local,
    /// e.g. 127.0.0.1/32 (repeat, or comma-separate) [default: none].
    #[arg(
        long = "webhook-allow-cidr",
        env = "DOCKET_WEBHOOK_ALLOWED_CIDRS",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    webhook_allowed_cidrs: Vec<String>,
    /// The waits between webhook retries, in milliseconds, comma-separated
    /// [default: 5000,60000,300000,1800000,7200000,18000000,36000000,50400000].
    #[arg(long, env = "DOCKET_WEBHOOK_BACKOFF_MS", value_name = "MS,MS,...")]
    webhook_backoff_ms: Option<String>,
    /// Serve HTTPS and WSS with this PEM certificate chain (leaf first); needs --tls-key.
    /// Reloaded on SIGHUP and when the files change [default: off].
    #[arg(long, env = "DOCKET_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, SEC1 or RSA) of --tls-cert's certificate.
    #[arg(long, env = "DOCKET_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address that is not loopback outside development mode; only for
    /// a TLS-terminating proxy in front [default: false].
    #[arg(
        long,
        env = "DOCKET_ALLOW_PLAIN_HTTP",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_plain_http: Option<bool>,
}

/// What `DOCKET_PERSISTED_QUERIES_ONLY` was called before. It is still honoured (when neither the
/// flag nor the new variable is given), so that a deployment relying on it does not quietly
/// start running arbitrary documents.
const DEPRECATED_PERSISTED_ONLY: &str = "DOCKET_PERSISTED_ONLY";

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let mut deprecated_persisted_only = false;
    let mut overrides = Overrides {
        config: cli.config,
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        max_payload_bytes: cli.max_payload_bytes,
        max_batch_events: cli.max_batch_events,
        log: cli.log,
        log_format: cli.log_format,
        checkpoint_origin: cli.checkpoint_origin,
        ..Overrides::default()
    };
    if let Command::Serve(serve) = &cli.command {
        overrides.listen = serve.listen.clone();
        overrides.development = serve.development;
        overrides.read_your_writes_ms = serve.read_your_writes_ms;
        overrides.persisted_queries_only = serve.persisted_queries_only;
        overrides.checkpoint_every_events = serve.checkpoint_every_events;
        overrides.checkpoint_interval_secs = serve.checkpoint_interval_secs;
        overrides.retention_interval_secs = serve.retention_interval_secs;
        overrides.metrics_token = serve.metrics_token.clone();
        overrides.verify_interval_secs = serve.verify_interval_secs;
        overrides.backup_to = serve.backup_to.clone();
        overrides.backup_interval_secs = serve.backup_interval_secs;
        overrides.backup_keep = serve.backup_keep;
        overrides.nats_url = serve.nats_url.clone();
        overrides.nats_stream = serve.nats_stream.clone();
        overrides.nats_subject_prefix = serve.nats_subject_prefix.clone();
        overrides.webhook_allow_http = serve.webhook_allow_http;
        overrides.webhook_allowed_cidrs =
            (!serve.webhook_allowed_cidrs.is_empty()).then(|| serve.webhook_allowed_cidrs.clone());
        overrides.webhook_backoff_ms = serve.webhook_backoff_ms.clone();
        overrides.tls_cert = serve.tls_cert.clone();
        overrides.tls_key = serve.tls_key.clone();
        overrides.allow_plain_http = serve.allow_plain_http;
        if overrides.persisted_queries_only.is_none()
            && let Ok(value) = std::env::var(DEPRECATED_PERSISTED_ONLY)
        {
            deprecated_persisted_only = true;
            overrides.persisted_queries_only = Some(value == "1" || value == "true");
        }
    }
    let settings = match Settings::resolve(overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("docket: {error}");
            return ExitCode::from(2);
        }
    };
    crate::monitoring::logging::init(&settings.log, settings.log_format);
    if deprecated_persisted_only {
        tracing::warn!(
            "{DEPRECATED_PERSISTED_ONLY} is deprecated; set DOCKET_PERSISTED_QUERIES_ONLY, \
             --persisted-queries-only or persisted_queries_only in the file instead"
        );
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("docket: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(dispatch(cli.command, settings))
}

async fn dispatch(command: Command, settings: Settings) -> ExitCode {
    match command {
        Command::Init => match EventLog::open(&settings.log_options()).await {
            Ok(log) => match log.head().await {
                Ok(head) => {
                    println!(
                        "log ready at {} (position {}, key {})",
                        settings.data_dir.display(),
                        head.position,
                        head.key_id.unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(error),
            },
            Err(error) => fail(error),
        },
        Command::Serve(_) => {
            // Refused transport settings and unloadable certificates stop `serve` before the
            // data directory or database is touched.
            if let Err(error) = settings.check_transport() {
                return fail(error);
            }
            if let Some(files) = &settings.tls
                && let Err(error) = crate::server::tls::load(files)
            {
                return fail(error);
            }
            let log = match EventLog::open(&settings.log_options()).await {
                Ok(log) => Arc::new(log),
                Err(error) => return fail(error),
            };
            match crate::server::serve(&settings, log).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(error),
            }
        }
        Command::Verify(args) => verify::run(&settings, args).await,
        Command::Keys { command } => keys::run(&settings, command).await,
        Command::Append(args) => append::run(&settings, args).await,
        Command::Bench(args) => bench::run(&settings, args).await,
        Command::Projections { command } => projections::run(&settings, command).await,
        Command::Demo => demo::run(&settings).await,
        Command::Users { command } => users::run(&settings, command).await,
        Command::Incident { command } => incident::run(&settings, command).await,
        Command::Replay(args) => replay::run(&settings, args).await,
        Command::Retention { command } => records::run_retention(&settings, command).await,
        Command::Checkpoint { command } => prove::run_checkpoint(&settings, command).await,
        Command::Prove { command } => prove::run(&settings, command).await,
        Command::Witness { command } => witness::run(&settings, command).await,
        Command::Export(args) => bundle::run_export(&settings, args).await,
        Command::VerifyBundle(args) => bundle::run_verify(args).await,
        Command::Backup(args) => backup::run_backup(&settings, args).await,
        Command::Restore(args) => backup::run_restore(&settings, args).await,
    }
}

/// Writes the access record of an operator's act (principal `system`) before it is carried
/// out; the error is the exit code to stop with.
pub(crate) async fn operator_record(
    access: &crate::access::chain::AccessChain,
    operation: &str,
    matter: Option<String>,
    target: &str,
    target_id: Option<String>,
    field: &str,
) -> Result<(), ExitCode> {
    use crate::access::record::{AccessEntry, AccessRecord, Decision};
    let record = AccessRecord {
        principal: "system".into(),
        session: None,
        operation: operation.into(),
        request_id: None,
        client_address: None,
        entries: vec![AccessEntry {
            matter,
            target: target.into(),
            target_id: target_id.filter(|id| !id.is_empty()),
            fields: vec![field.into()],
            decision: Decision::Allowed,
            reason: "operator".into(),
        }],
    };
    access
        .record(&record)
        .await
        .map(|_| ())
        .map_err(|error| fail(format!("the access record could not be written: {error}")))
}

/// Reports a failure on standard error and returns the generic failure code.
pub(crate) fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("docket: {error}");
    ExitCode::from(2)
}
