//! Persisted locations: making an object durable in one, taking a
//! persisted blob into the pool as an object, and deleting one.

use super::shared::{Shared, lock};
use crate::entry::{Entry, Source, Value};
use crate::error::{CacheError, StoreError};
use crate::key::Key;
use crate::store::{Location, Place};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

impl<T: Send + Sync + 'static> Shared<T> {
    /// Makes the object durable in `location` (blocking).
    pub(crate) fn persist(
        &self,
        entry: &Arc<Entry<T>>,
        location: &Location,
    ) -> Result<(), CacheError> {
        enum From<T> {
            Memory(Arc<T>),
            Blob(Source),
        }
        let mut st = entry.lock();
        let (key, from) = loop {
            if st.persisted.contains(location) {
                return Ok(());
            }
            match (&st.value, st.source()) {
                (Value::Resident(v) | Value::Evicting(v), _) => {
                    break (st.key, From::Memory(v.clone()));
                }
                (_, Some(source)) => break (st.key, From::Blob(source)),
                // Being changed by its own handle's guard: wait for it.
                (_, None) => st = entry.wait(st),
            }
        };
        drop(st);
        let written = match from {
            From::Memory(v) => {
                let bytes = self.encode(key, &v);
                // Before announcing: a write guard waits for the only
                // reference.
                drop(v);
                bytes.and_then(|b| Ok(self.store.write(Place::Persisted(location), key, &b)?))
            }
            From::Blob(source) => {
                Ok(self
                    .store
                    .copy(source.place(), Place::Persisted(location), key)?)
            }
        };
        let mut st = entry.lock();
        if written.is_ok() && st.key == key && !st.persisted.contains(location) {
            st.persisted.push(location.clone());
        }
        entry.announce(st);
        written
    }

    /// The entry of the object persisted under `key` in `location`, with
    /// one more handle counted for the caller to make: the live one if the
    /// pool holds the key, else a new one, not loaded.
    pub(super) fn register(
        &self,
        location: &Location,
        key: Key,
    ) -> Result<Arc<Entry<T>>, CacheError> {
        if !self.store.contains(Place::Persisted(location), key)? {
            return Err(StoreError::NotFound {
                key,
                place: Place::Persisted(location).to_string(),
            }
            .into());
        }
        let mut index = lock(&self.index);
        if let Some(entry) = index.get(&key).and_then(Weak::upgrade) {
            entry.handles.fetch_add(1, Ordering::AcqRel);
            let mut st = entry.lock();
            if !st.persisted.contains(location) {
                st.persisted.push(location.clone());
            }
            drop(st);
            return Ok(entry);
        }
        let entry = self.new_entry(key, Value::Absent, 0);
        entry.lock().persisted.push(location.clone());
        index.insert(key, Arc::downgrade(&entry));
        drop(index);
        Ok(entry)
    }

    /// Deletes a persisted blob. A live object that relies on it gets a
    /// spilled copy first, so nothing it may still load is lost.
    pub(super) fn delete(&self, location: &Location, key: Key) -> Result<bool, CacheError> {
        let live = lock(&self.index).get(&key).and_then(Weak::upgrade);
        if let Some(entry) = live {
            let mut st = entry.lock();
            if st.key == key && st.persisted.contains(location) {
                let only_copy = !st.spilled && st.persisted.len() == 1;
                drop(st);
                if only_copy {
                    self.store
                        .copy(Place::Persisted(location), Place::Spill, key)?;
                }
                st = entry.lock();
                if st.key == key {
                    st.spilled |= only_copy;
                    st.persisted.retain(|l| l != location);
                } else if only_copy {
                    self.background.delete_spill(key);
                }
            }
        }
        Ok(self.store.remove(Place::Persisted(location), key)?)
    }
}
