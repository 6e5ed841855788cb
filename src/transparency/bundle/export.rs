//! Making a bundle from the log (docs/evidence-bundle.md section 4): the scope's events as
//! stored, the `system` stream's key events, a checkpoint covering them, and an inclusion proof
//! of each event in that checkpoint's tree.
//!
//! A bundle is an audited read: before it is handed out, the export is written to the access
//! chain (principal: the investigator named, or `system` for the operator), and if that record
//! cannot be written nothing is handed out. An investigator must be an active user whose role is
//! auditor, partner or admin; a refusal is recorded too. Every bundle is verified as
//! [`super::verify_bundle`] would before it leaves, so a log whose stored data does not bear out
//! its checkpoint yields an error, not a bundle that fails later.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::access::chain::{AccessChain, AccessError};
use crate::access::record::Decision;
use crate::domain::RecordedEvent;
use crate::domain::ids::MatterNumber;
use crate::domain::matter::Matter;
use crate::domain::{OpenPrivate, PrivatePart};
use crate::log::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::log::merkle::{LeafRange, NodeId, TreeHash, inclusion_ranges};
use crate::log::time::now_timestamp;
use crate::log::{Event, StreamId};
use crate::store::{EventLog, LogStore, StoreError, StoredCheckpoint, TreeStore};
use crate::transparency::{Checkpointer, SigningError};
use crate::vault::KeySet;

use super::BundleFailure;
use super::audit::{Audit, authorise};
use super::format::{Bundle, EncodingError, FORMAT, Manifest, ProvenEvent, Scope, View, ViewEvent};
use super::verify::{VerifyOptions, verify_bundle};

/// Events read per query.
const PAGE: u32 = 1_000;
/// Tree nodes fetched per query.
const NODES_PER_FETCH: usize = 10_000;

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportScope {
    /// Every event of the matter with this number.
    Matter(String),
    /// The events at positions `from..=to`.
    Range { from: u64, to: u64 },
}

/// An export as the operator asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub scope: ExportScope,
    /// Sign a fresh checkpoint of the whole log rather than use the smallest stored one that
    /// covers the scope.
    pub checkpoint_now: bool,
    /// The directory user the bundle is for; needed for a view.
    pub investigator: Option<String>,
    /// Add the decoded view of the payloads (and, for a matter, its folded state).
    pub with_view: bool,
}

/// A bundle ready to be written, and where its export is recorded in the access chain.
#[derive(Debug, Clone)]
pub struct Exported {
    pub bundle: Bundle,
    pub bytes: Vec<u8>,
    pub access_positions: Vec<u64>,
}

/// Why no bundle was made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    InvalidMatterNumber(String),
    #[error("the log holds no matter {0}")]
    NoSuchMatter(String),
    #[error("positions {from}-{to} are not a range of the log, which ends at position {end}")]
    RangeOutsideLog { from: u64, to: u64, end: u64 },
    #[error("a view is only made for a named investigator (--investigator USER_ID)")]
    ViewNeedsInvestigator,
    #[error(
        "{user_id} may not receive an evidence bundle: an investigator is an active user with \
         the role auditor, partner or admin ({reason})"
    )]
    InvestigatorRefused {
        user_id: String,
        reason: &'static str,
    },
    #[error("the access record could not be written, so nothing was exported: {0}")]
    NotRecorded(AccessError),
    #[error("the log's data does not bear out its checkpoint: {0}")]
    DoesNotVerify(BundleFailure),
    #[error("the payload at position {position} is not JSON, so no view can show it")]
    Undecodable { position: u64 },
    #[error("the stored tree lacks node {level}/{index}")]
    MissingNode { level: u8, index: u64 },
    #[error("no checkpoint could be signed: {0}")]
    Signing(#[from] SigningError),
    #[error("the stored checkpoint cannot be read: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    #[error("the client data could not be opened for the view: {0}")]
    Vault(#[from] crate::vault::VaultError),
}

impl ExportError {
    /// Whether the export was refused for what was asked (exit code 1), not because something
    /// failed (exit code 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ExportError::InvalidMatterNumber(_)
                | ExportError::NoSuchMatter(_)
                | ExportError::RangeOutsideLog { .. }
                | ExportError::ViewNeedsInvestigator
                | ExportError::InvestigatorRefused { .. }
                | ExportError::DoesNotVerify(_)
        )
    }
}

