//! [`Pool`]: objects under a memory budget, over a [`Store`].
//!
//! The moving parts: each object is an [`Entry`](crate::entry) whose state
//! says where its value is; the S3-FIFO policy ([`crate::policy`]) orders
//! the resident ones for eviction; a background thread
//! ([`crate::background`]) evicts past the budget and deletes the spilled
//! blobs of dropped objects. Loads run on the caller's thread (blocking
//! API) or away from the caller's task (async API), and concurrent loads of
//! one object share one read.
//!
//! What the pool's clones and its [`Handle`]s share is
//! [`Shared`](shared::Shared); what is done to an object is split by
//! concern: [`load`], [`write`], [`evict`] and [`persist`]. None of them
//! names a handle or the pool, so the handle can name them without a loop.

mod evict;
pub(crate) mod load;
mod persist;
pub(crate) mod shared;
mod stats;
mod write;

pub use stats::PoolStats;

use crate::budget::Budget;
use crate::codec::Codec;
use crate::error::{CacheError, Rejected};
use crate::handle::Handle;
use crate::key::Key;
use crate::run;
use crate::store::{Listing, Location, Place, Store};
use shared::Shared;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A pool of objects of type `T` kept in memory under a byte budget, the
/// rest in a [`Store`].
///
/// Cloning a pool is cheap and gives another reference to the same pool.
/// The pool lives while any clone or [`Handle`] does; a background thread
/// evicts objects past the budget and deletes the spilled blobs of dropped
/// objects, and is stopped (its queued deletions done) when the pool goes.
pub struct Pool<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("budget", &self.shared.budget.budget())
            .field("resident", &self.shared.budget.resident())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Pool<T> {
    /// A pool over `store` that encodes objects with `codec` and keeps
    /// `budget` bytes of them in memory, as measured by `weigher` (for
    /// example `|v: &Vec<u8>| v.len()`), with the default
    /// [`PoolOptions`]: at most an eighth more while writers outrun the
    /// background thread.
    ///
    /// # Errors
    ///
    /// [`CacheError::Spawn`] if a background thread cannot start.
    pub fn new(
        store: impl Store,
        codec: impl Codec<T>,
        budget: usize,
        weigher: impl Fn(&T) -> usize + Send + Sync + 'static,
    ) -> Result<Self, CacheError> {
        Self::with_options(store, codec, weigher, PoolOptions::new(budget))
    }

    /// A pool with the given options.
    ///
    /// # Errors
    ///
    /// [`CacheError::Spawn`] if a background thread cannot start.
    pub fn with_options(
        store: impl Store,
        codec: impl Codec<T>,
        weigher: impl Fn(&T) -> usize + Send + Sync + 'static,
        options: PoolOptions,
    ) -> Result<Self, CacheError> {
        let budget = Budget::new(options.budget, options.slack.unwrap_or(options.budget / 8));
        let shared = Shared::start(
            Arc::new(store),
            Box::new(codec),
            Box::new(weigher),
            budget,
            options.admit_timeout,
        )?;
        Ok(Self { shared })
    }

    /// Adds an object; it stays in memory until the budget needs its room.
    ///
    /// When the pool is at its limit (see [`PoolOptions::slack`]), this
    /// thread makes room first, writing cold objects to the spill area, or
    /// waits for pinned objects to be released, up to
    /// [`PoolOptions::admit_timeout`]. So it may block: from async code,
    /// call it where blocking is allowed (`spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`Rejected`], holding the value, with [`CacheError::OverBudget`] if no
    /// room was made in time (what is in memory is pinned or cannot be
    /// spilled).
    pub fn insert(&self, value: T) -> Result<Handle<T>, Rejected<T>> {
        Handle::insert(&self.shared, value)
    }

    /// A handle to the object persisted under `key` in `location`, without
    /// loading it. If the pool already holds that key, the handle shares
    /// the object. The check that the blob exists runs away from the
    /// calling task.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] (as [`CacheError::Store`]) if the location
    /// has no such blob; an I/O failure checking it.
    ///
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    pub async fn register(&self, location: &Location, key: Key) -> Result<Handle<T>, CacheError> {
        let (shared, location) = (self.shared.clone(), location.clone());
        run::off_thread(move || {
            let entry = shared.register(&location, key)?;
            Ok(Handle::new(shared, entry))
        })
        .await?
    }

    /// [`register`](Pool::register) on this thread.
    ///
    /// # Errors
    ///
    /// As [`register`](Pool::register).
    pub fn blocking_register(
        &self,
        location: &Location,
        key: Key,
    ) -> Result<Handle<T>, CacheError> {
        let entry = self.shared.register(location, key)?;
        Ok(Handle::new(self.shared.clone(), entry))
    }

    /// The keys persisted in `location`, and files there the store did not
    /// write (reported, never deleted).
    ///
    /// # Errors
    ///
    /// An I/O failure reading the location.
    pub fn list(&self, location: &Location) -> Result<Listing, CacheError> {
        Ok(self.shared.store.list(location)?)
    }

    /// Reads the blob of `key` in `location` and checks its checksum and
    /// that the codec decodes it.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Corrupt`], an I/O failure,
    /// or [`CacheError::Codec`].
    ///
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    /// [`StoreError::Corrupt`]: crate::StoreError::Corrupt
    pub fn check(&self, location: &Location, key: Key) -> Result<(), CacheError> {
        let bytes = self.shared.store.read(Place::Persisted(location), key)?;
        self.shared
            .codec
            .decode_owned(bytes)
            .map(drop)
            .map_err(|source| CacheError::Codec { key, source })
    }

    /// Deletes the blob of `key` from `location`; returns whether there was
    /// one. Objects in the pool stay loadable: one that relied on this blob
    /// gets a spilled copy first (a hard link with the file store).
    ///
    /// # Errors
    ///
    /// An I/O failure; the blob is then still there.
    pub fn delete(&self, location: &Location, key: Key) -> Result<bool, CacheError> {
        self.shared.delete(location, key)
    }

    /// Counters and memory use.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// Blocks until no eviction is pending: the pool is within budget, or
    /// everything over it is in use (or its spill failed and waits for a
    /// retry). It does not wait for deletions of stale spilled blobs,
    /// which never hold up eviction; [`wait_finished`](Pool::wait_finished)
    /// does.
    pub fn wait_idle(&self) {
        self.shared.background.wait_idle();
    }

    /// Blocks until all background work is done: no eviction pending and
    /// the spilled blobs of dropped and rewritten objects deleted.
    pub fn wait_finished(&self) {
        self.shared.background.wait_finished();
    }

    /// [`wait_finished`](Pool::wait_finished) for async code.
    pub async fn finished(&self) {
        let background = &self.shared.background;
        std::future::poll_fn(|cx| background.poll_finished(cx.waker())).await;
    }
}

