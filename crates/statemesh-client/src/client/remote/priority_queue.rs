//! Remote priority queues.

use super::{Remote, RemoteWritten};
use crate::client::ClientError;
use statemesh_core::collections::priority_queue_ops as ops;
use statemesh_core::collections::{
    Entry, Key, PriorityQueueAnswer, PriorityQueueQuery, PriorityQueueState, Value,
};
use std::ops::RangeBounds;

type Answer<P, K, V> = PriorityQueueAnswer<P, K, V>;

impl<P: Key, K: Key, V: Value> Remote<PriorityQueueState<P, K, V>> {
    async fn entry(
        &self,
        q: PriorityQueueQuery<P, K>,
        what: &str,
    ) -> Result<Option<Entry<P, K, V>>, ClientError> {
        self.ask(q, what, |a| match a {
            Answer::Entry(e) => Some(e),
            _ => None,
        })
        .await
    }

    /// The entry with `key`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get(&self, key: &K) -> Result<Option<Entry<P, K, V>>, ClientError> {
        self.entry(PriorityQueueQuery::Get(key.clone()), "get")
            .await
    }

    /// The entry of lowest `(priority, key)`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn min(&self) -> Result<Option<Entry<P, K, V>>, ClientError> {
        self.entry(PriorityQueueQuery::Min, "min").await
    }

    /// The entry of highest `(priority, key)`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn max(&self) -> Result<Option<Entry<P, K, V>>, ClientError> {
        self.entry(PriorityQueueQuery::Max, "max").await
    }

    /// The number of entries.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn len(&self) -> Result<usize, ClientError> {
        self.ask(PriorityQueueQuery::Len, "len", |a| match a {
            Answer::Len(n) => Some(n),
            _ => None,
        })
        .await
    }

    /// Whether the queue is empty.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn is_empty(&self) -> Result<bool, ClientError> {
        Ok(self.len().await? == 0)
    }

    /// Every entry in ascending (or descending) `(priority, key)` order, a
    /// page at a time.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn iter(&self, descending: bool) -> Result<Vec<Entry<P, K, V>>, ClientError> {
        let page = |seen: &[Entry<P, K, V>], limit| PriorityQueueQuery::Page {
            after: seen.last().map(|e| (e.priority.clone(), e.key.clone())),
            descending,
            limit,
        };
        self.all_pages("iter", page, |a| match a {
            Answer::Entries(e) => Some(e),
            _ => None,
        })
        .await
    }

    /// Inserts or replaces the entry of `key`; returns its previous
    /// priority and value, and the entries evicted to stay in capacity.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn insert(
        &self,
        priority: P,
        key: K,
        value: V,
    ) -> RemoteWritten<(Option<(P, V)>, Vec<Entry<P, K, V>>)> {
        ops::insert(self, priority, key, value).await
    }

    /// Changes the priority of `key`; returns the previous one (`None`: no
    /// such key).
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn update_priority(&self, key: K, priority: P) -> RemoteWritten<Option<P>> {
        ops::update_priority(self, key, priority).await
    }

    /// Changes the value of `key`; returns the previous one (`None`: no
    /// such key).
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn update_value(&self, key: K, value: V) -> RemoteWritten<Option<V>> {
        ops::update_value(self, key, value).await
    }

    /// Stores `new` as the value of `key` if it is `expected`:
    /// `Ok(previous)` if it did, `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn compare_exchange_value(
        &self,
        key: K,
        expected: V,
        new: V,
    ) -> RemoteWritten<Result<V, Option<V>>> {
        ops::compare_exchange_value(self, key, expected, new).await
    }

    /// Removes the entry of `key`.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove(&self, key: K) -> RemoteWritten<Option<Entry<P, K, V>>> {
        ops::remove(self, key).await
    }

    /// Removes every entry whose priority is in `range`; returns them.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove_range(
        &self,
        range: impl RangeBounds<P>,
    ) -> RemoteWritten<Vec<Entry<P, K, V>>> {
        ops::remove_range(self, range).await
    }

    /// Removes every entry; returns them.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<Vec<Entry<P, K, V>>> {
        ops::clear(self).await
    }
}
