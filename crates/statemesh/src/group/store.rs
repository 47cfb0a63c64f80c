//! A group's state machine as openraft sees it: apply, snapshots, and the
//! snapshot file that lets a restarted node skip replaying the whole log.
//!
//! The file's format is in [`snapshot_file`](super::snapshot_file). It is
//! written to a temporary file, synced, renamed over the old one, and the
//! directory synced: a crash leaves either the old snapshot or the new one.
//! Cached values it refers to are persisted in the group's cache location
//! before it is written, and those only the old snapshot referred to are
//! deleted after.

// openraft's `StorageError` is large, and it is what its traits return.
#![allow(clippy::result_large_err)]

use super::VersionSender;
use super::history::Recorder;
use super::rpc::{Applied, Batch};
use super::sessions::{Check, Sessions};
use super::snapshot_file::{self, Loaded, Source};
use super::snapshot_stream::SnapshotStream;
use crate::large::{self, Context, ValueStore};
use crate::types::{NodeId, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use statemesh_cache::{Key, Location};
use statemesh_client::Shared;
use statemesh_core::StateMachine;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub(crate) use snapshot_file::LoadError;

pub(crate) use snapshot_file::Meta;

/// Names temporary snapshot files apart (a build and an install may
/// write at once).
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// What a snapshot holds: the writers' sessions (so that a command retried
/// after a restart or on a replica that installed the snapshot is still
/// applied once) and the state machine's state.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Persisted<S> {
    pub(super) sessions: Sessions,
    pub(super) state: S,
}

/// The snapshot on disk: its metadata and the cache keys it refers to.
struct Current {
    meta: Meta,
    keys: HashSet<u128>,
}

/// The group's snapshot file and where its cached values are.
struct Files {
    path: PathBuf,
    values: Option<ValueStore>,
    location: Location,
}

/// The group's latest snapshot, and whether its file may still be written.
struct Slot {
    current: Option<Current>,
    closed: bool,
}

/// The snapshot slot behind its lock, and the files it describes.
struct Snapshots {
    slot: Mutex<Slot>,
    files: Files,
}

impl Snapshots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Closes a group's snapshot file at shutdown: a build still running then
/// must not write the file that a reopened group reads (it did, in a test
/// that reopened a node at once).
#[derive(Clone)]
pub(crate) struct SnapshotCloser(Arc<Snapshots>);

impl SnapshotCloser {
    /// Waits for a write in progress, then refuses any later one.
    pub(crate) fn close(&self) {
        self.0.lock().closed = true;
    }
}

/// The `RaftStateMachine` of a group.
pub(crate) struct Store<SM: StateMachine> {
    shared: Arc<Shared<SM>>,
    /// Where commands go when mirrors may follow the group.
    recorder: Option<Arc<dyn Recorder<SM>>>,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    sessions: Sessions,
    snapshots: Arc<Snapshots>,
    built: u64,
}

