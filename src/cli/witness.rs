//! `docket witness`: an independent party's check that the log only ever grows, and its
//! cosignature on each checkpoint it found consistent with the last one it cosigned.
//!
//! A witness keeps a state directory of its own (docs/witnessing.md):
//!
//! - `witness.key`: its Ed25519 seed in hex (mode 0600); `witness.vkey`: its C2SP verifier key,
//!   whose name is the witness's name.
//! - `<origin>/<size>.checkpoint` (the origin percent-encoded): every checkpoint it cosigned,
//!   with the log's signature and its cosignature. The largest is the one the next checkpoint
//!   must be consistent with, so the directory is its memory of the log; it is also valid input
//!   for `docket verify --against`.
//! - `witness.lock`: held while a run checks and updates the state, so two runs on one
//!   directory cannot both cosign from the same last checkpoint.
//!
//! The old root a consistency proof is checked against comes from the witness's own saved
//! checkpoint, never from the log, so a log that rewrote or dropped what the witness saw cannot
//! obtain its cosignature again. This witness runs beside Docket with read access to its
//! database; a remote one would fetch the checkpoint and the proof over HTTP.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::fail;
use crate::config::Settings;
use crate::log::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::log::merkle::verify_consistency;
use crate::log::note::{self, COSIGNATURE_V1, ED25519};
use crate::store::{StoreError, open_existing_store};
use crate::transparency::keys::KeyHistory;
use crate::transparency::{LogTree, TreeError};

const KEY_FILE: &str = "witness.key";
const VERIFIER_KEY_FILE: &str = "witness.vkey";
const LOCK_FILE: &str = "witness.lock";

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Create a witness's state directory and key, and print its verifier key.
    Init {
        /// The witness's state directory (created; must not hold a witness key yet).
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The witness's name in its cosignatures, e.g. `witness.auditor.example`.
        #[arg(long)]
        name: String,
    },
    /// Cosign the log's latest checkpoint if it is consistent with the last one cosigned.
    Cosign(CosignArgs),
}

#[derive(Debug, Args)]
pub struct CosignArgs {
    /// The witness's state directory.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Check the log's signature with the key the log's own events put in force at the
    /// checkpoint's size.
    #[arg(
        long,
        conflicts_with = "log_vkey",
        required_unless_present = "log_vkey"
    )]
    log_key_from_log: bool,
    /// The log's C2SP verifier key (`<origin>+<hash>+<key>`); repeat it for each key the log
    /// has rotated through.
    #[arg(long, value_name = "VKEY")]
    log_vkey: Vec<String>,
}

