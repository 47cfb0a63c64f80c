//! A frozen copy to read at leisure: cheap because the indexes are
//! persistent maps.

use super::state::{Entry, PriorityQueueState};
use crate::collections::{Key, Value};

/// An O(1) snapshot of a priority queue, to read at leisure.
#[derive(Debug, Clone)]
pub struct PriorityQueueSnapshot<P: Ord + Clone, K: Ord + Clone, V: Clone> {
    state: PriorityQueueState<P, K, V>,
}

impl<P: Ord + Clone, K: Ord + Clone, V: Clone> PriorityQueueState<P, K, V> {
    /// An O(1) snapshot of this state (its indexes are persistent).
    #[must_use]
    pub fn to_snapshot(&self) -> PriorityQueueSnapshot<P, K, V> {
        PriorityQueueSnapshot {
            state: self.clone(),
        }
    }
}

impl<P: Key, K: Key, V: Value> PriorityQueueSnapshot<P, K, V> {
    /// How many entries it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.by_key.len()
    }

    /// Whether it holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.state.by_key.is_empty()
    }

    /// The entry with `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<Entry<P, K, V>> {
        self.state.entry(key)
    }

    /// The entries in ascending `(priority, key)` order.
    pub fn ascending(&self) -> impl Iterator<Item = Entry<P, K, V>> + '_ {
        self.state
            .by_priority
            .iter()
            .flat_map(|(_, keys)| keys.iter())
            .filter_map(|key| self.state.entry(key))
    }

    /// The entries in descending `(priority, key)` order.
    pub fn descending(&self) -> impl Iterator<Item = Entry<P, K, V>> + '_ {
        self.state
            .by_priority
            .iter()
            .rev()
            .flat_map(|(_, keys)| keys.iter().rev())
            .filter_map(|key| self.state.entry(key))
    }
}
