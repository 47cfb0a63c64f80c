//! Reading a local copy of `Map<K, V>`.

use super::View;
use imbl::OrdMap;
use statemesh_core::collections::MapState;
use statemesh_core::collections::{Key, Value};

impl<K: Key, V: Value> View<MapState<K, V>> {
    /// This replica's value at `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<V> {
        self.local(|s| s.as_map().get(key).cloned())
    }

    /// Whether this replica holds `key`.
    #[must_use]
    pub fn contains_key(&self, key: &K) -> bool {
        self.local(|s| s.as_map().contains_key(key))
    }

    /// How many entries this replica holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.local(|s| s.as_map().len())
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
        self.local(|s| s.as_map().clone())
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
