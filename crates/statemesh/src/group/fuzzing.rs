//! The group's side of `crate::fuzzing`: seeds made with the group's own
//! message types and snapshot writer, and the decoders as a node calls
//! them. Not a stable API.

use super::rpc::{Batch, Envelope, Hello, Refused, Reply, Request, Stamped, encode};
use super::sessions::Sessions;
use super::snapshot_file::{self, Meta, Source};
use super::store::Persisted;
use crate::large::{self, Context, Large, ValueStore};
use crate::types::{NodeId, TypeConfig};
use imbl::OrdMap;
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotSegmentId,
    StoredMembership, Vote,
};
use sha2::{Digest, Sha256};
use statemesh_cache::{FsStore, Location, Pool, Raw};
use statemesh_core::GroupId;
use statemesh_core::collections::MapCommand;
use statemesh_core::decode::from_bytes;
use statemesh_core::session::Stamp;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

fn log_id(term: u64, node: NodeId, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

fn membership() -> Membership<NodeId, BasicNode> {
    let nodes: BTreeMap<NodeId, BasicNode> = (1..=4)
        .map(|id| (id, BasicNode::new(format!("10.0.0.{id}:7401"))))
        .collect();
    Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)
}

fn meta(index: u64) -> Meta {
    Meta {
        last_log_id: Some(log_id(3, 1, index)),
        last_membership: StoredMembership::new(Some(log_id(2, 1, 5)), membership()),
        snapshot_id: format!("3-1-{index}"),
    }
}

fn stamp(seq: u64) -> Stamp {
    Stamp {
        session: 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        seq,
        acked: seq.saturating_sub(2),
        age_ms: seq * 10,
    }
}

/// A Raft entry's payload as a leader proposes it: stamped map commands.
fn batch() -> Vec<u8> {
    let command = |c: &MapCommand<String, Vec<u8>>| Stamped {
        stamp: stamp(7),
        command: encode(c),
    };
    encode(&Batch {
        time_ms: 1_700_000_000_000,
        commands: vec![
            command(&MapCommand::Insert("key".into(), vec![1, 2, 3])),
            command(&MapCommand::Remove("old".into())),
            command(&MapCommand::Extend(vec![
                ("a".into(), vec![]),
                ("b".into(), vec![9; 40]),
            ])),
        ],
    })
}

pub(crate) fn envelope_seeds() -> Vec<Vec<u8>> {
    let group = GroupId::new("orders", "Map<String,Vec<u8>>");
    let vote = Vote::new_committed(3, 1);
    let entries = vec![
        Entry::<TypeConfig> {
            log_id: log_id(3, 1, 41),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(3, 1, 42),
            payload: EntryPayload::Normal(batch()),
        },
        Entry {
            log_id: log_id(3, 1, 43),
            payload: EntryPayload::Membership(membership()),
        },
    ];
    let requests = vec![
        Request::Hello {
            name: "orders".into(),
            signature: "Map<String,Vec<u8>>".into(),
        },
        Request::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: Some(log_id(3, 1, 40)),
            entries,
            leader_commit: Some(log_id(3, 1, 40)),
        }),
        Request::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        }),
        Request::Vote(VoteRequest::new(Vote::new(4, 2), Some(log_id(3, 1, 43)))),
        Request::InstallSnapshot(InstallSnapshotRequest {
            vote,
            meta: meta(40),
            offset: 1 << 20,
            data: vec![0xAB; 64],
            done: false,
        }),
        Request::Execute {
            command: Stamped {
                stamp: stamp(3),
                command: encode(&MapCommand::<String, Vec<u8>>::Remove("k".into())),
            },
            timeout_ms: 2000,
        },
        Request::ReadIndex { timeout_ms: 500 },
        Request::AddLearner(4),
    ];
    requests
        .into_iter()
        .map(|request| encode(&Envelope { group, request }))
        .collect()
}

