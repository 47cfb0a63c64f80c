//! Batches concurrent commands into one Raft entry.
//!
//! openraft 0.9 appends each client write as its own entry and waits for
//! that append to be durable before it handles the next message, so with
//! the log under `SyncPolicy::Always` a leader commits at most one write
//! per `fdatasync`. The proposer restores group commit above openraft:
//! commands that arrive while a batch is in flight wait in a queue and are
//! proposed together, as one entry, when it completes. The state
//! machine applies a batch's commands in order, all at the entry's index.
//!
//! Every command carries its writer's session stamp, and the state machine
//! answers a command it has seen before with its first outcome, so a batch
//! refused or lost on the way may be proposed again by whoever holds its
//! commands: the writer, the forwarding node or a new leader.

use super::rpc::{Applied, Batch, Refused, Stamped};
use crate::types::Raft;
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Batches proposed at once. openraft 0.9 appends, replicates and applies
/// one entry after another anyway, so more batches in flight only make
/// each smaller: measured in `benches/commits.rs` (Cell writes, WAL under
/// `Always`), 64 writers commit 42,473/s with one in flight, 37,947/s with
/// two and 27,977/s with four; 256 writers 154,651/s, 144,576/s and
/// 102,440/s.
const IN_FLIGHT: usize = 1;
/// The most commands in one batch.
const MAX_COMMANDS: usize = 4096;
/// A batch closes once its commands reach this many bytes.
const MAX_BYTES: usize = 4 << 20;

/// An encoded command's outcome: the encoded reply and the version it was
/// applied at.
pub(crate) type Outcome = Result<(Vec<u8>, u64), Refused>;

struct Proposal {
    command: Stamped,
    reply: oneshot::Sender<Outcome>,
}

/// The queue in front of one group's Raft instance.
pub(crate) struct Proposer {
    queue: mpsc::UnboundedSender<Proposal>,
}

impl Proposer {
    /// Starts the batching task; it ends when the proposer is dropped.
    pub(crate) fn start(raft: Raft) -> Arc<Self> {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Arc::new(Self { queue })
    }

    /// Proposes one stamped command and waits for its outcome.
    pub(crate) async fn propose(&self, command: Stamped) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        if self.queue.send(Proposal { command, reply }).is_err() {
            return Err(Refused::Shutdown);
        }
        outcome.await.unwrap_or(Err(Refused::Shutdown))
    }
}

async fn run(raft: Raft, mut queue: mpsc::UnboundedReceiver<Proposal>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        // Waiting for a slot is what lets a batch grow.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut bytes = first.command.command.len();
        let mut batch = vec![first];
        while batch.len() < MAX_COMMANDS && bytes < MAX_BYTES {
            match queue.try_recv() {
                Ok(p) => {
                    bytes += p.command.command.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (commands, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|p| (p.command, p.reply)).unzip();
            for (reply, outcome) in replies.into_iter().zip(propose(&raft, commands).await) {
                let _ = reply.send(outcome);
            }
        });
    }
}

/// Proposes `commands` as one entry; one outcome per command.
async fn propose(raft: &Raft, commands: Vec<Stamped>) -> Vec<Outcome> {
    let count = commands.len();
    let all = |refused: Refused| (0..count).map(|_| Err(refused.clone())).collect();
    let time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let entry = super::rpc::encode(&Batch { time_ms, commands });
    match raft.client_write(entry).await {
        Ok(r) => match statemesh_core::decode::from_bytes::<Applied>(&r.data) {
            Ok(replies) if replies.len() == count => replies
                .into_iter()
                .map(|reply| reply.ok_or(Refused::Expired))
                .collect(),
            _ => all(Refused::Failed(
                "the state machine's answer to a batch has the wrong shape".into(),
            )),
        },
        // Refused before it was appended, or appended and then discarded
        // here by a new leader. Another node may still hold the entry and
        // apply it later; sending the commands again is safe only because
        // the state machine answers a command it has seen with its first
        // outcome.
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            all(Refused::NotLeader(f.leader_id))
        }
        Err(RaftError::APIError(e)) => all(Refused::Failed(e.to_string())),
        Err(RaftError::Fatal(_)) => all(Refused::Shutdown),
    }
}
