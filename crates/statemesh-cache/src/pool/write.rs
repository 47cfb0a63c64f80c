//! Write access: a write guard takes an object's value out under a new key
//! and puts it back, weighed again; and the end of an object, when its
//! last handle drops.

use super::shared::{Shared, lock};
use crate::entry::{Entry, Value, Waiting};
use crate::error::CacheError;
use crate::key::Key;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

impl<T: Send + Sync + 'static> Shared<T> {
    /// Gives the object a new key, for a write: its blobs keep the old
    /// bytes under the old key. Fails if other handles share the object.
    pub(crate) fn rename(&self, entry: &Arc<Entry<T>>) -> Result<(), CacheError> {
        let mut index = lock(&self.index);
        let mut st = entry.lock();
        if entry.handles.load(Ordering::Acquire) != 1 {
            return Err(CacheError::Shared { key: st.key });
        }
        let old = st.key;
        let new = Key::random();
        st.key = new;
        st.persisted.clear();
        st.failure = None;
        let spilled = mem::take(&mut st.spilled);
        drop(st);
        index.remove(&old);
        index.insert(new, Arc::downgrade(entry));
        drop(index);
        if spilled {
            self.background.delete_spill(old);
        }
        Ok(())
    }

    /// Whether other handles share the object.
    pub(crate) fn is_shared(&self, entry: &Entry<T>) -> bool {
        entry.handles.load(Ordering::Acquire) != 1
    }

    /// Takes the (pinned, resident) value out for a write guard, once no
    /// background job holds a reference to it.
    pub(crate) fn poll_take(&self, entry: &Entry<T>, how: Waiting<'_>) -> Poll<T> {
        let mut st = entry.lock();
        loop {
            // Pinned by the caller, so never evicting or absent; anything
            // but a resident value is left as it was.
            match mem::replace(&mut st.value, Value::Mutating) {
                Value::Resident(v) => match Arc::try_unwrap(v) {
                    Ok(v) => return Poll::Ready(v),
                    Err(v) => st.value = Value::Resident(v),
                },
                other => st.value = other,
            }
            match how {
                Waiting::Block => st = entry.wait(st),
                Waiting::Task(waker) => {
                    st.wake_me(waker);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Takes the resident, pinned value out for a write guard if nothing
    /// else holds it now; no waiting.
    pub(crate) fn try_take(&self, entry: &Entry<T>) -> Option<T> {
        let mut st = entry.lock();
        match mem::replace(&mut st.value, Value::Mutating) {
            Value::Resident(v) => match Arc::try_unwrap(v) {
                Ok(v) => Some(v),
                Err(v) => {
                    st.value = Value::Resident(v);
                    None
                }
            },
            other => {
                st.value = other;
                None
            }
        }
    }

    /// Puts a written value back (a write guard dropped).
    pub(crate) fn put_back(&self, entry: &Entry<T>, value: T) {
        let weight = self.weigh(&value);
        let mut st = entry.lock();
        let old = mem::replace(&mut st.weight, weight);
        st.value = Value::Resident(Arc::new(value));
        entry.announce(st);
        self.reweigh(old, weight);
    }

    /// The last handle of `entry` dropped.
    pub(crate) fn release(&self, entry: &Arc<Entry<T>>) {
        {
            let mut index = lock(&self.index);
            // `register` may have handed out a new handle meanwhile.
            if entry.handles.load(Ordering::Acquire) != 0 {
                return;
            }
            let key = entry.lock().key;
            if index
                .get(&key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(entry)))
            {
                index.remove(&key);
            }
        }
        let mut st = entry.lock();
        st.dropped = true;
        let value = mem::replace(&mut st.value, Value::Absent);
        if value.in_memory() {
            self.release_bytes(st.weight);
        }
        let spilled = mem::take(&mut st.spilled).then_some(st.key);
        entry.announce(st);
        drop(value);
        if let Some(key) = spilled {
            self.background.delete_spill(key);
        }
        self.forget_dead();
    }

    /// Counts a dropped entry that may still sit in the policy's queues and
    /// sweeps them once such entries are a third of what is queued, so the
    /// queues stay proportional to the live objects at O(1) amortised cost.
    fn forget_dead(&self) {
        let dead = self.dead_queued.fetch_add(1, Ordering::Relaxed) + 1;
        if dead < 64 {
            return;
        }
        let mut policy = lock(&self.policy);
        if dead * 3 >= policy.len() {
            policy.retain(|e| !e.lock().dropped);
            self.dead_queued.store(0, Ordering::Relaxed);
        }
    }
}
