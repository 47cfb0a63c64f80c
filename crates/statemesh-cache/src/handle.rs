//! [`Handle`]: a shared reference to one object of a pool, and the guards
//! that give access to its value.

use crate::entry::{Entry, Waiting};
use crate::error::{CacheError, Rejected};
use crate::key::Key;
use crate::pool::load::Waiter;
use crate::pool::shared::Shared;
use crate::run;
use crate::store::Location;
use std::fmt;
use std::future::poll_fn;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

/// A reference to an object in a [`Pool`](crate::Pool).
///
/// Cloning a handle is cheap and shares the object; the object lives while
/// any handle does, and when the last one drops its spilled blob is deleted
/// (persisted blobs stay). The value is reached through a guard:
/// [`load`](Handle::load) and its variants for reading,
/// [`load_mut`](Handle::load_mut) and [`make_mut`](Handle::make_mut) for
/// writing. A written object gets a new [`key`](Handle::key): blobs are
/// never changed in place.
pub struct Handle<T: Send + Sync + 'static> {
    shared: Arc<Shared<T>>,
    entry: Arc<Entry<T>>,
}

impl<T: Send + Sync + 'static> Handle<T> {
    /// A handle to an entry whose handle count includes it already (a new
    /// entry counts one).
    pub(crate) fn new(shared: Arc<Shared<T>>, entry: Arc<Entry<T>>) -> Self {
        Self { shared, entry }
    }

    /// A handle to a new object holding `value`.
    pub(crate) fn insert(shared: &Arc<Shared<T>>, value: T) -> Result<Self, Rejected<T>> {
        let entry = shared.insert(value)?;
        Ok(Self::new(shared.clone(), entry))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// The object's key: the name of its blobs. It changes when the object
    /// is written.
    pub fn key(&self) -> Key {
        self.entry.lock().key
    }

    /// Whether the value is in memory now.
    pub fn is_resident(&self) -> bool {
        self.entry.lock().value.in_memory()
    }

    /// The value if it is in memory, without waiting or I/O; `None` if it is
    /// on disk, being loaded, or being written out by an eviction.
    pub fn try_load(&self) -> Option<ReadGuard<'_, T>> {
        let value = self.shared.try_resident(&self.entry)?;
        Some(ReadGuard {
            handle: self,
            value,
        })
    }

    /// The value, read back from the store if it is not in memory.
    /// Concurrent loads of one object share one read.
    ///
    /// Cancel-safe: a dropped future leaves the object as it was, or
    /// loaded.
    ///
    /// # Errors
    ///
    /// The store's or the codec's failure; the object stays on disk and a
    /// later load tries again.
    pub async fn load(&self) -> Result<ReadGuard<'_, T>, CacheError> {
        let mut waiter = Waiter::new(&self.shared, &self.entry);
        let value = poll_fn(|cx| {
            self.shared
                .poll_resident(&mut waiter, Waiting::Task(cx.waker()))
        })
        .await?;
        Ok(ReadGuard {
            handle: self,
            value,
        })
    }

    /// [`load`](Handle::load) for threads that may block (no runtime
    /// needed). The read happens on this thread.
    ///
    /// # Errors
    ///
    /// As [`load`](Handle::load).
    pub fn blocking_load(&self) -> Result<ReadGuard<'_, T>, CacheError> {
        let value = self.block_resident()?;
        Ok(ReadGuard {
            handle: self,
            value,
        })
    }

    fn block_resident(&self) -> Result<Arc<T>, CacheError> {
        let mut waiter = Waiter::new(&self.shared, &self.entry);
        loop {
            if let Poll::Ready(r) = self.shared.poll_resident(&mut waiter, Waiting::Block) {
                return r;
            }
        }
    }

    /// Makes the value resident without keeping a guard: for a caller that
    /// will want it soon. It may be evicted again like any other.
    ///
    /// # Errors
    ///
    /// As [`load`](Handle::load).
    pub async fn load_in_place(&self) -> Result<(), CacheError> {
        self.load().await.map(drop)
    }

    /// [`load_in_place`](Handle::load_in_place) for threads that may block.
    ///
    /// # Errors
    ///
    /// As [`load`](Handle::load).
    pub fn blocking_load_in_place(&self) -> Result<(), CacheError> {
        self.blocking_load().map(drop)
    }

    /// Writes the object to the store's spill area now, if it has no blob
    /// there or in a location yet, and keeps it in memory: a later eviction
    /// then costs no write. Runs away from the calling task.
    ///
    /// # Errors
    ///
    /// The store's or the codec's failure; the object stays as it was.
    pub async fn write_now(&self) -> Result<(), CacheError> {
        let (shared, entry) = (self.shared.clone(), self.entry.clone());
        run::off_thread(move || shared.write_now(&entry)).await?
    }

    /// [`write_now`](Handle::write_now) on this thread.
    ///
    /// # Errors
    ///
    /// As [`write_now`](Handle::write_now).
    pub fn blocking_write_now(&self) -> Result<(), CacheError> {
        self.shared.write_now(&self.entry)
    }

    /// Exclusive write access if it can be had now: the object is in
    /// memory, this is its only handle, and no guard or eviction holds it.
    /// No waiting and no I/O; the object gets a new key only if this
    /// returns a guard.
    pub fn try_load_mut(&mut self) -> Option<WriteGuard<'_, T>> {
        if self.shared.is_shared(&self.entry) {
            return None;
        }
        let pin = Pin::new(self.try_load()?);
        let value = self.shared.try_take(&self.entry)?;
        if self.shared.rename(&self.entry).is_err() {
            // Shared meanwhile by a `register` of its key.
            self.shared.put_back(&self.entry, value);
            return None;
        }
        drop(pin);
        Some(WriteGuard::new(self, value))
    }

    /// Exclusive write access. The object gets a new key at once, and its
    /// spilled blob of the old key is deleted.
    ///
    /// Cancel-safe: a dropped future leaves the object unchanged (perhaps
    /// under its new key).
    ///
    /// # Errors
    ///
    /// [`CacheError::Shared`] if other handles share the object (use
    /// [`make_mut`](Handle::make_mut)); a failed load.
    pub async fn load_mut(&mut self) -> Result<WriteGuard<'_, T>, CacheError> {
        if self.shared.is_shared(&self.entry) {
            return Err(CacheError::Shared { key: self.key() });
        }
        let pin = Pin::new(self.load().await?);
        self.shared.rename(&self.entry)?;
        Ok(self.write_guard(pin).await)
    }

    /// [`load_mut`](Handle::load_mut) for threads that may block.
    ///
    /// # Errors
    ///
    /// As [`load_mut`](Handle::load_mut).
    pub fn blocking_load_mut(&mut self) -> Result<WriteGuard<'_, T>, CacheError> {
        if self.shared.is_shared(&self.entry) {
            return Err(CacheError::Shared { key: self.key() });
        }
        let pin = Pin::new(self.blocking_load()?);
        self.shared.rename(&self.entry)?;
        Ok(self.blocking_write_guard(pin))
    }

    /// Takes the pinned, renamed value out for a write guard, waiting for
    /// any background job still holding it.
    async fn write_guard(&mut self, pin: Pin<T>) -> WriteGuard<'_, T> {
        let value = poll_fn(|cx| {
            self.shared
                .poll_take(&self.entry, Waiting::Task(cx.waker()))
        })
        .await;
        drop(pin);
        WriteGuard::new(self, value)
    }

    /// [`write_guard`](Handle::write_guard), blocking.
    fn blocking_write_guard(&mut self, pin: Pin<T>) -> WriteGuard<'_, T> {
        let value = loop {
            if let Poll::Ready(v) = self.shared.poll_take(&self.entry, Waiting::Block) {
                break v;
            }
        };
        drop(pin);
        WriteGuard::new(self, value)
    }

    /// Write access, copy-on-write: if other handles share the object, this
    /// handle gets a copy of its own (a new object) and the others keep the
    /// original; otherwise as [`load_mut`](Handle::load_mut).
    ///
    /// # Errors
    ///
    /// A failed load.
    pub async fn make_mut(&mut self) -> Result<WriteGuard<'_, T>, CacheError>
    where
        T: Clone,
    {
        if self.shared.is_shared(&self.entry) {
            let copy = T::clone(&*self.load().await?);
            *self = self.insert_off_thread(copy).await?;
        }
        let mut pin = Pin::new(self.load().await?);
        // Even a fresh copy is renamed: the evictor may have spilled it
        // before it was pinned, and that blob holds the unwritten value.
        if self.shared.rename(&self.entry).is_err() {
            // Shared meanwhile by a `register` of its key: copy after all.
            let copy = T::clone(&*self.load().await?);
            drop(pin);
            *self = self.insert_off_thread(copy).await?;
            pin = Pin::new(self.load().await?);
            self.shared.rename(&self.entry)?;
        }
        Ok(self.write_guard(pin).await)
    }

    /// Inserts a copy into the pool away from the calling task (an insert
    /// may spill objects to make room).
    async fn insert_off_thread(&self, copy: T) -> Result<Handle<T>, CacheError> {
        let shared = self.shared.clone();
        Ok(run::off_thread(move || Handle::insert(&shared, copy)).await??)
    }

    /// [`make_mut`](Handle::make_mut) for threads that may block.
    ///
    /// # Errors
    ///
    /// A failed load.
    pub fn blocking_make_mut(&mut self) -> Result<WriteGuard<'_, T>, CacheError>
    where
        T: Clone,
    {
        if self.shared.is_shared(&self.entry) {
            let copy = T::clone(&*self.blocking_load()?);
            *self = Handle::insert(&self.shared, copy)?;
        }
        let mut pin = Pin::new(self.blocking_load()?);
        if self.shared.rename(&self.entry).is_err() {
            let copy = T::clone(&*self.blocking_load()?);
            drop(pin);
            *self = Handle::insert(&self.shared, copy)?;
            pin = Pin::new(self.blocking_load()?);
            self.shared.rename(&self.entry)?;
        }
        Ok(self.blocking_write_guard(pin))
    }

    /// Makes the object durable in `location` under its current key: when
    /// this returns the blob and its directory entry are on disk. Persisting
    /// to a location that has the key already does nothing.
    ///
    /// The write runs away from the calling task. If the future is dropped
    /// the persist may still complete; calling again is cheap and tells.
    ///
    /// # Errors
    ///
    /// The store's or the codec's failure; nothing is left in the location.
    pub async fn persist(&self, location: &Location) -> Result<(), CacheError> {
        let (shared, entry, location) = (self.shared.clone(), self.entry.clone(), location.clone());
        run::off_thread(move || shared.persist(&entry, &location)).await?
    }

    /// [`persist`](Handle::persist) on this thread.
    ///
    /// # Errors
    ///
    /// As [`persist`](Handle::persist).
    pub fn blocking_persist(&self, location: &Location) -> Result<(), CacheError> {
        self.shared.persist(&self.entry, location)
    }
}

