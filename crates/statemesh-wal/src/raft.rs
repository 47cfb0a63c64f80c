//! openraft 0.9 log storage on the log (feature `openraft`).
//!
//! Entries, votes and log ids are encoded with `postcard`. Every write goes
//! through the log's single writer queue, so appends, truncations, purges
//! and vote saves are applied in the order openraft issued them, as its
//! storage contract requires.

// openraft's `StorageError` is large, and it is what its traits return.
#![allow(clippy::result_large_err)]

use crate::wal::Wal;
use crate::{AppendError, ReadError, Storage, UpdateError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError, StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// openraft log storage backed by a [`Wal`]. Cheap to clone: clones share
/// the log (the clone openraft uses as its reader, too).
pub struct RaftLog<C: RaftTypeConfig, S: Storage = crate::FsStorage> {
    wal: Arc<Wal<S>>,
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig, S: Storage> Clone for RaftLog<C, S> {
    fn clone(&self) -> Self {
        Self {
            wal: Arc::clone(&self.wal),
            _config: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig, S: Storage> Debug for RaftLog<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLog").field("wal", &self.wal).finish()
    }
}

impl<C: RaftTypeConfig, S: Storage> RaftLog<C, S> {
    /// Serves openraft from `wal`.
    pub fn new(wal: Wal<S>) -> Self {
        Self {
            wal: Arc::new(wal),
            _config: PhantomData,
        }
    }

    /// The log underneath.
    #[must_use]
    pub fn wal(&self) -> &Wal<S> {
        &self.wal
    }
}

fn encode<T: Serialize, NID: openraft::NodeId>(
    value: &T,
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
) -> Result<Vec<u8>, StorageError<NID>> {
    postcard::to_allocvec(value).map_err(|e| StorageIOError::new(subject, verb, &e).into())
}

fn decode<T: DeserializeOwned, NID: openraft::NodeId>(
    bytes: &[u8],
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
) -> Result<T, StorageError<NID>> {
    postcard::from_bytes(bytes).map_err(|e| StorageIOError::new(subject, verb, &e).into())
}

fn read_err<NID: openraft::NodeId>(e: ReadError) -> StorageError<NID> {
    StorageIOError::read_logs(&e).into()
}

fn write_err<NID: openraft::NodeId>(e: impl std::error::Error + 'static) -> StorageError<NID> {
    StorageIOError::write_logs(&e).into()
}

impl<C, S> RaftLogReader<C> for RaftLog<C, S>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    S: Storage,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Bound::Included(e),
            Bound::Excluded(&e) => Bound::Excluded(e),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self.wal.iter((Bound::Included(start), end)) {
            let (index, bytes) = item.map_err(read_err)?;
            out.push(decode(
                &bytes,
                ErrorSubject::Log(log_id_at::<C>(index)),
                ErrorVerb::Read,
            )?);
        }
        Ok(out)
    }
}

/// A placeholder id for error messages about the entry at `index`.
fn log_id_at<C: RaftTypeConfig>(index: u64) -> LogId<C::NodeId> {
    LogId::new(
        openraft::CommittedLeaderId::new(0, C::NodeId::default()),
        index,
    )
}

impl<C, S> RaftLogStorage<C> for RaftLog<C, S>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    S: Storage,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let meta = self.wal.meta();
        let last_purged_log_id: Option<LogId<C::NodeId>> = match &meta.purged {
            Some((_, bytes)) => Some(decode(bytes, ErrorSubject::Logs, ErrorVerb::Read)?),
            None => None,
        };
        let last_log_id = match self.wal.last_index() {
            Some(last) => {
                let bytes = self
                    .wal
                    .get(last)
                    .map_err(read_err)?
                    .ok_or_else(|| StorageIOError::read_logs(&ReadMissing(last)))?;
                let entry: C::Entry = decode(&bytes, ErrorSubject::Logs, ErrorVerb::Read)?;
                Some(entry.get_log_id().clone())
            }
            None => last_purged_log_id.clone(),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = encode(vote, ErrorSubject::Vote, ErrorVerb::Write)?;
        self.wal
            .save_vote_async(bytes)
            .map_err(|e| StorageIOError::write_vote(&e))?
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        match self.wal.meta().vote {
            Some(bytes) => Ok(Some(decode(&bytes, ErrorSubject::Vote, ErrorVerb::Read)?)),
            None => Ok(None),
        }
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let Some(id) = committed else { return Ok(()) };
        let bytes = encode(&id, ErrorSubject::Logs, ErrorVerb::Write)?;
        // openraft commits an entry only once it is durable on this node,
        // so the cheap hint is safe, and it keeps a sync off every commit.
        self.wal.note_committed(id.index, bytes).map_err(write_err)
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        match self.wal.meta().committed {
            Some((_, bytes)) => Ok(Some(decode(&bytes, ErrorSubject::Logs, ErrorVerb::Read)?)),
            None => Ok(None),
        }
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Entries at or below the purge point are already applied and
        // covered by a snapshot; by Raft's log matching property any copy of
        // them is identical, so they are skipped rather than refused.
        let purged = self.wal.meta().purged.map(|(index, _)| index);
        let mut first = None;
        let mut payloads = Vec::new();
        for entry in entries {
            let index = entry.get_log_id().index;
            if purged.is_some_and(|p| index <= p) {
                continue;
            }
            first.get_or_insert(index);
            payloads.push(encode(&entry, ErrorSubject::Logs, ErrorVerb::Write)?);
        }
        let Some(first) = first else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        // Entries that replace existing ones: Raft's rule is that the new
        // entries win, so the old suffix goes first (openraft truncates
        // before appending; its test suite sometimes does not). Every earlier
        // operation of this adapter has completed by now, so the written
        // next index is the log's next index.
        if self.wal.last_index().is_some() && first < self.wal.next_index() {
            self.wal
                .truncate_async(first)
                .map_err(write_err)?
                .await
                .map_err(write_err)?;
        }
        let append = self.wal.append_at(first, payloads).map_err(write_err)?;
        // openraft reads the entries as soon as this returns: wait until they
        // are written (not synced), and report durability through the callback.
        append.written().await.map_err(write_err)?;
        append.on_durable(move |r: Result<(), AppendError>| {
            callback.log_io_completed(r.map_err(std::io::Error::other));
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.wal
            .truncate_async(log_id.index)
            .map_err(|e| truncate_err(log_id.clone(), &e))?
            .await
            .map_err(|e| truncate_err(log_id.clone(), &e))
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = encode(&log_id, ErrorSubject::Logs, ErrorVerb::Write)?;
        self.wal
            .purge_async(log_id.index, bytes)
            .map_err(write_err)?
            .await
            .map_err(write_err)
    }
}

fn truncate_err<NID: openraft::NodeId>(log_id: LogId<NID>, e: &UpdateError) -> StorageError<NID> {
    StorageIOError::new(ErrorSubject::Log(log_id), ErrorVerb::Delete, e).into()
}

#[derive(Debug, thiserror::Error)]
#[error("entry {0} is missing although the log says it holds it")]
struct ReadMissing(u64);
