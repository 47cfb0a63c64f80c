//! A group's state machine as openraft sees it: apply, snapshots, and the
//! snapshot file that lets a restarted node skip replaying the whole log.
//!
//! Snapshot file layout (little-endian): 8-byte magic `SMSNAP\0\x01`
//! (the last byte is the format version), `u32` payload length, `u32`
//! CRC32C of the payload, then the payload: the postcard encoding of the
//! snapshot's metadata and the state machine's encoded snapshot. It is
//! written to a temporary file, synced, renamed over the old one, and the
//! directory synced: a crash leaves either the old snapshot or the new one.

// openraft's `StorageError` is large, and it is what its traits return.
#![allow(clippy::result_large_err)]

use crate::state_machine::StateMachine;
use crate::types::{NodeId, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

const MAGIC: &[u8; 8] = b"SMSNAP\0\x01";
const HEADER: usize = 16;

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// What a group's handles share with its store.
pub(crate) struct Shared<SM> {
    pub(crate) sm: RwLock<SM>,
    /// The index of the last applied entry: the state's version.
    pub(crate) version: watch::Sender<u64>,
}

/// A snapshot as kept in memory: its metadata and encoded bytes.
#[derive(Clone)]
struct Stored {
    meta: Meta,
    data: Vec<u8>,
}

/// The group's latest snapshot, and whether its file may still be written.
#[derive(Default)]
struct Slot {
    current: Option<Stored>,
    closed: bool,
}

/// Closes a group's snapshot file at shutdown: a build still running then
/// must not write the file that a reopened group reads (it did, in a test
/// that reopened a node at once).
#[derive(Clone)]
pub(crate) struct SnapshotCloser(Arc<Mutex<Slot>>);

impl SnapshotCloser {
    /// Waits for a write in progress, then refuses any later one.
    pub(crate) fn close(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    }
}

/// The `RaftStateMachine` of a group.
pub(crate) struct Store<SM: StateMachine> {
    shared: Arc<Shared<SM>>,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    current: Arc<Mutex<Slot>>,
    path: PathBuf,
    built: u64,
}

/// Why a snapshot file could not be loaded.
pub(crate) enum LoadError {
    Io(std::io::Error),
    Corrupt(String),
}

impl<SM: StateMachine> Store<SM> {
    /// Opens the store, restoring `sm` from the snapshot at `path` if there
    /// is one.
    pub(crate) fn open(mut sm: SM, path: PathBuf) -> Result<(Self, Arc<Shared<SM>>), LoadError> {
        let mut applied = None;
        let mut membership = StoredMembership::default();
        let mut current = None;
        if let Some(stored) = read_snapshot(&path)? {
            let state: SM::Snapshot = postcard::from_bytes(&stored.data)
                .map_err(|e| LoadError::Corrupt(format!("state does not decode: {e}")))?;
            sm.restore(state);
            applied = stored.meta.last_log_id;
            membership = stored.meta.last_membership.clone();
            current = Some(stored);
        }
        let shared = Arc::new(Shared {
            sm: RwLock::new(sm),
            version: watch::channel(applied.map_or(0, |l| l.index)).0,
        });
        let store = Self {
            shared: Arc::clone(&shared),
            applied,
            membership,
            current: Arc::new(Mutex::new(Slot {
                current,
                closed: false,
            })),
            path,
            built: 0,
        };
        Ok((store, shared))
    }

    /// What shuts the snapshot file at node shutdown.
    pub(crate) fn closer(&self) -> SnapshotCloser {
        SnapshotCloser(Arc::clone(&self.current))
    }
}

fn read_snapshot(path: &Path) -> Result<Option<Stored>, LoadError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(LoadError::Corrupt("wrong magic or version".into()));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(LoadError::Corrupt(format!(
            "{} payload bytes, the header says {len}",
            payload.len()
        )));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(LoadError::Corrupt("checksum mismatch".into()));
    }
    let (meta, data): (Meta, Vec<u8>) = postcard::from_bytes(payload)
        .map_err(|e| LoadError::Corrupt(format!("metadata does not decode: {e}")))?;
    Ok(Some(Stored { meta, data }))
}

fn write_snapshot(path: &Path, stored: &Stored) -> std::io::Result<()> {
    use std::io::Write;
    let payload =
        postcard::to_allocvec(&(&stored.meta, &stored.data)).map_err(std::io::Error::other)?;
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::other("snapshot larger than 4 GiB"))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&len.to_le_bytes())?;
        f.write_all(&crc32c::crc32c(&payload).to_le_bytes())?;
        f.write_all(&payload)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes `stored` and makes it current, unless a newer snapshot already
