//! The commands a queue replicates and what each did: the log's format.

use super::state::Entry;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// A change to a priority queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PriorityQueueCommand<P, K, V> {
    /// Inserts an entry or replaces the one with its key.
    Insert(Entry<P, K, V>),
    /// Changes the priority of an entry.
    UpdatePriority(K, P),
    /// Changes the value of an entry.
    UpdateValue(K, V),
    /// Changes the value of an entry if it holds `expected`.
    CompareExchangeValue {
        /// The key.
        key: K,
        /// The value it must hold.
        expected: V,
        /// The value to store.
        new: V,
    },
    /// Removes one entry.
    Remove(K),
    /// Removes every entry whose priority is in the range.
    RemoveRange(Bound<P>, Bound<P>),
    /// Removes every entry.
    Clear,
}

/// What a change to a priority queue did.
#[derive(Debug, Serialize, Deserialize)]
pub enum PriorityQueueOutcome<P, K, V> {
    /// An insert: the priority and value the key had before, and the
    /// entries evicted to stay within capacity.
    Inserted {
        /// The key's previous priority and value.
        previous: Option<(P, V)>,
        /// The entries evicted, lowest first.
        evicted: Vec<Entry<P, K, V>>,
    },
    /// The previous priority (`None`: no such key, nothing changed).
    Priority(Option<P>),
    /// The previous value (`None`: no such key, nothing changed).
    Value(Option<V>),
    /// `Ok(previous)` if stored, `Err(current)` if not (`None`: no such key).
    Exchanged(Result<V, Option<V>>),
    /// The entries removed, in ascending order.
    Removed(Vec<Entry<P, K, V>>),
}