pub(crate) fn reply_seeds() -> Vec<Vec<u8>> {
    let vote = Vote::new_committed(3, 1);
    let segment = |offset| SnapshotSegmentId {
        id: "3-1-40".into(),
        offset,
    };
    let replies = vec![
        Reply::Hello(Hello::Same),
        Reply::Hello(Hello::Mismatch("Vec<u64>".into())),
        Reply::AppendEntries(Ok(AppendEntriesResponse::Success)),
        Reply::AppendEntries(Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(
            3, 1, 41,
        ))))),
        Reply::AppendEntries(Ok(AppendEntriesResponse::Conflict)),
        Reply::AppendEntries(Ok(AppendEntriesResponse::HigherVote(Vote::new(5, 2)))),
        Reply::AppendEntries(Err(RaftError::Fatal(Fatal::Stopped))),
        Reply::Vote(Ok(VoteResponse {
            vote,
            vote_granted: true,
            last_log_id: Some(log_id(3, 1, 43)),
        })),
        Reply::InstallSnapshot(Ok(InstallSnapshotResponse { vote })),
        Reply::InstallSnapshot(Err(RaftError::APIError(
            InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                expect: segment(0),
                got: segment(4096),
            }),
        ))),
        Reply::Executed(Ok((vec![0, 1, 2], 42))),
        Reply::Executed(Err(Refused::NotLeader(Some(2)))),
        Reply::Executed(Err(Refused::NoQuorum {
            reachable: 1,
            voters: 3,
        })),
        Reply::Executed(Err(Refused::Timeout {
            maybe_applied: true,
        })),
        Reply::ReadIndex(Ok(42)),
        Reply::ReadIndex(Err(Refused::Expired)),
        Reply::LearnerAdded(Err(Refused::Failed("no".into()))),
        Reply::LearnerAdded(Ok(())),
        Reply::NoSuchGroup,
        Reply::BadRequest("bad".into()),
    ];
    replies.iter().map(encode).collect()
}

pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let envelope: Envelope = from_bytes(bytes).map_err(|e| e.to_string())?;
    if let Request::AppendEntries(r) = &envelope.request {
        for entry in &r.entries {
            if let EntryPayload::Normal(data) = &entry.payload {
                // As applying the entry decodes it: a batch that does not
                // decode is answered as a wrong shape, not an error here.
                if let Ok(batch) = from_bytes::<Batch>(data) {
                    let mut sessions = Sessions::default();
                    sessions.tick(batch.time_ms);
                    for c in &batch.commands {
                        let _ = sessions.check(&c.stamp);
                        let _ = from_bytes::<MapCommand<String, Vec<u8>>>(&c.command);
                    }
                }
            }
        }
    }
    Ok(encode(&envelope))
}

pub(crate) fn decode_reply(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let reply: Reply = from_bytes(bytes).map_err(|e| e.to_string())?;
    Ok(encode(&reply))
}

/// Which stream a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A group's own file: cached values by key.
    Local,
    /// One sent by another node: cached values as blobs ahead of the state.
    Received,
}

/// The state the seeds hold: a map of large values, some cached.
type State = OrdMap<String, Large<Vec<u8>>>;

/// A cache of large values and a scratch file for snapshot streams.
pub struct Snapshots {
    store: ValueStore,
    location: Location,
    scratch: PathBuf,
}