/// is (a build that finished after an install must not overwrite it). The
/// lock is held across the write so two writers cannot interleave.
fn persist(slot: &Mutex<Slot>, path: &Path, stored: Stored) -> std::io::Result<()> {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if slot.closed {
        return Err(std::io::Error::other("the group has shut down"));
    }
    if slot
        .current
        .as_ref()
        .is_some_and(|c| c.meta.last_log_id > stored.meta.last_log_id)
    {
        return Ok(());
    }
    write_snapshot(path, &stored)?;
    slot.current = Some(stored);
    Ok(())
}

fn io_error(e: &std::io::Error) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, e).into()
}

/// Encodes what `apply` answers: the response, or why the command could
/// not be decoded (a command is never allowed to panic a replica).
fn reply<T: serde::Serialize>(r: &Result<T, String>) -> Vec<u8> {
    postcard::to_allocvec(r).unwrap_or_default()
}

impl<SM: StateMachine> RaftStateMachine<TypeConfig> for Store<SM> {
    type SnapshotBuilder = Builder<SM>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<u8>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        {
            let mut sm = self.shared.sm.write().unwrap_or_else(|e| e.into_inner());
            for entry in entries {
                self.applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => replies.push(Vec::new()),
                    EntryPayload::Normal(bytes) => {
                        // A batch of commands, applied in order at one index.
                        let index = entry.log_id.index;
                        let outcomes: Vec<Vec<u8>> =
                            match postcard::from_bytes::<Vec<Vec<u8>>>(&bytes) {
                                Ok(commands) => commands
                                    .iter()
                                    .map(|c| {
                                        reply(&match postcard::from_bytes::<SM::Command>(c) {
                                            Ok(cmd) => Ok(sm.apply(cmd, index)),
                                            Err(e) => Err(format!("undecodable command: {e}")),
                                        })
                                    })
                                    .collect(),
                                // Nothing to answer one by one: the proposer
                                // reports the wrong shape to every caller.
                                Err(_) => Vec::new(),
                            };
                        replies.push(postcard::to_allocvec(&outcomes).unwrap_or_default());
                    }
                    EntryPayload::Membership(m) => {
                        self.membership = StoredMembership::new(Some(entry.log_id), m);
                        replies.push(Vec::new());
                    }
                }
            }
        }
        if let Some(l) = self.applied {
            self.shared.version.send_replace(l.index);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Builder<SM> {
        self.built += 1;
        let state = self
            .shared
            .sm
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot();
        Builder {
            state: Some(state),
            meta: Meta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id: format!("{}-{}", self.applied.map_or(0, |l| l.index), self.built),
            },
            current: Arc::clone(&self.current),
            path: self.path.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let state: SM::Snapshot = postcard::from_bytes(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                &std::io::Error::other(e),
            ))
        })?;
        let stored = Stored {
            meta: meta.clone(),
            data,
        };
        // On disk first: after a crash the node restarts from this snapshot,
        // never from a state older than what it acknowledged.
        persist(&self.current, &self.path, stored).map_err(|e| io_error(&e))?;
        self.shared
            .sm
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .restore(state);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.shared
            .version
            .send_replace(self.applied.map_or(0, |l| l.index));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .clone();
        Ok(current.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Encodes and persists a snapshot taken at one moment, off the apply path.
pub(crate) struct Builder<SM: StateMachine> {
    state: Option<SM::Snapshot>,
    meta: Meta,
    current: Arc<Mutex<Slot>>,
    path: PathBuf,
}

impl<SM: StateMachine> RaftSnapshotBuilder<TypeConfig> for Builder<SM> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let state = self
            .state
            .take()
            .ok_or_else(|| io_error(&std::io::Error::other("snapshot builder used twice")))?;
        let data =
            postcard::to_allocvec(&state).map_err(|e| io_error(&std::io::Error::other(e)))?;
        let stored = Stored {
            meta: self.meta.clone(),
            data,
        };
        let (path, s, current) = (self.path.clone(), stored.clone(), Arc::clone(&self.current));
        tokio::task::spawn_blocking(move || persist(&current, &path, s))
            .await
            .map_err(|e| io_error(&std::io::Error::other(e)))?
            .map_err(|e| io_error(&e))?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}