/// Why a witness run cosigned nothing.
#[derive(Debug, thiserror::Error)]
enum WitnessError {
    #[error("the log has no checkpoint to cosign yet")]
    NoCheckpoint,
    #[error("checkpoint {size} is not signed by the log's key")]
    NotSignedByLog { size: u64 },
    #[error("the stored checkpoint {size} states another size or root in its note")]
    Mislabelled { size: u64 },
    #[error(
        "refusing checkpoint {offered}: this witness already cosigned checkpoint {seen} of this \
         log, and a log never shrinks (rollback)"
    )]
    Rollback { seen: u64, offered: u64 },
    #[error("refusing checkpoint {size}: this witness cosigned another root for that size (fork)")]
    Fork { size: u64 },
    #[error(
        "refusing checkpoint {offered}: it is not consistent with checkpoint {seen}, which this \
         witness cosigned (the log's first {seen} events changed)"
    )]
    Inconsistent { seen: u64, offered: u64 },
    #[error("{0}")]
    State(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl WitnessError {
    /// Refusals exit 1, like a failed verification; anything that prevented the check, 2.
    fn exit_code(&self) -> ExitCode {
        match self {
            WitnessError::NoCheckpoint
            | WitnessError::NotSignedByLog { .. }
            | WitnessError::Mislabelled { .. }
            | WitnessError::Rollback { .. }
            | WitnessError::Fork { .. }
            | WitnessError::Inconsistent { .. } => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

fn io_error(what: &str, path: &Path, error: impl std::fmt::Display) -> WitnessError {
    WitnessError::State(format!("{what} {}: {error}", path.display()))
}

pub async fn run(settings: &Settings, command: WitnessCommand) -> ExitCode {
    match command {
        WitnessCommand::Init { state, name } => match init(&state, &name) {
            Ok(verifier_key) => {
                println!("{verifier_key}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(error),
        },
        WitnessCommand::Cosign(args) => match cosign(settings, &args).await {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("docket: witness: {error}");
                error.exit_code()
            }
        },
    }
}

/// Creates the state directory and the witness's key; returns its verifier key.
fn init(state: &Path, name: &str) -> Result<String, WitnessError> {
    if !note::valid_key_name(name) {
        return Err(WitnessError::State(
            "a witness name is non-empty printable text without spaces or `+`".into(),
        ));
    }
    fs::create_dir_all(state).map_err(|e| io_error("cannot create", state, e))?;
    fs::set_permissions(state, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_error("cannot restrict", state, e))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut())
        .map_err(|e| WitnessError::State(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let verifier_key = note::verifier_key(name, COSIGNATURE_V1, &key.verifying_key());

    let path = state.join(KEY_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_error("cannot create", &path, e))?;
    let encoded = Zeroizing::new(hex::encode(seed.as_ref()));
    file.write_all(encoded.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("cannot write", &path, e))?;
    write_atomically(state, VERIFIER_KEY_FILE, &format!("{verifier_key}\n"))?;
    Ok(verifier_key)
}

/// The witness's identity, read from its state directory.
struct Witness {
    state: PathBuf,
    name: String,
    key: SigningKey,
}

impl Witness {
    fn load(state: &Path) -> Result<Self, WitnessError> {
        let path = state.join(KEY_FILE);
        let metadata = fs::metadata(&path).map_err(|e| io_error("no witness key at", &path, e))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(WitnessError::State(format!(
                "{} is readable by others; chmod 600 it",
                path.display()
            )));
        }
        let text = Zeroizing::new(
            fs::read_to_string(&path).map_err(|e| io_error("cannot read", &path, e))?,
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut())
            .map_err(|_| WitnessError::State(format!("{} is not a key", path.display())))?;
        let key = SigningKey::from_bytes(&seed);

        let path = state.join(VERIFIER_KEY_FILE);
        let text = fs::read_to_string(&path).map_err(|e| io_error("cannot read", &path, e))?;
        let (name, _, public) =
            note::parse_verifier_key(&text).map_err(|e| io_error("cannot use", &path, e))?;
        if public != key.verifying_key() {
            return Err(WitnessError::State(format!(
                "{} is not the verifier key of {KEY_FILE}",
                path.display()
            )));
        }
        Ok(Witness {
            state: state.to_owned(),
            name,
            key,
        })
    }

    /// Takes the state directory's lock, waiting for another run to finish.
    async fn lock(&self) -> Result<File, WitnessError> {
        let path = self.state.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, e))?;
        tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| io_error("cannot lock", &path, e))?
            .map_err(|e| io_error("cannot lock", &path, e))
    }

    fn log_dir(&self, origin: &str) -> PathBuf {
        self.state.join(encode_origin(origin))
    }

    /// The largest checkpoint of `origin` this witness cosigned.
    fn latest(&self, origin: &str) -> Result<Option<SignedCheckpoint>, WitnessError> {
        let dir = self.log_dir(origin);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("cannot read", &dir, error)),
        };
        let mut largest: Option<u64> = None;
        for entry in entries {
            let name = entry
                .map_err(|e| io_error("cannot read", &dir, e))?
                .file_name();
            let size = name
                .to_str()
                .and_then(|name| name.strip_suffix(".checkpoint"))
                .and_then(|size| size.parse::<u64>().ok());
            largest = largest.max(size);
        }
        let Some(size) = largest else {
            return Ok(None);
        };
        let path = dir.join(format!("{size}.checkpoint"));
        let text = fs::read_to_string(&path).map_err(|e| io_error("cannot read", &path, e))?;
        let saved = SignedCheckpoint::parse(&text).map_err(|e| io_error("cannot use", &path, e))?;
        if saved.checkpoint.size != size || saved.checkpoint.origin != origin {
            return Err(io_error("cannot use", &path, "it is another checkpoint"));
        }
        Ok(Some(saved))
    }

    fn save(&self, checkpoint: &SignedCheckpoint) -> Result<(), WitnessError> {
        let dir = self.log_dir(&checkpoint.checkpoint.origin);
        fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error("cannot restrict", &dir, e))?;
        let name = format!("{}.checkpoint", checkpoint.checkpoint.size);
        write_atomically(&dir, &name, &checkpoint.encode())
    }
}