/// Makes the bundle `request` asks for, records the export in `access`, and returns it.
pub async fn export(
    log: &Arc<EventLog>,
    checkpointer: &Checkpointer,
    access: &AccessChain,
    vault: &crate::vault::Vault,
    request: &ExportRequest,
) -> Result<Exported, ExportError> {
    if request.with_view && request.investigator.is_none() {
        return Err(ExportError::ViewNeedsInvestigator);
    }
    let store = log.store().as_ref();
    let export_id = uuid::Uuid::now_v7().to_string();
    let (scope, stream) = resolve_scope(&request.scope)?;
    let audit = Audit {
        principal: request
            .investigator
            .as_ref()
            .map_or_else(|| "system".to_owned(), |user| format!("user:{user}")),
        export_id: export_id.clone(),
        with_view: request.with_view,
    };

    // An investigator must be one; a refusal is recorded like any access decision.
    if let Some(user_id) = &request.investigator
        && let Err(reason) = authorise(log, user_id).await?
    {
        let refused = audit.records(&scope, &[], Decision::Denied, reason);
        if let Err(error) = access.record_all(&refused).await {
            tracing::error!(%error, "a refused export could not be recorded");
        }
        return Err(ExportError::InvestigatorRefused {
            user_id: user_id.clone(),
            reason,
        });
    }

    // The scope's events, the checkpoint that covers them, and the key events up to it.
    let events = match &stream {
        Some(stream) => read_stream(store, stream.as_str(), u64::MAX).await?,
        None => read_range(store, &request.scope).await?,
    };
    let Some(last) = events.last().map(|event| event.position) else {
        return Err(match (&scope.matter, &request.scope) {
            (None, ExportScope::Range { from, to }) => ExportError::RangeOutsideLog {
                from: *from,
                to: *to,
                end: store.head().await?.position,
            },
            _ => ExportError::NoSuchMatter(scope.matter.clone().unwrap_or_default()),
        });
    };
    let checkpoint = choose_checkpoint(store, checkpointer, last, request.checkpoint_now).await?;
    let signed = SignedCheckpoint::parse(&checkpoint.note)?;
    let keys = read_stream(store, StreamId::system().as_str(), checkpoint.tree_size).await?;

    // Proofs of every event in the checkpoint's tree.
    let positions: Vec<u64> = keys
        .iter()
        .chain(&events)
        .map(|event| event.position)
        .collect();
    let mut paths = inclusion_paths(store.tree(), &positions, checkpoint.tree_size)
        .await?
        .into_iter();
    let mut prove = |events: Vec<Event>| -> Vec<ProvenEvent> {
        events
            .into_iter()
            .map(|event| ProvenEvent::new(event, paths.next().unwrap_or_default()))
            .collect()
    };
    let view = match request.with_view {
        true => {
            let keys = vault.keys_for_events(&events).await?;
            Some(view_of(&audit.principal, &events, &keys, stream.is_some())?)
        }
        false => None,
    };
    let stream_version = stream
        .as_ref()
        .and_then(|_| events.last().map(|e| e.stream_version));
    let event_count = events.len() as u64;
    let proven_keys = prove(keys);
    let proven_events = prove(events);

    let mut bundle = Bundle {
        manifest: Manifest {
            format: FORMAT.to_owned(),
            created_at: now_timestamp(),
            origin: signed.checkpoint.origin.clone(),
            scope: scope.clone(),
            stream_version,
            events: event_count,
            tree_size: checkpoint.tree_size,
            export_id,
            access_position: None,
            digests: Default::default(),
        },
        checkpoint: checkpoint.note,
        keys: proven_keys,
        events: proven_events,
        view,
    };
    bundle.seal()?;

    // Nothing leaves that would not verify, and nothing leaves unrecorded.
    verify_bundle(&bundle.to_bytes()?, &VerifyOptions::default())
        .map_err(ExportError::DoesNotVerify)?;
    let shown: Vec<&ProvenEvent> = bundle.events.iter().collect();
    let records = audit.records(&scope, &shown, Decision::Allowed, audit.reason());
    let access_positions = access
        .record_all(&records)
        .await
        .map_err(ExportError::NotRecorded)?;
    bundle.manifest.access_position = access_positions.first().copied();
    bundle.seal()?;
    let bytes = bundle.to_bytes()?;
    Ok(Exported {
        bundle,
        bytes,
        access_positions,
    })
}

/// The manifest's scope and, for a matter, its stream.
fn resolve_scope(scope: &ExportScope) -> Result<(Scope, Option<StreamId>), ExportError> {
    match scope {
        ExportScope::Matter(number) => {
            let number = MatterNumber::parse(number)
                .map_err(|error| ExportError::InvalidMatterNumber(error.to_string()))?;
            Ok((Scope::matter(number.as_str()), Some(number.stream())))
        }
        ExportScope::Range { from, to } => Ok((Scope::range(*from, *to), None)),
    }
}

/// A stream's events at positions up to `until`.
async fn read_stream(
    store: &dyn LogStore,
    stream: &str,
    until: u64,
) -> Result<Vec<Event>, StoreError> {
    let mut events: Vec<Event> = Vec::new();
    loop {
        let from = events.last().map_or(1, |event| event.stream_version + 1);
        let page = store.read_stream_page(stream, from, PAGE).await?;
        let full = page.len() == PAGE as usize;
        let before = events.len();
        let mut beyond = false;
        for event in page {
            if event.position > until {
                beyond = true;
                break;
            }
            events.push(event);
        }
        if !full || beyond || events.len() == before {
            return Ok(events);
        }
    }
}

