//! The queue's state and its two indexes, and the index upkeep every
//! command and change goes through, so the indexes cannot drift apart.

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// One entry of a priority queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<P, K, V> {
    /// Its priority.
    pub priority: P,
    /// Its key.
    pub key: K,
    /// Its value.
    pub value: V,
}

/// The state machine behind a `PriorityQueue`.
///
/// Entries are ordered by `(priority, key)`, so ties in priority break the
/// same way on every replica. Two persistent indexes, by key and by
/// priority, make a snapshot O(1) and `Writer::remove_range` proportional
/// to what it removes, not to the queue's size. A bounded queue that grows
/// past its capacity evicts its lowest entries.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityQueueState<P: Ord + Clone, K: Ord + Clone, V: Clone> {
    pub(super) capacity: Option<u64>,
    pub(super) by_key: OrdMap<K, (P, V)>,
    pub(super) by_priority: OrdMap<P, OrdSet<K>>,
}

impl<P: Ord + Clone, K: Ord + Clone, V: Clone> Default for PriorityQueueState<P, K, V> {
    fn default() -> Self {
        Self::unbounded()
    }
}

impl<P: Ord + Clone, K: Ord + Clone, V: Clone> PriorityQueueState<P, K, V> {
    /// An empty queue with no capacity limit.
    #[must_use]
    pub fn unbounded() -> Self {
        Self {
            capacity: None,
            by_key: OrdMap::new(),
            by_priority: OrdMap::new(),
        }
    }

    /// An empty queue that holds at most `capacity` entries; inserting into
    /// a full queue evicts the entry with the lowest `(priority, key)`,
    /// which may be the one inserted.
    #[must_use]
    pub fn bounded(capacity: u64) -> Self {
        Self {
            capacity: Some(capacity),
            ..Self::unbounded()
        }
    }

    pub(super) fn index(&mut self, priority: P, key: K) {
        self.by_priority.entry(priority).or_default().insert(key);
    }

    fn unindex(&mut self, priority: &P, key: &K) {
        if let Some(keys) = self.by_priority.get_mut(priority) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_priority.remove(priority);
            }
        }
    }

    pub(super) fn take(&mut self, key: &K) -> Option<(P, V)> {
        let (priority, value) = self.by_key.remove(key)?;
        self.unindex(&priority, key);
        Some((priority, value))
    }

    /// Every entry's priority and value, by key.
    #[must_use]
    pub fn by_key(&self) -> &OrdMap<K, (P, V)> {
        &self.by_key
    }

    /// The capacity it was made with (`None`: unbounded).
    #[must_use]
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// The lowest `(priority, key)`.
    #[must_use]
    pub fn lowest(&self) -> Option<(&P, &K)> {
        let (priority, keys) = self.by_priority.get_min()?;
        Some((priority, keys.get_min()?))
    }

    /// The highest `(priority, key)`.
    #[must_use]
    pub fn highest(&self) -> Option<(&P, &K)> {
        let (priority, keys) = self.by_priority.get_max()?;
        Some((priority, keys.get_max()?))
    }

    /// The entry with `key`.
    #[must_use]
    pub fn entry(&self, key: &K) -> Option<Entry<P, K, V>> {
        let (priority, value) = self.by_key.get(key)?;
        Some(Entry {
            priority: priority.clone(),
            key: key.clone(),
            value: value.clone(),
        })
    }

    pub(super) fn evict_over_capacity(&mut self) -> Vec<Entry<P, K, V>> {
        let mut evicted = Vec::new();
        let Some(capacity) = self.capacity else {
            return evicted;
        };
        while self.by_key.len() as u64 > capacity {
            let Some((_, key)) = self.lowest() else {
                break;
            };
            let key = key.clone();
            if let Some((priority, value)) = self.take(&key) {
                evicted.push(Entry {
                    priority,
                    key,
                    value,
                });
            }
        }
        evicted
    }

    pub(super) fn remove_range(&mut self, range: (Bound<P>, Bound<P>)) -> Vec<Entry<P, K, V>> {
        if is_empty_range(&range) {
            return Vec::new();
        }
        // Collect the priorities first: the index cannot change while its
        // range iterator borrows it. The work is proportional to the
        // entries removed, never a scan of every key.
        let hit: Vec<(P, OrdSet<K>)> = self
            .by_priority
            .range(range)
            .map(|(p, keys)| (p.clone(), keys.clone()))
            .collect();
        let mut removed = Vec::new();
        for (priority, keys) in hit {
            self.by_priority.remove(&priority);
            for key in keys {
                if let Some((_, value)) = self.by_key.remove(&key) {
                    removed.push(Entry {
                        priority: priority.clone(),
                        key,
                        value,
                    });
                }
            }
        }
        removed
    }
}

/// Whether `range` can hold nothing. `BTreeMap`-like ranges panic on
/// these, and a command from the network must never panic `apply`.
fn is_empty_range<P: Ord>(range: &(Bound<P>, Bound<P>)) -> bool {
    match range {
        (Bound::Included(lo), Bound::Included(hi)) => lo > hi,
        (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi))
        | (Bound::Excluded(lo), Bound::Included(hi)) => lo >= hi,
        _ => false,
    }
}
