//! Remote priority queues.

use super::{Remote, RemoteWritten, wrong};
use crate::client::ClientError;
use crate::collections::priority_queue_ops as ops;
use crate::collections::{
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
        match self.query(q).await?.0 {
            Answer::Entry(e) => Ok(e),
            _ => wrong(what),
        }
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
        match self.query(PriorityQueueQuery::Len).await?.0 {
            Answer::Len(n) => Ok(n),
            _ => wrong("len"),
        }
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
        const PAGE: usize = 1024;
        let mut all: Vec<Entry<P, K, V>> = Vec::new();
        loop {
            let after = all.last().map(|e| (e.priority.clone(), e.key.clone()));
            let q = PriorityQueueQuery::Page {
                after,
                descending,
                limit: PAGE,
            };
            let Answer::Entries(page) = self.query(q).await?.0 else {
                return wrong("iter");
            };
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
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