/// The events at positions `from..=to`, which must lie in the log.
async fn read_range(store: &dyn LogStore, scope: &ExportScope) -> Result<Vec<Event>, ExportError> {
    let ExportScope::Range { from, to } = *scope else {
        return Ok(Vec::new());
    };
    let end = store.head().await?.position;
    if from == 0 || from > to || to > end {
        return Err(ExportError::RangeOutsideLog { from, to, end });
    }
    let mut events: Vec<Event> = Vec::new();
    while events.last().map_or(from, |event| event.position + 1) <= to {
        let next = events.last().map_or(from, |event| event.position + 1);
        let limit = u32::try_from((to - next + 1).min(u64::from(PAGE))).unwrap_or(PAGE);
        let page = store.read_page(next, limit).await?;
        if page.is_empty() {
            break;
        }
        events.extend(page.into_iter().filter(|event| event.position <= to));
    }
    Ok(events)
}

/// The smallest stored checkpoint covering `last`, or (when asked, or when none does) a fresh
/// checkpoint of the whole log.
async fn choose_checkpoint(
    store: &dyn LogStore,
    checkpointer: &Checkpointer,
    last: u64,
    now: bool,
) -> Result<StoredCheckpoint, ExportError> {
    if !now && let Some(stored) = store.tree().checkpoint_covering(last).await? {
        return Ok(stored);
    }
    Ok(checkpointer.checkpoint_now().await?)
}

/// The inclusion proof of each position in the tree of `tree_size` leaves, from the stored
/// perfect subtrees: every node any proof needs is fetched once.
async fn inclusion_paths(
    tree: &dyn TreeStore,
    positions: &[u64],
    tree_size: u64,
) -> Result<Vec<Vec<TreeHash>>, ExportError> {
    let mut shapes: Vec<Vec<Vec<NodeId>>> = Vec::with_capacity(positions.len());
    let mut needed = BTreeSet::new();
    for &position in positions {
        let ranges = inclusion_ranges(position.saturating_sub(1), tree_size).map_err(|_| {
            ExportError::MissingNode {
                level: 0,
                index: position,
            }
        })?;
        let pieces: Vec<Vec<NodeId>> = ranges.into_iter().map(LeafRange::pieces).collect();
        needed.extend(pieces.iter().flatten().copied());
        shapes.push(pieces);
    }
    let needed: Vec<NodeId> = needed.into_iter().collect();
    let mut hashes: HashMap<NodeId, TreeHash> = HashMap::with_capacity(needed.len());
    for chunk in needed.chunks(NODES_PER_FETCH) {
        for (id, hash) in chunk.iter().zip(tree.tree_nodes(chunk).await?) {
            let hash = hash.ok_or(ExportError::MissingNode {
                level: id.level,
                index: id.index,
            })?;
            // Level 0 stores the event hash itself; the tree's node is its leaf hash.
            let hash = if id.level == 0 {
                crate::log::merkle::leaf_hash(&hash)
            } else {
                hash
            };
            hashes.insert(*id, hash);
        }
    }
    let node = |id: &NodeId| hashes.get(id).copied();
    shapes
        .iter()
        .map(|ranges| {
            ranges
                .iter()
                .map(|pieces| {
                    let pieces: Option<Vec<TreeHash>> = pieces.iter().map(node).collect();
                    pieces
                        .as_deref()
                        .and_then(LeafRange::fold)
                        .ok_or(ExportError::MissingNode { level: 0, index: 0 })
                })
                .collect()
        })
        .collect()
}

/// The payloads decoded and, for a matter, its state folded from them; the state is left out
/// when an event cannot be read as the domain's.
fn view_of(
    investigator: &str,
    events: &[Event],
    keys: &KeySet,
    matter: bool,
) -> Result<View, ExportError> {
    let shown = events
        .iter()
        .map(|event| {
            let undecodable = || ExportError::Undecodable {
                position: event.position,
            };
            let mut payload: serde_json::Value =
                serde_json::from_str(&event.payload).map_err(|_| undecodable())?;
            // Client data is shown opened; an erased subject's as `{"erased": true}`.
            if let Some(private) = payload.get_mut("private")
                && private.get("sealed").is_some()
            {
                *private = match keys.open(&event.id, private).map_err(|_| undecodable())? {
                    PrivatePart::Plain(plain) => plain,
                    PrivatePart::Erased | PrivatePart::Unavailable => {
                        serde_json::json!({ "erased": true })
                    }
                };
            }
            Ok(ViewEvent {
                position: event.position,
                payload,
            })
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    let folded = matter.then(|| fold(events, keys)).flatten();
    Ok(View {
        investigator: investigator.to_owned(),
        events: shown,
        matter: folded,
    })
}

fn fold(events: &[Event], keys: &KeySet) -> Option<serde_json::Value> {
    let mut matter: Option<Matter> = None;
    for event in events {
        match RecordedEvent::open(event, keys) {
            Ok(Some(recorded)) => Matter::apply(&mut matter, &recorded),
            Ok(None) => {}
            Err(_) => return None,
        }
    }
    matter.and_then(|matter| serde_json::to_value(matter).ok())
}