/// Cosigns the log's latest checkpoint after every check; returns what was done.
async fn cosign(settings: &Settings, args: &CosignArgs) -> Result<String, WitnessError> {
    let witness = Witness::load(&args.state)?;
    let _lock = witness.lock().await?;
    let store = open_existing_store(&settings.log_options()).await?;
    let stored = store
        .tree()
        .latest_checkpoint()
        .await?
        .ok_or(WitnessError::NoCheckpoint)?;
    let offered = SignedCheckpoint::parse(&stored.note)?;
    if offered.checkpoint.size != stored.tree_size || offered.checkpoint.root != stored.root {
        return Err(WitnessError::Mislabelled {
            size: stored.tree_size,
        });
    }
    let (origin, size, root) = (
        offered.checkpoint.origin.clone(),
        offered.checkpoint.size,
        offered.checkpoint.root,
    );

    // The log must have signed it, with a key the witness accepts.
    let signed = if args.log_key_from_log {
        let keys = KeyHistory::load(store.as_ref()).await?;
        keys.in_force_after(size)
            .is_some_and(|key| offered.signed_by_log_key(&key.public_key))
    } else {
        args.log_vkey.iter().any(|text| {
            note::parse_verifier_key(text).is_ok_and(|(name, key_type, key)| {
                name == origin && key_type == ED25519 && offered.signed_by_log_key(&key)
            })
        })
    };
    if !signed {
        return Err(WitnessError::NotSignedByLog { size });
    }

    // It must extend what this witness cosigned before, by the witness's own record of it.
    let consistent_with = match witness.latest(&origin)? {
        None => None,
        Some(seen) if size < seen.checkpoint.size => {
            return Err(WitnessError::Rollback {
                seen: seen.checkpoint.size,
                offered: size,
            });
        }
        Some(seen) if size == seen.checkpoint.size => {
            if seen.checkpoint.root != root {
                return Err(WitnessError::Fork { size });
            }
            Some(size)
        }
        Some(seen) => {
            let seen_size = seen.checkpoint.size;
            let proof = LogTree::new(store.clone())
                .consistency_proof(seen_size, size)
                .await?;
            verify_consistency(seen_size, size, &seen.checkpoint.root, &root, &proof.path)
                .map_err(|_| WitnessError::Inconsistent {
                    seen: seen_size,
                    offered: size,
                })?;
            Some(seen_size)
        }
    };

    // Cosign; keep it first, then hand it to the log (a failure there is mended by a rerun).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let line = note::cosign(&witness.name, &witness.key, offered.note().text(), now);
    let mut cosigned = without_signer(&offered, &witness.name)?;
    cosigned.add_cosignature(line.clone())?;
    witness.save(&cosigned)?;

    // Add it to the log's current note, which other witnesses may have extended meanwhile.
    // Limitation: two witnesses cosigning one checkpoint at the same instant can overwrite each
    // other's line in the log's copy; each keeps its own in its state directory.
    let current = match store.tree().checkpoint(size).await? {
        Some(current) => SignedCheckpoint::parse(&current.note)?,
        None => offered.clone(),
    };
    let current = if current.checkpoint == offered.checkpoint {
        current
    } else {
        offered
    };
    let mut published = without_signer(&current, &witness.name)?;
    published.add_cosignature(line)?;
    store
        .tree()
        .update_checkpoint_note(size, &published.encode())
        .await?;

    Ok(match consistent_with {
        None => format!(
            "cosigned {origin} checkpoint {size} as {}: the first this witness has seen of this \
             log",
            witness.name
        ),
        Some(seen) if seen == size => format!(
            "cosigned {origin} checkpoint {size} as {} again: the log has not grown since",
            witness.name
        ),
        Some(seen) => format!(
            "cosigned {origin} checkpoint {size} as {}: consistent with checkpoint {seen}",
            witness.name
        ),
    })
}

/// The checkpoint with any signature line under `name` removed, so a line planted under the
/// witness's name cannot stand in for its cosignature.
fn without_signer(
    checkpoint: &SignedCheckpoint,
    name: &str,
) -> Result<SignedCheckpoint, WitnessError> {
    let encoded = checkpoint.encode();
    let prefix = format!("\u{2014} {name} ");
    let (text, signatures) = encoded
        .rsplit_once("\n\n")
        .ok_or(CheckpointError::Note(note::NoteError::MissingSignatures))?;
    let kept: String = signatures
        .lines()
        .filter(|line| !line.starts_with(&prefix))
        .map(|line| format!("{line}\n"))
        .collect();
    Ok(SignedCheckpoint::parse(&format!("{text}\n\n{kept}"))?)
}

/// A file name for an origin: letters, digits, `.`, `-` and `_` as they are, every other byte
/// as `%XX`, so distinct origins never share a folder.
fn encode_origin(origin: &str) -> String {
    origin
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Writes `dir/name` through a temporary file and a rename, so it is never seen half-written.
fn write_atomically(dir: &Path, name: &str, contents: &str) -> Result<(), WitnessError> {
    let temporary = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| io_error("cannot create", &temporary, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("cannot write", &temporary, e))?;
    fs::rename(&temporary, &path).map_err(|e| io_error("cannot write", &path, e))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error("cannot sync", dir, e))
}
