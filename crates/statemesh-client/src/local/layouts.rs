//! How each collection lays its state out as entries.

use super::{Entries, LocalError, Publish};
use statemesh_core::collections::{
    CellState, Key, MapState, OnceState, PriorityQueueState, SetState, Value, VecState,
};

impl<K: Key, V: Value> Publish for MapState<K, V> {
    fn publish(state: &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        state.iter().try_for_each(|(k, v)| entries.push(k, v))
    }
}

impl<T: Key> Publish for SetState<T> {
    fn publish(state: &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        state.iter().try_for_each(|t| entries.push(t, &()))
    }
}

impl<T: Value> Publish for VecState<T> {
    fn publish(state: &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        // Big-endian indices: the keys' byte order is the items' order.
        (0u64..)
            .zip(state.iter())
            .try_for_each(|(i, t)| entries.push_encoded_key(&i.to_be_bytes(), t))
    }
}

impl<T: Value> Publish for CellState<T> {
    fn publish(state: &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        state
            .as_ref()
            .map_or(Ok(()), |t| entries.push_encoded_key(&[], t))
    }
}

impl<T: Value> Publish for OnceState<T> {
    fn publish(state: &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        state
            .as_ref()
            .map_or(Ok(()), |t| entries.push_encoded_key(&[], t))
    }
}

impl<P: Key, K: Key, V: Value> Publish for PriorityQueueState<P, K, V> {
    fn publish((_, by_key): &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        by_key.iter().try_for_each(|(k, pv)| entries.push(k, pv))
    }
}
