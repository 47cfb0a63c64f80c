//! Eviction: writing cold objects to the spill area and dropping them from
//! memory, on the background thread and on callers short of room.

use super::shared::{Shared, lock};
use crate::entry::{Entry, Value};
use crate::error::{CacheError, StoreError};
use crate::key::Key;
use crate::store::Place;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What an eviction attempt did.
enum Evicted {
    /// The value left memory.
    Done,
    /// The entry is dropped, or not in memory: forget it.
    Gone,
    /// In use (pinned, changing, or taken back by a load): queue it again.
    Busy(usize),
    /// Writing it failed; it stays in memory.
    Failed(usize),
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// Encodes `value` and spills it under `key`, then lets go of the
    /// value before the caller announces the outcome: a write guard waits
    /// for the only reference.
    fn spill_value(&self, key: Key, value: Arc<T>) -> Result<(), CacheError> {
        let written = self
            .encode(key, &value)
            .and_then(|bytes| Ok(self.spill(key, &bytes)?));
        drop(value);
        written
    }

    /// Writes a blob to the spill area, in the file of a stale blob waiting
    /// for deletion if there is one (see [`Store::respill`]).
    fn spill(&self, key: Key, bytes: &[u8]) -> Result<(), StoreError> {
        let Some(stale) = self.background.take_stale() else {
            return self.store.write(Place::Spill, key, bytes);
        };
        let reused = self.store.respill(stale, key, bytes);
        if !matches!(reused, Ok(true)) {
            // Still there, or perhaps: removed like any other.
            self.background.delete_spill(stale);
        }
        reused.map(drop)
    }

    /// Evicts until the pool is within budget, or nothing more can go.
    /// `Err` after a failed spill, so the caller can back off.
    pub(super) fn evict_to_budget(&self) -> Result<(), ()> {
        self.evict_until(self.budget.budget()).map(drop)
    }

    /// Evicts until at most `target` bytes are resident, or nothing more
    /// can go now; how many objects left memory. `Err` after a failed
    /// spill. The background thread and callers short of room run it at
    /// once, on different victims (each takes its own off the queue).
    pub(super) fn evict_until(&self, target: usize) -> Result<usize, ()> {
        let (mut busy_in_a_row, mut evicted) = (0, 0);
        while self.budget.resident() > target {
            let Some((entry, weight)) = lock(&self.policy).next_victim() else {
                break;
            };
            match self.evict(&entry, weight) {
                Evicted::Done => {
                    busy_in_a_row = 0;
                    evicted += 1;
                }
                Evicted::Gone => busy_in_a_row = 0,
                Evicted::Busy(weight) => {
                    let mut policy = lock(&self.policy);
                    policy.requeue(entry, weight);
                    busy_in_a_row += 1;
                    // Everything queued is in use: wait for a guard to drop.
                    if busy_in_a_row > policy.len() {
                        break;
                    }
                }
                Evicted::Failed(weight) => {
                    lock(&self.policy).requeue(entry, weight);
                    return Err(());
                }
            }
        }
        Ok(evicted)
    }

    fn evict(&self, entry: &Arc<Entry<T>>, queued_weight: usize) -> Evicted {
        let mut st = entry.lock();
        if st.dropped {
            return Evicted::Gone;
        }
        let value = match &st.value {
            Value::Resident(v) if st.pins == 0 && st.waiters == 0 => v.clone(),
            Value::Absent | Value::Loading { .. } => return Evicted::Gone,
            _ => return Evicted::Busy(queued_weight.max(st.weight)),
        };
        let weight = st.weight;
        if st.on_disk() {
            st.value = Value::Absent;
            drop(st);
            drop(value);
            self.release_bytes(weight);
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            return Evicted::Done;
        }
        st.value = Value::Evicting(value.clone());
        let key = st.key;
        drop(st);
        let written = self.spill_value(key, value);
        let mut st = entry.lock();
        let outcome = if st.dropped {
            // `release` accounted for the memory; the blob is ours to delete.
            if written.is_ok() {
                self.background.delete_spill(key);
            }
            Evicted::Gone
        } else {
            match written {
                Ok(()) => {
                    self.counters.spills.fetch_add(1, Ordering::Relaxed);
                    if st.key != key {
                        self.background.delete_spill(key);
                    } else {
                        st.spilled = true;
                    }
                    if matches!(st.value, Value::Evicting(_)) {
                        st.value = Value::Absent;
                        self.release_bytes(weight);
                        self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                        Evicted::Done
                    } else {
                        Evicted::Busy(st.weight)
                    }
                }
                Err(e) => {
                    // Back to resident, unless a load took it back already.
                    st.value = match mem::replace(&mut st.value, Value::Absent) {
                        Value::Evicting(v) => Value::Resident(v),
                        other => other,
                    };
                    self.counters.spill_failures.fetch_add(1, Ordering::Relaxed);
                    *lock(&self.counters.last_spill_error) = Some(e);
                    Evicted::Failed(weight)
                }
            }
        };
        entry.announce(st);
        outcome
    }

    /// Writes the object to the spill area now, if it has no blob yet, and
    /// keeps it in memory: evicting it later costs no write.
    pub(crate) fn write_now(&self, entry: &Arc<Entry<T>>) -> Result<(), CacheError> {
        let mut st = entry.lock();
        let (key, value) = loop {
            if st.on_disk() || st.dropped {
                return Ok(());
            }
            match &st.value {
                Value::Resident(v) => break (st.key, v.clone()),
                // An eviction writing it, or its own guard changing it:
                // what they leave decides.
                Value::Evicting(_) | Value::Mutating => st = entry.wait(st),
                // Not in memory: it has a blob.
                Value::Loading { .. } | Value::Absent => return Ok(()),
            }
        };
        drop(st);
        let written = self.spill_value(key, value);
        let mut st = entry.lock();
        if written.is_ok() {
            if st.key == key && !st.dropped {
                st.spilled = true;
            } else {
                self.background.delete_spill(key);
            }
        }
        entry.announce(st);
        written
    }
}
