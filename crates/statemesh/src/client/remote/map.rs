//! Remote maps.

use super::{Remote, RemoteWritten, wrong};
use crate::client::ClientError;
use crate::collections::{Key, MapAnswer, MapCommand, MapOutcome, MapQuery, MapState, Value};

impl<K: Key, V: Value> Remote<MapState<K, V>> {
    async fn ask(&self, q: MapQuery<K>) -> Result<MapAnswer<K, V>, ClientError> {
        Ok(self.query(q).await?.0)
    }

    /// The value at `key`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get(&self, key: &K) -> Result<Option<V>, ClientError> {
        match self.ask(MapQuery::Get(key.clone())).await? {
            MapAnswer::Value(v) => Ok(v),
            _ => wrong("get"),
        }
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn contains_key(&self, key: &K) -> Result<bool, ClientError> {
        match self.ask(MapQuery::ContainsKey(key.clone())).await? {
            MapAnswer::Contains(b) => Ok(b),
            _ => wrong("contains_key"),
        }
    }

    /// The number of entries.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn len(&self) -> Result<usize, ClientError> {
        match self.ask(MapQuery::Len).await? {
            MapAnswer::Len(n) => Ok(n),
            _ => wrong("len"),
        }
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
        match self.ask(MapQuery::Entries { after, limit }).await? {
            MapAnswer::Entries(e) => Ok(e),
            _ => wrong("entries"),
        }
    }

    /// Every entry in key order, fetched a page at a time (pages are read
    /// separately: a concurrent write may fall between them).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn iter(&self) -> Result<Vec<(K, V)>, ClientError> {
        const PAGE: usize = 1024;
        let mut all: Vec<(K, V)> = Vec::new();
        loop {
            let after = all.last().map(|(k, _)| k.clone());
            let page = self.entries(after, PAGE).await?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Inserts or replaces; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn insert(&self, key: K, value: V) -> RemoteWritten<Option<V>> {
        previous(
            self.execute(MapCommand::Insert(key, value)).await?,
            "insert",
        )
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove(&self, key: K) -> RemoteWritten<Option<V>> {
        previous(self.execute(MapCommand::Remove(key)).await?, "remove")
    }

    /// Removes `keys`; returns the entries removed.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove_many(&self, keys: Vec<K>) -> RemoteWritten<Vec<(K, V)>> {
        removed(
            self.execute(MapCommand::RemoveMany(keys)).await?,
            "remove_many",
        )
    }

    /// Inserts or replaces every entry; returns how many keys were new.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn extend(&self, entries: Vec<(K, V)>) -> RemoteWritten<usize> {
        match self.execute(MapCommand::Extend(entries)).await? {
            (MapOutcome::Added(n), v) => Ok((n, v)),
            _ => wrong("extend"),
        }
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
        match self
            .execute(MapCommand::CompareExchange { key, expected, new })
            .await?
        {
            (MapOutcome::Exchanged(r), v) => Ok((r, v)),
            _ => wrong("compare_exchange"),
        }
    }

    /// Removes every entry; returns them.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<Vec<(K, V)>> {
        removed(self.execute(MapCommand::Clear).await?, "clear")
    }
}

fn previous<K, V>(r: (MapOutcome<K, V>, u64), what: &str) -> RemoteWritten<Option<V>> {
    match r {
        (MapOutcome::Previous(p), v) => Ok((p, v)),
        _ => wrong(what),
    }
}

fn removed<K, V>(r: (MapOutcome<K, V>, u64), what: &str) -> RemoteWritten<Vec<(K, V)>> {
    match r {
        (MapOutcome::Removed(e), v) => Ok((e, v)),
        _ => wrong(what),
    }
}