impl<SM: StateMachine> Store<SM> {
    /// Opens the store, restoring `sm` from the snapshot at `path` if there
    /// is one, and deletes cached values in `location` that it does not
    /// refer to (left by a crash between a snapshot and its clean-up).
    pub(crate) fn open(
        mut sm: SM,
        path: PathBuf,
        values: Option<ValueStore>,
        location: Location,
        recorder: Option<Arc<dyn Recorder<SM>>>,
    ) -> Result<(Self, Arc<Shared<SM>>), LoadError> {
        remove_temporaries(&path).map_err(LoadError::Io)?;
        let mut applied = None;
        let mut membership = StoredMembership::default();
        let mut sessions = Sessions::default();
        let mut current = None;
        match File::open(&path) {
            Ok(mut file) => {
                let loaded: Loaded<Persisted<SM::Snapshot>> = snapshot_file::read(
                    &mut file,
                    &Source::Local {
                        store: values.as_ref(),
                        location: &location,
                    },
                )?;
                sm.restore(loaded.state.state);
                sessions = loaded.state.sessions;
                applied = loaded.meta.last_log_id;
                membership = loaded.meta.last_membership.clone();
                current = Some(Current {
                    meta: loaded.meta,
                    keys: loaded.keys,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LoadError::Io(e)),
        }
        if let Some(values) = &values {
            let keep = current.as_ref().map(|c| &c.keys);
            let listing = values.pool.list(&location).map_err(io_other)?;
            for key in listing.keys {
                if !keep.is_some_and(|k| k.contains(&key.as_u128())) {
                    values.pool.delete(&location, key).map_err(io_other)?;
                }
            }
        }
        let shared = Arc::new(Shared {
            sm: RwLock::new(sm),
            version: VersionSender::new(applied.map_or(0, |l| l.index)),
        });
        if let Some(r) = &recorder {
            r.reset(applied.map_or(0, |l| l.index));
        }
        let store = Self {
            shared: Arc::clone(&shared),
            recorder,
            applied,
            membership,
            sessions,
            snapshots: Arc::new(Snapshots {
                slot: Mutex::new(Slot {
                    current,
                    closed: false,
                }),
                files: Files {
                    path,
                    values,
                    location,
                },
            }),
            built: 0,
        };
        Ok((store, shared))
    }

    /// What shuts the snapshot file at node shutdown.
    pub(crate) fn closer(&self) -> SnapshotCloser {
        SnapshotCloser(Arc::clone(&self.snapshots))
    }
}

fn io_other(e: impl std::error::Error + Send + Sync + 'static) -> LoadError {
    LoadError::Io(std::io::Error::other(e))
}

/// Deletes temporary files of writes a crash interrupted.
fn remove_temporaries(path: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let prefix = temporary_prefix(path);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn temporary_prefix(path: &Path) -> String {
    format!(
        "{}.tmp-",
        path.file_name()
            .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned())
    )
}

/// Writes the group's own file for `state` taken at `meta` and makes it
/// current, unless a newer snapshot already is (a build that finished after
/// an install must not overwrite it). The lock is held across the rename
/// and the clean-up so two writers cannot interleave.
fn persist<S: serde::Serialize>(
    snapshots: &Snapshots,
    meta: &Meta,
    state: &S,
) -> std::io::Result<()> {
    let files = &snapshots.files;
    let (bytes, keys) = snapshot_file::encode_local(state, &files.location)?;
    let tmp = files.path.with_file_name(format!(
        "{}{}",
        temporary_prefix(&files.path),
        TEMPORARY.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        snapshot_file::write(&mut f, meta, &[], &bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let mut slot = snapshots.lock();
    if slot.closed
        || slot
            .current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > meta.last_log_id)
    {
        let _ = std::fs::remove_file(&tmp);
        return if slot.closed {
            Err(std::io::Error::other("the group has shut down"))
        } else {
            Ok(())
        };
    }
    std::fs::rename(&tmp, &files.path)?;
    if let Some(dir) = files.path.parent() {
        File::open(dir)?.sync_all()?;
    }
    let old = slot.current.replace(Current {
        meta: meta.clone(),
        keys,
    });
    if let (Some(old), Some(values), Some(new)) = (old, &files.values, &slot.current) {
        for key in old.keys.difference(&new.keys) {
            // A failed delete leaves a stray blob, which the next open
            // deletes; the snapshot itself is complete.
            if let Err(e) = values.pool.delete(&files.location, Key::from_u128(*key)) {
                tracing::warn!("deleting a value no snapshot refers to: {e}");
            }
        }
    }
    Ok(())
}

fn io_error(e: &std::io::Error) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, e).into()
}

fn read_error(meta: Option<&Meta>, e: &dyn std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(
        meta.map(SnapshotMeta::signature),
        &std::io::Error::other(e.to_string()),
    )
    .into()
}

/// Encodes what `apply` answers: the response, or why the command could
/// not be decoded or the response encoded (a command is never allowed to
/// panic a replica).
fn reply<T: serde::Serialize>(r: &Result<T, String>) -> Vec<u8> {
    match postcard::to_allocvec(r) {
        Ok(bytes) => bytes,
        Err(e) => postcard::to_allocvec(&Err::<(), _>(format!(
            "the response does not encode: {}",
            large::take_failure().unwrap_or_else(|| e.to_string())
        )))
        .unwrap_or_default(),
    }
}

/// Opens `path` for openraft to read.
fn open_for_reading(path: &Path) -> std::io::Result<Box<SnapshotStream>> {
    Ok(Box::new(SnapshotStream::file(File::open(path)?)))
}

/// A file in `dir` that is gone once closed: a snapshot being received,
/// or one built for another node.
fn scratch_file(dir: &Path) -> std::io::Result<File> {
    tempfile::tempfile_in(dir)
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
        let values = self.snapshots.files.values.clone();
        let recorder = self.recorder.clone();
        {
            let mut sm = self.shared.sm.write().unwrap_or_else(|e| e.into_inner());
            // Large values in commands go to the cache as they are decoded.
            large::with_context(Context::Apply(values), || {
                for entry in entries {
                    self.applied = Some(entry.log_id);
                    match entry.payload {
                        EntryPayload::Blank => replies.push(Vec::new()),
                        EntryPayload::Normal(bytes) => {
                            replies.push(apply_batch(
                                &mut *sm,
                                &mut self.sessions,
                                &bytes,
                                entry.log_id.index,
                                recorder.as_deref(),
                            ));
                        }
                        EntryPayload::Membership(m) => {
                            self.membership = StoredMembership::new(Some(entry.log_id), m);
                            replies.push(Vec::new());
                        }
                    }
                }
            });
            // Outside the apply context: changes go to mirrors with their
            // large values inline.
            if let (Some(r), Some(l)) = (&recorder, self.applied) {
                r.publish(l.index);
            }
            // Under the lock, so that a reader holding it sees the state
            // and its version agree.
            if let Some(l) = self.applied {
                self.shared.version.set(l.index);
            }
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
            state: Some(Persisted {
                sessions: self.sessions.clone(),
                state,
            }),
            meta: Meta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id: format!("{}-{}", self.applied.map_or(0, |l| l.index), self.built),
            },
            snapshots: Arc::clone(&self.snapshots),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<SnapshotStream>, StorageError<NodeId>> {
        let file =
            scratch_file(&group_dir(&self.snapshots.files.path)).map_err(|e| io_error(&e))?;
        Ok(Box::new(SnapshotStream::file(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotStream>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut file = snapshot.into_file().await.map_err(|e| io_error(&e))?;
        let snapshots = Arc::clone(&self.snapshots);
        let expected = meta.clone();
        // Read, checked and decoded in full before anything is replaced;
        // then on disk before the state changes: after a crash the node
        // restarts from this snapshot, never from an older state than it
        // acknowledged.
        let state = tokio::task::spawn_blocking(move || {
            let files = &snapshots.files;
            let loaded: Loaded<Persisted<SM::Snapshot>> = snapshot_file::read(
                &mut file,
                &Source::Received {
                    store: files.values.as_ref(),
                    location: &files.location,
                },
            )
            .map_err(|e| read_error(Some(&expected), &e))?;
            if loaded.meta.last_log_id != expected.last_log_id {
                return Err(read_error(
                    Some(&expected),
                    &format!(
                        "the snapshot stream is of {:?}, not {:?}",
                        loaded.meta.last_log_id, expected.last_log_id
                    ),
                ));
            }
            persist(&snapshots, &expected, &loaded.state).map_err(|e| io_error(&e))?;
            Ok(loaded.state)
        })
        .await
        .map_err(|e| io_error(&std::io::Error::other(e)))??;
        {
            let mut sm = self.shared.sm.write().unwrap_or_else(|e| e.into_inner());
            sm.restore(state.state);
            self.sessions = state.sessions;
            if let Some(r) = &self.recorder {
                r.reset(meta.last_log_id.map_or(0, |l| l.index));
            }
            self.shared
                .version
                .set(meta.last_log_id.map_or(0, |l| l.index));
        }
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let slot = self.snapshots.lock();
        let Some(current) = &slot.current else {
            return Ok(None);
        };
        let meta = current.meta.clone();
        // Opened under the lock: the descriptor keeps this snapshot's file
        // even if a newer one is renamed over it.
        let file = File::open(&self.snapshots.files.path).map_err(|e| io_error(&e))?;
        let stream = if current.keys.is_empty() {
            // No cached values: the file is what another node installs.
            SnapshotStream::file(file)
        } else {
            let (snapshots, m) = (Arc::clone(&self.snapshots), meta.clone());
            SnapshotStream::lazy(move || for_transfer::<SM>(&snapshots, file, &m))
        };
        drop(slot);
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(stream),
        }))
    }
}

/// Applies one entry: a batch of commands, in order, at one index; a
/// command its session has seen is answered with its first outcome and
/// not applied again.
fn apply_batch<SM: StateMachine>(
    sm: &mut SM,
    sessions: &mut Sessions,
    bytes: &[u8],
    index: u64,
    recorder: Option<&dyn Recorder<SM>>,
) -> Vec<u8> {
    let outcomes: Applied = match statemesh_core::decode::from_bytes::<Batch>(bytes) {
        Ok(batch) => {
            sessions.tick(batch.time_ms);
            batch
                .commands
                .iter()
                .map(|c| match sessions.check(&c.stamp) {
                    Check::Done(kept) => Some((kept.reply, kept.index)),
                    Check::Expired => None,
                    Check::Apply => {
                        let out = reply(&match statemesh_core::decode::from_bytes::<SM::Command>(
                            &c.command,
                        ) {
                            Ok(cmd) => Ok(match recorder {
                                Some(r) => r.apply(sm, cmd, index),
                                None => sm.apply(cmd, index),
                            }),
                            Err(e) => Err(format!(
                                "undecodable command: {}",
                                large::take_failure().unwrap_or_else(|| e.to_string())
                            )),
                        });
                        sessions.record(&c.stamp, &out, index);
                        Some((out, index))
                    }
                })
                .collect()
        }
        // Nothing to answer one by one: the proposer reports the wrong
        // shape to every caller.
        Err(_) => Vec::new(),
    };
    postcard::to_allocvec(&outcomes).unwrap_or_default()
}

/// A copy of the group's snapshot `file` that another node can install:
/// its cached values as blobs ahead of the state. If a newer snapshot has
/// deleted a value this one refers to, this fails and openraft asks again.
fn for_transfer<SM: StateMachine>(
    snapshots: &Snapshots,
    mut file: File,
    meta: &Meta,
) -> std::io::Result<File> {
    let files = &snapshots.files;
    let loaded: Loaded<Persisted<SM::Snapshot>> = snapshot_file::read(
        &mut file,
        &Source::Local {
            store: files.values.as_ref(),
            location: &files.location,
        },
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (state, blobs) = snapshot_file::encode_transfer(&loaded.state)?;
    let mut out = scratch_file(&group_dir(&files.path))?;
    snapshot_file::write(&mut out, meta, &blobs, &state)?;
    std::io::Seek::rewind(&mut out)?;
    Ok(out)
}

fn group_dir(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Encodes and persists a snapshot taken at one moment, off the apply path.
pub(crate) struct Builder<SM: StateMachine> {
    state: Option<Persisted<SM::Snapshot>>,
    meta: Meta,
    snapshots: Arc<Snapshots>,
}

impl<SM: StateMachine> RaftSnapshotBuilder<TypeConfig> for Builder<SM> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let state = self
            .state
            .take()
            .ok_or_else(|| io_error(&std::io::Error::other("snapshot builder used twice")))?;
        let (meta, snapshots) = (self.meta.clone(), Arc::clone(&self.snapshots));
        tokio::task::spawn_blocking(move || {
            persist(&snapshots, &meta, &state)?;
            open_for_reading(&snapshots.files.path)
        })
        .await
        .map_err(|e| io_error(&std::io::Error::other(e)))?
        .map_err(|e| io_error(&e))
        .map(|file| Snapshot {
            meta: self.meta.clone(),
            snapshot: file,
        })
    }
}
