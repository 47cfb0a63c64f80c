//! Remote maps.

use super::{Remote, RemoteWritten};
use crate::client::ClientError;
use statemesh_core::collections::map_ops as ops;
use statemesh_core::collections::{Key, MapAnswer, MapQuery, MapState, Value};

impl<K: Key, V: Value> Remote<MapState<K, V>> {
    /// The value at `key`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get(&self, key: &K) -> Result<Option<V>, ClientError> {
        self.ask(MapQuery::Get(key.clone()), "get", |a| match a {
            MapAnswer::Value(v) => Some(v),
            _ => None,
        })
        .await
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn contains_key(&self, key: &K) -> Result<bool, ClientError> {
        self.ask(
            MapQuery::ContainsKey(key.clone()),
            "contains_key",
            |a| match a {
                MapAnswer::Contains(b) => Some(b),
                _ => None,
            },
        )
        .await
    }

    /// The number of entries.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn len(&self) -> Result<usize, ClientError> {
        self.ask(MapQuery::Len, "len", |a| match a {
            MapAnswer::Len(n) => Some(n),
            _ => None,
        })
        .await
    }

    /// Whether the map is empty.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn is_empty(&self) -> Result<bool, ClientError> {
        Ok(self.len().await? == 0)
    }

    /// Up to `limit` entries in key order after `after` (from the first if
    /// `None`): one page of an iteration.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn entries(
        &self,
        after: Option<K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, ClientError> {
        self.ask(MapQuery::Entries { after, limit }, "entries", entries)
            .await
    }

    /// Every entry in key order, fetched a page at a time (pages are read
    /// separately: a concurrent write may fall between them).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn iter(&self) -> Result<Vec<(K, V)>, ClientError> {
        let page = |seen: &[(K, V)], limit| MapQuery::Entries {
            after: seen.last().map(|(k, _)| k.clone()),
            limit,
        };
        self.all_pages("iter", page, entries).await
    }

    /// Inserts or replaces; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn insert(&self, key: K, value: V) -> RemoteWritten<Option<V>> {
        ops::insert(self, key, value).await
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove(&self, key: K) -> RemoteWritten<Option<V>> {
        ops::remove(self, key).await
    }

    /// Removes `keys`; returns the entries removed.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove_many(&self, keys: Vec<K>) -> RemoteWritten<Vec<(K, V)>> {
        ops::remove_many(self, keys).await
    }

    /// Inserts or replaces every entry; returns how many keys were new.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn extend(&self, entries: Vec<(K, V)>) -> RemoteWritten<usize> {
        ops::extend(self, entries).await
    }

    /// Stores `new` (`None`: removes) at `key` if it holds `expected`
    /// (`None`: absent): `Ok(previous)` if it did, `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn compare_exchange(
        &self,
        key: K,
        expected: Option<V>,
        new: Option<V>,
    ) -> RemoteWritten<Result<Option<V>, Option<V>>> {
        ops::compare_exchange(self, key, expected, new).await
    }

    /// Removes every entry; returns them.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<Vec<(K, V)>> {
        ops::clear(self).await
    }
}

fn entries<K, V>(a: MapAnswer<K, V>) -> Option<Vec<(K, V)>> {
    match a {
        MapAnswer::Entries(e) => Some(e),
        _ => None,
    }
}
