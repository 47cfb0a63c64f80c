//! Handles on collections of a remote cluster.

use super::protocol::{ClientReply, ClientRequest};
use super::{Client, ClientError, unexpected};
use crate::collections::{
    CellCommand, CellOutcome, CellQuery, CellState, Key, MapAnswer, MapCommand, MapOutcome,
    MapQuery, MapState, Value,
};
use crate::group::Consistency;
use crate::state_machine::Queryable;
use std::marker::PhantomData;
use std::time::Duration;

/// A handle on one collection (or custom state machine `SM`) of a remote
/// cluster: the operations of the in-process handles, each a round trip.
/// Reads are linearizable unless [`Remote::with_consistency`] says
/// otherwise.
pub struct Remote<SM> {
    client: Client,
    name: String,
    signature: String,
    consistency: Consistency,
    _sm: PhantomData<fn() -> SM>,
}

impl<SM> Clone for Remote<SM> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            name: self.name.clone(),
            signature: self.signature.clone(),
            consistency: self.consistency,
            _sm: PhantomData,
        }
    }
}

impl<SM> std::fmt::Debug for Remote<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .field("consistency", &self.consistency)
            .finish_non_exhaustive()
    }
}

/// A remote [`Map`](crate::Map).
pub type RemoteMap<K, V> = Remote<MapState<K, V>>;
/// A remote [`Cell`](crate::Cell).
pub type RemoteCell<T> = Remote<CellState<T>>;

/// A write's outcome and the version it was applied at.
pub type RemoteWritten<O> = Result<(O, u64), ClientError>;

impl<SM: Queryable> Remote<SM> {
    pub(super) fn new(client: Client, name: String, signature: String) -> Self {
        Self {
            client,
            name,
            signature,
            consistency: Consistency::Linearizable,
            _sm: PhantomData,
        }
    }

    /// The collection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This handle, reading with `consistency`: `Local` reads the answering
    /// node's replica without asking the leader (cheaper, possibly stale).
    #[must_use]
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Runs `command` through the leader; its response and version.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; [`ClientError::Indeterminate`] if it was sent
    /// and the answer lost.
    pub async fn execute(&self, command: SM::Command) -> RemoteWritten<SM::Response> {
        let command =
            postcard::to_allocvec(&command).map_err(|e| ClientError::Decode(e.to_string()))?;
        let reply = self
            .client
            .call(&ClientRequest::Execute {
                collection: self.name.clone(),
                signature: self.signature.clone(),
                command,
            })
            .await?;
        let ClientReply::Executed { reply, version } = reply else {
            return Err(unexpected(&reply));
        };
        match postcard::from_bytes::<Result<SM::Response, String>>(&reply) {
            Ok(Ok(r)) => Ok((r, version)),
            // The leader could not decode the command: another build.
            Ok(Err(e)) => Err(ClientError::Decode(e)),
            Err(e) => Err(ClientError::Decode(e.to_string())),
        }
    }

    /// Answers `query` with this handle's consistency; the answer and the
    /// version it was read at.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn query(&self, query: SM::Query) -> Result<(SM::Answer, u64), ClientError> {
        let query =
            postcard::to_allocvec(&query).map_err(|e| ClientError::Decode(e.to_string()))?;
        let reply = self
            .client
            .call(&ClientRequest::Query {
                collection: self.name.clone(),
                signature: self.signature.clone(),
                linearizable: self.consistency == Consistency::Linearizable,
                query,
            })
            .await?;
        let ClientReply::Answered { answer, version } = reply else {
            return Err(unexpected(&reply));
        };
        postcard::from_bytes(&answer)
            .map(|a| (a, version))
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Waits until the answering node has applied a change past `after`, or
    /// `timeout` passes; returns its version either way.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn wait_version(&self, after: u64, timeout: Duration) -> Result<u64, ClientError> {
        let reply = self
            .client
            .call(&ClientRequest::WaitVersion {
                collection: self.name.clone(),
                after,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })
            .await?;
        match reply {
            ClientReply::Version(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }
}

fn wrong<T>(what: &str) -> Result<T, ClientError> {
    Err(ClientError::Decode(format!(
        "the answer to {what} has the wrong shape"
    )))
}

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

impl<T: Value> Remote<CellState<T>> {
    /// The value.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn read(&self) -> Result<Option<T>, ClientError> {
        Ok(self.query(CellQuery).await?.0)
    }

    /// Sets the value; returns the previous one.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn write(&self, value: T) -> RemoteWritten<Option<T>> {
        cell_previous(self.execute(CellCommand::Write(value)).await?)
    }

    /// Empties the cell; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<Option<T>> {
        cell_previous(self.execute(CellCommand::Clear).await?)
    }

    /// Stores `new` if the cell holds `expected`: `Ok(previous)` if it did,
    /// `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn compare_exchange(
        &self,
        expected: Option<T>,
        new: Option<T>,
    ) -> RemoteWritten<Result<Option<T>, Option<T>>> {
        match self
            .execute(CellCommand::CompareExchange { expected, new })
            .await?
        {
            (CellOutcome::Exchanged(r), v) => Ok((r, v)),
            _ => wrong("compare_exchange"),
        }
    }
}

fn cell_previous<T>(r: (CellOutcome<T>, u64)) -> RemoteWritten<Option<T>> {
    match r {
        (CellOutcome::Previous(p), v) => Ok((p, v)),
        _ => wrong("a write"),
    }
}
