//! `Map<K, V>`: a replicated ordered map.

use super::handle::{Reader, View, Writer, mismatched};
use super::{Key, Value, Written};
use crate::error::QueryError;
use crate::state_machine::{Changes, Mirrored, Queryable, StateMachine, merge_keyed};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};

/// The writer handle of a replicated map.
pub type Map<K, V> = Writer<MapState<K, V>>;
/// The read-only handle of a replicated map.
pub type MapReader<K, V> = Reader<MapState<K, V>>;

/// The state machine behind a [`Map`]: a persistent ordered map, so a
/// snapshot is O(1) and every replica iterates in the same (key) order.
#[derive(Debug, Clone, PartialEq)]
pub struct MapState<K: Ord + Clone, V: Clone> {
    map: OrdMap<K, V>,
}

impl<K: Ord + Clone, V: Clone> Default for MapState<K, V> {
    fn default() -> Self {
        Self { map: OrdMap::new() }
    }
}

impl<K: Ord + Clone, V: Clone> MapState<K, V> {
    /// The entries, in key order (for reading a copy with
    /// [`View::read_with`]).
    #[must_use]
    pub fn as_map(&self) -> &OrdMap<K, V> {
        &self.map
    }
}

/// A change to a map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MapCommand<K, V> {
    /// Inserts or replaces one entry.
    Insert(K, V),
    /// Removes one key.
    Remove(K),
    /// Removes several keys.
    RemoveMany(Vec<K>),
    /// Inserts or replaces several entries.
    Extend(Vec<(K, V)>),
    /// Stores `new` at `key` (`None`: removes it) if the current value is
    /// `expected` (`None`: absent).
    CompareExchange {
        /// The key.
        key: K,
        /// The value it must hold.
        expected: Option<V>,
        /// The value to store.
        new: Option<V>,
    },
    /// Removes every entry.
    Clear,
}

/// What a map's mirror applies: one key's new value or its removal, or
/// the removal of every entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MapChange<K, V> {
    /// The key now holds the value.
    Put(K, V),
    /// The key is gone.
    Remove(K),
    /// Every entry is gone.
    Clear,
}

/// What a change to a map did.
#[derive(Debug, Serialize, Deserialize)]
pub enum MapOutcome<K, V> {
    /// The value the key held before.
    Previous(Option<V>),
    /// The entries removed.
    Removed(Vec<(K, V)>),
    /// How many keys were new.
    Added(usize),
    /// `Ok(previous)` if stored, `Err(current)` if not.
    Exchanged(Result<Option<V>, Option<V>>),
}

impl<K: Key, V: Value> StateMachine for MapState<K, V> {
    type Command = MapCommand<K, V>;
    type Response = MapOutcome<K, V>;
    type Snapshot = OrdMap<K, V>;

    fn signature(&self) -> String {
        format!(
            "statemesh::Map<{}, {}>",
            std::any::type_name::<K>(),
            std::any::type_name::<V>()
        )
    }

    fn apply(&mut self, command: MapCommand<K, V>, version: u64) -> MapOutcome<K, V> {
        self.apply_recording(command, version, &mut Changes::off())
    }

    fn snapshot(&self) -> OrdMap<K, V> {
        self.map.clone()
    }

    fn restore(&mut self, snapshot: OrdMap<K, V>) {
        self.map = snapshot;
    }

    fn entries(&self) -> Option<u64> {
        Some(self.map.len() as u64)
    }
}

impl<K: Key, V: Value> Mirrored for MapState<K, V> {
    type Change = MapChange<K, V>;

    fn apply_recording(
        &mut self,
        command: MapCommand<K, V>,
        _version: u64,
        changes: &mut Changes<MapChange<K, V>>,
    ) -> MapOutcome<K, V> {
        let mut put = |map: &mut OrdMap<K, V>, k: K, v: V| {
            changes.record(|| MapChange::Put(k.clone(), v.clone()));
            map.insert(k, v)
        };
        match command {
            MapCommand::Insert(k, v) => MapOutcome::Previous(put(&mut self.map, k, v)),
            MapCommand::Extend(entries) => {
                let mut added = 0;
                for (k, v) in entries {
                    if put(&mut self.map, k, v).is_none() {
                        added += 1;
                    }
                }
                MapOutcome::Added(added)
            }
            MapCommand::CompareExchange { key, expected, new } => {
                let current = self.map.get(&key).cloned();
                MapOutcome::Exchanged(if current == expected {
                    match new {
                        Some(v) => {
                            put(&mut self.map, key, v);
                        }
                        None => {
                            if self.map.remove(&key).is_some() {
                                changes.record(|| MapChange::Remove(key));
                            }
                        }
                    }
                    Ok(current)
                } else {
                    Err(current)
                })
            }
            MapCommand::Remove(k) => {
                let previous = self.map.remove(&k);
                if previous.is_some() {
                    changes.record(|| MapChange::Remove(k));
                }
                MapOutcome::Previous(previous)
            }
            MapCommand::RemoveMany(keys) => {
                let removed: Vec<(K, V)> = keys
                    .into_iter()
                    .filter_map(|k| self.map.remove_with_key(&k))
                    .collect();
                for (k, _) in &removed {
                    changes.record(|| MapChange::Remove(k.clone()));
                }
                MapOutcome::Removed(removed)
            }
            MapCommand::Clear => {
                if !self.map.is_empty() {
                    changes.record(|| MapChange::Clear);
                }
                MapOutcome::Removed(std::mem::take(&mut self.map).into_iter().collect())
            }
        }
    }