impl<T: Send + Sync + 'static> Clone for Handle<T> {
    fn clone(&self) -> Self {
        self.entry.handles.fetch_add(1, Ordering::AcqRel);
        Self {
            shared: self.shared.clone(),
            entry: self.entry.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Drop for Handle<T> {
    fn drop(&mut self) {
        if self.entry.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.release(&self.entry);
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("key", &self.key()).finish()
    }
}

/// A pin on a value without a reference to it, so a write can take the
/// value out. Unpins on drop, also when a future holding it is dropped.
struct Pin<T: Send + Sync + 'static> {
    shared: Arc<Shared<T>>,
    entry: Arc<Entry<T>>,
}

impl<T: Send + Sync + 'static> Pin<T> {
    /// Turns a read guard into a pin without a reference.
    fn new(guard: ReadGuard<'_, T>) -> Self {
        let (shared, entry) = (guard.handle.shared.clone(), guard.handle.entry.clone());
        shared.pin_again(&entry);
        drop(guard);
        Pin { shared, entry }
    }
}

impl<T: Send + Sync + 'static> Drop for Pin<T> {
    fn drop(&mut self) {
        self.shared.unpin(&self.entry);
    }
}

/// Read access to an object's value. The value stays in memory while the
/// guard lives.
pub struct ReadGuard<'a, T: Send + Sync + 'static> {
    handle: &'a Handle<T>,
    value: Arc<T>,
}

impl<T: Send + Sync + 'static> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Send + Sync + 'static> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        self.handle.shared.unpin(&self.handle.entry);
    }
}

impl<T: Send + Sync + fmt::Debug + 'static> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        T::fmt(&self.value, f)
    }
}

/// Exclusive write access to an object's value. When the guard drops the
/// value goes back to the pool, weighed again.
pub struct WriteGuard<'a, T: Send + Sync + 'static> {
    handle: &'a mut Handle<T>,
    value: Option<T>,
}

impl<'a, T: Send + Sync + 'static> WriteGuard<'a, T> {
    fn new(handle: &'a mut Handle<T>, value: T) -> Self {
        Self {
            handle,
            value: Some(value),
        }
    }
}

impl<T: Send + Sync + 'static> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // `value` is `Some` from `new` until `drop`.
        self.value.as_ref().expect("value present until drop")
    }
}

impl<T: Send + Sync + 'static> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("value present until drop")
    }
}

impl<T: Send + Sync + 'static> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.handle.shared.put_back(&self.handle.entry, value);
        }
    }
}

impl<T: Send + Sync + fmt::Debug + 'static> fmt::Debug for WriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteGuard").field(&self.value).finish()
    }
}
