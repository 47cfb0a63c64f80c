//! openraft's own storage test suite (`openraft::testing::Suite`) run
//! against `RaftLog` on a real directory. The suite also needs a state
//! machine; a small in-memory one is defined here (it is not under test).

#![cfg(feature = "openraft")]

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StorageIOError, StoredMembership,
};
use statemesh_wal::{RaftLog, Wal, WalOptions};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

openraft::declare_raft_types!(
    /// The suite's type config: string commands and responses.
    pub TypeConfig: D = String, R = String
);

type NodeId = u64;
type Node = openraft::BasicNode;

#[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
struct SmState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    data: BTreeMap<u64, String>,
}

type StoredSnapshot = Option<(SnapshotMeta<NodeId, Node>, Vec<u8>)>;

#[derive(Default, Clone)]
struct MemStateMachine {
    state: Arc<Mutex<SmState>>,
    snapshot: Arc<Mutex<StoredSnapshot>>,
}

impl RaftSnapshotBuilder<TypeConfig> for MemStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let state = self.state.lock().unwrap().clone();
        let bytes = encode_state(&state);
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
            snapshot_id: format!("{:?}", state.last_applied),
        };
        *self.snapshot.lock().unwrap() = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

/// The state machine's snapshot encoding (any encoding serves the suite).
fn encode_state(state: &SmState) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in &state.data {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let s = self.state.lock().unwrap();
        Ok((s.last_applied, s.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for entry in entries {
            s.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => out.push(String::new()),
                EntryPayload::Normal(d) => {
                    s.data.insert(entry.log_id.index, d.clone());
                    out.push(d);
                }
                EntryPayload::Membership(m) => {
                    s.membership = StoredMembership::new(Some(entry.log_id), m);
                    out.push(String::new());
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let mut data = BTreeMap::new();
        let mut rest = &bytes[..];
        while rest.len() >= 12 {
            let k = u64::from_le_bytes(rest[..8].try_into().unwrap());
            let n = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
            let v = String::from_utf8(rest[12..12 + n].to_vec())
                .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
            data.insert(k, v);
            rest = &rest[12 + n..];
        }
        let mut s = self.state.lock().unwrap();
        s.last_applied = meta.last_log_id;
        s.membership = meta.last_membership.clone();
        s.data = data;
        *self.snapshot.lock().unwrap() = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .snapshot
            .lock()
            .unwrap()
            .clone()
            .map(|(meta, bytes)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(bytes)),
            }))
    }
}

struct Builder;

impl StoreBuilder<TypeConfig, RaftLog<TypeConfig>, MemStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, RaftLog<TypeConfig>, MemStateMachine), StorageError<NodeId>>
    {
        let dir = tempfile::tempdir().unwrap();
        // Small segments so the suite's purges and truncations cross them.
        let wal = Wal::open(dir.path(), WalOptions::new().segment_size(4096)).unwrap();
        Ok((dir, RaftLog::new(wal), MemStateMachine::default()))
    }
}

type TheSuite = Suite<TypeConfig, RaftLog<TypeConfig>, MemStateMachine, Builder, tempfile::TempDir>;

/// One `#[test]` per test of the suite (the same list `Suite::test_store`
/// runs), so a failure names the suite test that failed.
macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    let (_dir, store, sm) = Builder.build().await?;
                    TheSuite::$name(store, sm).await
                })
                .unwrap();
            }
        )*
    };
}

suite_tests!(
    last_membership_in_log_initial,
    last_membership_in_log,
    last_membership_in_log_multi_step,
    get_membership_initial,
    get_membership_from_log_and_empty_sm,
    get_membership_from_empty_log_and_sm,
    get_membership_from_log_le_sm_last_applied,
    get_membership_from_log_gt_sm_last_applied_1,
    get_membership_from_log_gt_sm_last_applied_2,
    get_initial_state_without_init,
    get_initial_state_membership_from_log_and_sm,
    get_initial_state_with_state,
    get_initial_state_last_log_gt_sm,
    get_initial_state_last_log_lt_sm,
    get_initial_state_log_ids,
    get_initial_state_re_apply_committed,
    save_vote,
    get_log_entries,
    limited_get_log_entries,
    try_get_log_entry,
    initial_logs,
    get_log_state,
    get_log_id,
    last_id_in_log,
    last_applied_state,
    purge_logs_upto_0,
    purge_logs_upto_5,
    purge_logs_upto_20,
    delete_logs_since_11,
    delete_logs_since_0,
    append_to_log,
    snapshot_meta,
    apply_single,
    apply_multiple,
);

#[test]
fn openraft_storage_suite_whole() {
    Suite::test_all(Builder).unwrap();
}

#[test]
fn raft_log_survives_reopen() {
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, RaftLogReader, Vote};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let mut log = RaftLog::<TypeConfig>::new(Wal::open(dir.path(), WalOptions::new()).unwrap());
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        let entries: Vec<_> = (0..10u64)
            .map(|i| Entry::<TypeConfig> {
                log_id: LogId::new(CommittedLeaderId::new(3, 1), i),
                payload: EntryPayload::Normal(format!("cmd {i}")),
            })
            .collect();
        let wal = log.wal();
        let a = wal
            .append_at(0, entries.iter().map(postcard_entry).collect())
            .unwrap();
        a.wait().unwrap();
        log.purge(LogId::new(CommittedLeaderId::new(3, 1), 2))
            .await
            .unwrap();
        log.truncate(LogId::new(CommittedLeaderId::new(3, 1), 8))
            .await
            .unwrap();
        drop(log);
        let mut log = RaftLog::<TypeConfig>::new(Wal::open(dir.path(), WalOptions::new()).unwrap());
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(7));
        let got = log.try_get_log_entries(3..8).await.unwrap();
        assert_eq!(got, entries[3..8].to_vec());
    });
}

fn postcard_entry(e: &Entry<TypeConfig>) -> Vec<u8> {
    // The adapter's own encoding, so this test can append through the raw log.
    postcard::to_allocvec(e).unwrap()
}
