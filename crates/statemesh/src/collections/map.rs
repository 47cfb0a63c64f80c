//! `Map<K, V>`: a replicated ordered map.

use super::handle::{Reader, Writer, Written};
use crate::error::QueryError;
use imbl::OrdMap;
use statemesh_core::collections::MapState;
use statemesh_core::collections::{Key, Value, map_ops};

/// The writer handle of a replicated map.
pub type Map<K, V> = Writer<MapState<K, V>>;
/// The read-only handle of a replicated map.
pub type MapReader<K, V> = Reader<MapState<K, V>>;

impl<K: Key, V: Value> Reader<MapState<K, V>> {
    /// The entries as of now, cluster-wide (read index).
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn snapshot_linearizable(&self) -> Result<OrdMap<K, V>, QueryError> {
        self.linearizable(|s| s.as_map().clone()).await
    }
}

impl<K: Key, V: Value> Writer<MapState<K, V>> {
    /// Inserts or replaces; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn insert(&self, key: K, value: V) -> Written<Option<V>> {
        map_ops::insert(self, key, value).await
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove(&self, key: K) -> Written<Option<V>> {
        map_ops::remove(self, key).await
    }

    /// Removes `keys` in one change; returns the entries that were there.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove_many(&self, keys: Vec<K>) -> Written<Vec<(K, V)>> {
        map_ops::remove_many(self, keys).await
    }

    /// Inserts or replaces `entries` in one change; returns how many keys
    /// were new.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn extend(&self, entries: Vec<(K, V)>) -> Written<usize> {
        map_ops::extend(self, entries).await
    }

    /// Stores `new` at `key` (`None` removes it) if it holds `expected`
    /// (`None`: absent): `Ok(previous)` if it did, `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn compare_exchange(
        &self,
        key: K,
        expected: Option<V>,
        new: Option<V>,
    ) -> Written<Result<Option<V>, Option<V>>> {
        map_ops::compare_exchange(self, key, expected, new).await
    }

    /// Removes every entry; returns them.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<Vec<(K, V)>> {
        map_ops::clear(self).await
    }
}