    fn apply_change(&mut self, change: MapChange<K, V>) {
        match change {
            MapChange::Put(k, v) => {
                self.map.insert(k, v);
            }
            MapChange::Remove(k) => {
                self.map.remove(&k);
            }
            MapChange::Clear => self.map.clear(),
        }
    }

    fn merge(changes: Vec<MapChange<K, V>>) -> Vec<MapChange<K, V>> {
        merge_keyed(changes, |c| match c {
            MapChange::Put(k, _) | MapChange::Remove(k) => Some(k),
            MapChange::Clear => None,
        })
    }
}

/// A remote read of a map.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MapQuery<K> {
    /// The value at a key.
    Get(K),
    /// Whether a key is present.
    ContainsKey(K),
    /// The number of entries.
    Len,
    /// Up to `limit` entries in key order, starting after `after` (from
    /// the first if `None`): one page of an iteration.
    Entries {
        /// The last key of the previous page.
        after: Option<K>,
        /// The most entries to return.
        limit: usize,
    },
}

/// The answer to a [`MapQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MapAnswer<K, V> {
    /// To `Get`.
    Value(Option<V>),
    /// To `ContainsKey`.
    Contains(bool),
    /// To `Len`.
    Len(usize),
    /// To `Entries`.
    Entries(Vec<(K, V)>),
}

impl<K: Key, V: Value> Queryable for MapState<K, V> {
    type Query = MapQuery<K>;
    type Answer = MapAnswer<K, V>;

    fn answer(&self, query: MapQuery<K>) -> MapAnswer<K, V> {
        match query {
            MapQuery::Get(k) => MapAnswer::Value(self.map.get(&k).cloned()),
            MapQuery::ContainsKey(k) => MapAnswer::Contains(self.map.contains_key(&k)),
            MapQuery::Len => MapAnswer::Len(self.map.len()),
            MapQuery::Entries { after, limit } => {
                let page = match &after {
                    Some(a) => self
                        .map
                        .range::<_, K>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                        .take(limit)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    None => self
                        .map
                        .iter()
                        .take(limit)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                };
                MapAnswer::Entries(page)
            }
        }
    }
}

impl<K: Key, V: Value> View<MapState<K, V>> {
    /// This replica's value at `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<V> {
        self.local(|s| s.map.get(key).cloned())
    }

    /// Whether this replica holds `key`.
    #[must_use]
    pub fn contains_key(&self, key: &K) -> bool {
        self.local(|s| s.map.contains_key(key))
    }

    /// How many entries this replica holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.local(|s| s.map.len())
    }

    /// Whether this replica holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This replica's entries at this moment (an O(1) snapshot), in key
    /// order: the same order on every replica.
    #[must_use]
    pub fn snapshot(&self) -> OrdMap<K, V> {
        self.local(|s| s.map.clone())
    }

    /// The entries in key order, from an O(1) snapshot.
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + use<K, V> {
        self.snapshot().into_iter()
    }

    /// The keys in order, from an O(1) snapshot.
    pub fn keys(&self) -> impl Iterator<Item = K> + use<K, V> {
        self.iter().map(|(k, _)| k)
    }

    /// The values in key order, from an O(1) snapshot.
    pub fn values(&self) -> impl Iterator<Item = V> + use<K, V> {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Key, V: Value> Reader<MapState<K, V>> {
    /// The entries as of now, cluster-wide (read index).
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn snapshot_linearizable(&self) -> Result<OrdMap<K, V>, QueryError> {
        self.linearizable(|s| s.map.clone()).await
    }
}

impl<K: Key, V: Value> Writer<MapState<K, V>> {
    /// Inserts or replaces; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn insert(&self, key: K, value: V) -> Written<Option<V>> {
        previous(self.execute(MapCommand::Insert(key, value)).await?)
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove(&self, key: K) -> Written<Option<V>> {
        previous(self.execute(MapCommand::Remove(key)).await?)
    }

    /// Removes `keys` in one change; returns the entries that were there.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove_many(&self, keys: Vec<K>) -> Written<Vec<(K, V)>> {
        removed(self.execute(MapCommand::RemoveMany(keys)).await?)
    }

    /// Inserts or replaces `entries` in one change; returns how many keys
    /// were new.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn extend(&self, entries: Vec<(K, V)>) -> Written<usize> {
        match self.execute(MapCommand::Extend(entries)).await? {
            (MapOutcome::Added(n), v) => Ok((n, v)),
            _ => mismatched("extend"),
        }
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
        match self
            .execute(MapCommand::CompareExchange { key, expected, new })
            .await?
        {
            (MapOutcome::Exchanged(r), v) => Ok((r, v)),
            _ => mismatched("compare_exchange"),
        }
    }

    /// Removes every entry; returns them.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<Vec<(K, V)>> {
        removed(self.execute(MapCommand::Clear).await?)
    }
}

fn previous<K, V>(r: (MapOutcome<K, V>, u64)) -> Written<Option<V>> {
    match r {
        (MapOutcome::Previous(p), v) => Ok((p, v)),
        _ => mismatched("insert or remove"),
    }
}

fn removed<K, V>(r: (MapOutcome<K, V>, u64)) -> Written<Vec<(K, V)>> {
    match r {
        (MapOutcome::Removed(p), v) => Ok((p, v)),
        _ => mismatched("a removal"),
    }
}