impl Snapshots {
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        let fs = FsStore::open(dir.join("values")).map_err(|e| e.to_string())?;
        let pool = Pool::new(fs, Raw, 1 << 20, Vec::len).map_err(|e| e.to_string())?;
        Ok(Self {
            store: ValueStore {
                pool,
                // Low, so that a few small values are cached.
                threshold: 32,
            },
            location: Location::new("group-fuzz").map_err(|e| e.to_string())?,
            scratch: dir.join("snapshot"),
        })
    }

    /// A snapshot of `entries` (with writer sessions), written as the group
    /// writes it: its own file, or the stream sent to another node.
    ///
    /// # Errors
    ///
    /// The writer's.
    pub fn write(
        &self,
        kind: SnapshotKind,
        entries: &[(String, Vec<u8>)],
    ) -> Result<Vec<u8>, String> {
        let inline: State = entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), Large::new(v).map_err(|e| e.to_string())?)))
            .collect::<Result<_, String>>()?;
        // Decoded as applying does, so values past the threshold are cached.
        let done = large::with_context(Context::Apply(Some(self.store.clone())), || {
            from_bytes::<State>(&encode(&inline))
        });
        let state = done.result.map_err(|e| e.to_string())?;
        let mut sessions = Sessions::default();
        sessions.tick(1_700_000_000_000);
        for seq in 1..4 {
            let _ = sessions.check(&stamp(seq));
            sessions.record(&stamp(seq), &[seq as u8; 3], 40 + seq);
        }
        let persisted = Persisted { sessions, state };
        let mut file = self.open_scratch().map_err(|e| e.to_string())?;
        match kind {
            SnapshotKind::Local => {
                let (bytes, _) = snapshot_file::encode_local(&persisted, &self.location)
                    .map_err(|e| e.to_string())?;
                snapshot_file::write(&mut file, &meta(44), &[], &bytes)
            }
            SnapshotKind::Received => {
                let (bytes, blobs) =
                    snapshot_file::encode_transfer(&persisted).map_err(|e| e.to_string())?;
                snapshot_file::write(&mut file, &meta(44), &blobs, &bytes)
            }
        }
        .map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    /// The scratch file, emptied, for writing and reading back.
    fn open_scratch(&self) -> std::io::Result<std::fs::File> {
        std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.scratch)
    }

    /// Writes `bytes` to the scratch file and reads it as the group does,
    /// then reads every value the state holds. Returns how many values
    /// read back.
    ///
    /// # Errors
    ///
    /// Why the snapshot was refused (an I/O error is reported apart, as
    /// `Err(Err(..))`).
    pub fn read(&self, kind: SnapshotKind, bytes: &[u8]) -> Result<usize, Result<String, String>> {
        let mut file = self.open_scratch().map_err(|e| Err(e.to_string()))?;
        file.write_all(bytes).map_err(|e| Err(e.to_string()))?;
        let source = match kind {
            SnapshotKind::Local => Source::Local {
                store: Some(&self.store),
                location: &self.location,
            },
            SnapshotKind::Received => Source::Received {
                store: Some(&self.store),
                location: &self.location,
            },
        };
        let loaded =
            snapshot_file::read::<Persisted<State>>(&mut file, &source).map_err(|e| match e {
                snapshot_file::LoadError::Corrupt(why) => Ok(why),
                snapshot_file::LoadError::Io(e) => Err(e.to_string()),
            })?;
        let _ = encode(&loaded.meta);
        Ok(loaded
            .state
            .state
            .values()
            .filter(|v| v.blocking_load().is_ok())
            .count())
    }
}

pub(crate) fn reseal_snapshot(bytes: &mut [u8]) {
    let Some(body) = bytes.len().checked_sub(4) else {
        return;
    };
    reseal_blobs(&mut bytes[..body]);
    let crc = crc32c::crc32c(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes each blob's digest, as far as the lengths delimit blobs.
fn reseal_blobs(bytes: &mut [u8]) -> Option<()> {
    let word = |bytes: &[u8], at: usize, n: usize| -> Option<u64> {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(bytes.get(at..at.checked_add(n)?)?);
        Some(u64::from_le_bytes(b))
    };
    let meta_len = usize::try_from(word(bytes, 8, 4)?).ok()?;
    let mut at = 12usize.checked_add(meta_len)?;
    let count = word(bytes, at, 8)?;
    at += 8;
    for _ in 0..count {
        let len = usize::try_from(word(bytes, at, 8)?).ok()?;
        let start = at.checked_add(40)?;
        let end = start.checked_add(len)?;
        let digest: [u8; 32] = Sha256::digest(bytes.get(start..end)?).into();
        bytes[at + 8..start].copy_from_slice(&digest);
        at = end;
    }
    Some(())
}
