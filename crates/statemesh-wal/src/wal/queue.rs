//! The queue between the callers and the writer thread: every write
//! (append, truncate, purge, sync, metadata) is an [`Op`] taken in order,
//! so they reach the disk in the order they were made, as Raft requires.

use crate::completion::{Completion, Stages};
use crate::error::{AppendError, UpdateError};
use crate::meta::Meta;

/// What an append's completions carry.
pub(crate) type Outcome = Result<(), AppendError>;

/// The completion of a truncate, purge, sync or metadata update.
pub(crate) type UpdateDone = std::sync::Arc<Completion<Result<(), UpdateError>>>;

/// A change to the metadata, applied by the writer in its turn.
pub(crate) type MetaChange = Box<dyn FnOnce(&mut Meta) + Send>;

pub(crate) enum Op {
    Append {
        first: u64,
        payloads: Payloads,
        stages: std::sync::Arc<Stages<Outcome>>,
    },
    Truncate {
        from: u64,
        done: UpdateDone,
    },
    Purge {
        upto: u64,
        id: Vec<u8>,
        done: UpdateDone,
    },
    Sync {
        done: UpdateDone,
    },
    Meta {
        change: MetaChange,
        done: UpdateDone,
    },
}

/// The entries of one append: one (the common case, without a second
/// allocation) or several.
pub(crate) enum Payloads {
    One(Vec<u8>),
    Many(Vec<Vec<u8>>),
}

impl Payloads {
    pub(crate) fn as_slice(&self) -> &[Vec<u8>] {
        match self {
            Payloads::One(p) => std::slice::from_ref(p),
            Payloads::Many(ps) => ps,
        }
    }
}

pub(crate) struct Queue {
    pub(crate) ops: Vec<Op>,
    /// The index the next append gets.
    pub(crate) next: u64,
    /// The log holds no entries and nothing was purged: `append_at` may start
    /// it anywhere.
    pub(crate) unanchored: bool,
    pub(crate) closed: bool,
    /// The writer is blocked waiting for work and nobody has woken it yet:
    /// only then does an enqueue pay for a wake-up (a `notify` is a system
    /// call even when nobody waits). The waker clears it.
    pub(crate) writer_sleeping: bool,
}
