//! Reading a local copy of `PriorityQueue<P, K, V>`.

use super::View;
use statemesh_core::collections::{Entry, PriorityQueueSnapshot, PriorityQueueState};
use statemesh_core::collections::{Key, Value};

impl<P: Key, K: Key, V: Value> View<PriorityQueueState<P, K, V>> {
    /// This replica's value at `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<V> {
        self.local(|s| s.by_key().get(key).map(|(_, v)| v.clone()))
    }

    /// This replica's priority of `key`.
    #[must_use]
    pub fn get_priority(&self, key: &K) -> Option<P> {
        self.local(|s| s.by_key().get(key).map(|(p, _)| p.clone()))
    }

    /// Whether this replica holds `key`.
    #[must_use]
    pub fn contains_key(&self, key: &K) -> bool {
        self.local(|s| s.by_key().contains_key(key))
    }

    /// How many entries this replica holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.local(|s| s.by_key().len())
    }

    /// Whether this replica holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity the queue was opened with (`None`: unbounded).
    #[must_use]
    pub fn capacity(&self) -> Option<u64> {
        self.local(|s| s.capacity())
    }

    /// The entry with the lowest `(priority, key)`.
    #[must_use]
    pub fn min(&self) -> Option<Entry<P, K, V>> {
        self.local(|s| s.lowest().and_then(|(_, k)| s.entry(k)))
    }

    /// The entry with the highest `(priority, key)`.
    #[must_use]
    pub fn max(&self) -> Option<Entry<P, K, V>> {
        self.local(|s| s.highest().and_then(|(_, k)| s.entry(k)))
    }

    /// This replica's entries at this moment (an O(1) snapshot).
    #[must_use]
    pub fn snapshot(&self) -> PriorityQueueSnapshot<P, K, V> {
        self.local(PriorityQueueState::to_snapshot)
    }

    /// The entries in ascending `(priority, key)` order, from an O(1)
    /// snapshot.
    #[must_use]
    pub fn iter_ascending(&self) -> std::vec::IntoIter<Entry<P, K, V>> {
        self.snapshot().ascending().collect::<Vec<_>>().into_iter()
    }

    /// The entries in descending `(priority, key)` order, from an O(1)
    /// snapshot.
    #[must_use]
    pub fn iter_descending(&self) -> std::vec::IntoIter<Entry<P, K, V>> {
        self.snapshot().descending().collect::<Vec<_>>().into_iter()
    }
}
