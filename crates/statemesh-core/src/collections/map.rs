//! `Map<K, V>`: a replicated ordered map.

use super::{Key, Value};
use crate::state_machine::merge_keyed;
use crate::{Changes, Mirrored, Queryable, StateMachine};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};

/// The state machine behind a `Map`: a persistent ordered map, so a
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
    /// `View::read_with`).
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
            crate::type_name::<K>(),
            crate::type_name::<V>()
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

/// A map's write operations, once for every [`Executor`](super::Executor).
pub mod ops {
    use super::{MapCommand, MapOutcome, MapState};
    use crate::collections::{Done, Executor, Key, Value, expect};

    fn previous<K, V>(o: MapOutcome<K, V>) -> Option<Option<V>> {
        match o {
            MapOutcome::Previous(p) => Some(p),
            _ => None,
        }
    }

    fn removed<K, V>(o: MapOutcome<K, V>) -> Option<Vec<(K, V)>> {
        match o {
            MapOutcome::Removed(r) => Some(r),
            _ => None,
        }
    }

    /// Inserts or replaces; the previous value.
    pub async fn insert<K: Key, V: Value, X: Executor<MapState<K, V>>>(
        x: &X,
        key: K,
        value: V,
    ) -> Done<Option<V>, X::Error> {
        expect(x, MapCommand::Insert(key, value), "insert", previous).await
    }

    /// Removes `key`; its value.
    pub async fn remove<K: Key, V: Value, X: Executor<MapState<K, V>>>(
        x: &X,
        key: K,
    ) -> Done<Option<V>, X::Error> {
        expect(x, MapCommand::Remove(key), "remove", previous).await
    }

    /// Removes `keys` in one change; the entries that were there.
    pub async fn remove_many<K: Key, V: Value, X: Executor<MapState<K, V>>>(
        x: &X,
        keys: Vec<K>,
    ) -> Done<Vec<(K, V)>, X::Error> {
        expect(x, MapCommand::RemoveMany(keys), "remove_many", removed).await
    }

    /// Inserts or replaces `entries` in one change; how many keys were new.
    pub async fn extend<K: Key, V: Value, X: Executor<MapState<K, V>>>(
        x: &X,
        entries: Vec<(K, V)>,
    ) -> Done<usize, X::Error> {
        expect(x, MapCommand::Extend(entries), "extend", |o| match o {
            MapOutcome::Added(n) => Some(n),
            _ => None,
        })
        .await
    }

    /// Stores `new` at `key` if it holds `expected`: `Ok(previous)` or
    /// `Err(current)`.
    pub async fn compare_exchange<K: Key, V: Value, X: Executor<MapState<K, V>>>(
        x: &X,
        key: K,
        expected: Option<V>,
        new: Option<V>,
    ) -> Done<Result<Option<V>, Option<V>>, X::Error> {
        let command = MapCommand::CompareExchange { key, expected, new };
        expect(x, command, "compare_exchange", |o| match o {
            MapOutcome::Exchanged(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// Removes every entry; them.
    pub async fn clear<K: Key, V: Value, X: Executor<MapState<K, V>>>(
        x: &X,
    ) -> Done<Vec<(K, V)>, X::Error> {
        expect(x, MapCommand::Clear, "clear", removed).await
    }
}
