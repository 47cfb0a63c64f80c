//! `PriorityQueue<P, K, V>`: replicated entries ordered by priority,
//! addressed by key, bounded or not.

use super::handle::{Reader, Writer, Written};
use crate::error::QueryError;
use statemesh_core::collections::{Entry, PriorityQueueSnapshot, PriorityQueueState};
use statemesh_core::collections::{Key, Value, priority_queue_ops};

use std::ops::RangeBounds;

/// The writer handle of a replicated priority queue.
pub type PriorityQueue<P, K, V> = Writer<PriorityQueueState<P, K, V>>;
/// The read-only handle of a replicated priority queue.
pub type PriorityQueueReader<P, K, V> = Reader<PriorityQueueState<P, K, V>>;

impl<P: Key, K: Key, V: Value> Reader<PriorityQueueState<P, K, V>> {
    /// The entries as of now, cluster-wide (read index).
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn snapshot_linearizable(
        &self,
    ) -> Result<PriorityQueueSnapshot<P, K, V>, QueryError> {
        self.linearizable(PriorityQueueState::to_snapshot).await
    }
}

impl<P: Key, K: Key, V: Value> Writer<PriorityQueueState<P, K, V>> {
    /// Inserts an entry, or replaces the priority and value of `key`.
    /// Returns the previous priority and value, and what was evicted to
    /// stay within capacity (possibly this very entry).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn insert(
        &self,
        priority: P,
        key: K,
        value: V,
    ) -> Written<(Option<(P, V)>, Vec<Entry<P, K, V>>)> {
        priority_queue_ops::insert(self, priority, key, value).await
    }

    /// Changes the priority of `key`; returns the previous one (`None`: no
    /// such key, and nothing changed).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn update_priority(&self, key: K, priority: P) -> Written<Option<P>> {
        priority_queue_ops::update_priority(self, key, priority).await
    }

    /// Changes the value of `key`; returns the previous one (`None`: no
    /// such key, and nothing changed).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn update_value(&self, key: K, value: V) -> Written<Option<V>> {
        priority_queue_ops::update_value(self, key, value).await
    }

    /// Stores `new` as the value of `key` if it holds `expected`:
    /// `Ok(previous)` if it did, `Err(current)` if not (`None`: no such
    /// key).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn compare_exchange_value(
        &self,
        key: K,
        expected: V,
        new: V,
    ) -> Written<Result<V, Option<V>>> {
        priority_queue_ops::compare_exchange_value(self, key, expected, new).await
    }

    /// Removes `key`; returns its entry.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove(&self, key: K) -> Written<Option<Entry<P, K, V>>> {
        priority_queue_ops::remove(self, key).await
    }

    /// Removes every entry whose priority is in `range`, in time
    /// proportional to what it removes; returns them in ascending order.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove_range(&self, range: impl RangeBounds<P>) -> Written<Vec<Entry<P, K, V>>> {
        priority_queue_ops::remove_range(self, range).await
    }

    /// Removes every entry; returns them in ascending order.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<Vec<Entry<P, K, V>>> {
        priority_queue_ops::clear(self).await
    }
}