/// How a [`Pool`] keeps to its budget.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Bytes of objects in memory (by the weigher) that the background
    /// thread keeps the pool to.
    pub budget: usize,
    /// How far past the budget inserts and loads may take the pool before
    /// the caller must make room itself: `None` for an eighth of the
    /// budget. Resident bytes never pass `budget + slack`, except for one
    /// object larger than that alone in memory, and the growth of objects
    /// handed back by write guards until the next insert or load makes
    /// room.
    pub slack: Option<usize>,
    /// How long an insert or load waits for room when everything in memory
    /// is pinned or cannot be spilled, before it fails with
    /// [`CacheError::OverBudget`]. Default 5 s.
    pub admit_timeout: Duration,
}

impl PoolOptions {
    /// The defaults for a budget of `budget` bytes.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            slack: None,
            admit_timeout: Duration::from_secs(5),
        }
    }

    /// Sets [`slack`](PoolOptions::slack) in bytes.
    #[must_use]
    pub fn slack(mut self, bytes: usize) -> Self {
        self.slack = Some(bytes);
        self
    }

    /// Sets [`admit_timeout`](PoolOptions::admit_timeout).
    #[must_use]
    pub fn admit_timeout(mut self, timeout: Duration) -> Self {
        self.admit_timeout = timeout;
        self
    }
}

// Here rather than in `handle`: the pool's API returns handles, so a handle
// module that named the pool would import the module that imports it.
impl<T: Send + Sync + 'static> Handle<T> {
    /// The pool the object belongs to.
    pub fn pool(&self) -> Pool<T> {
        Pool {
            shared: self.shared().clone(),
        }
    }
}
