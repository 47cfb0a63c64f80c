//! A local copy of a collection's state and its typed reads: what a
//! node's `Reader` and a [`Mirror`](crate::Mirror) both dereference to.

mod cell;
mod map;
mod once;
mod priority_queue;
mod set;
mod vec;

use crate::local::{LocalError, LocalOptions, Publication, Publish};
use crate::shared::Shared;
use crate::version::Versions;
use std::sync::Arc;

/// A local copy of a collection's state, read without waiting on anyone:
/// what a `statemesh::Reader` of a replica and a [`Mirror`](crate::Mirror) read
/// through (both dereference to one), so both have the same read methods.
pub struct View<SM> {
    shared: Arc<Shared<SM>>,
}

impl<SM> Clone for View<SM> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<SM> View<SM> {
    /// A view of `shared`.
    #[must_use]
    pub fn new(shared: Arc<Shared<SM>>) -> Self {
        Self { shared }
    }

    /// The version (log index of the last applied change) of this copy.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.shared.version.get()
    }

    /// Futures for this copy's versions. (A `statemesh::Reader`'s `when` also has
    /// leadership futures.)
    #[must_use]
    pub fn when(&self) -> Versions {
        Versions::new(self.shared.version.subscribe())
    }

    /// Runs `read` on this copy's state now (for a custom state machine's
    /// reads; the collections have typed ones).
    pub fn read_with<R>(&self, read: impl FnOnce(&SM) -> R) -> R {
        read(&self.shared.sm.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `read` on this copy's state now, and returns the version of
    /// the state it read (exactly: both are read under one lock).
    pub fn read_versioned<R>(&self, read: impl FnOnce(&SM) -> R) -> (R, u64) {
        let sm = self.shared.sm.read().unwrap_or_else(|e| e.into_inner());
        (read(&sm), self.shared.version.get())
    }

    /// Publishes this copy to shared memory as region `name` (in
    /// `/dev/shm`), for [`local`](crate::local) readers on this host, until
    /// the returned [`Publication`] drops.
    ///
    /// # Errors
    ///
    /// [`LocalError::Open`] if the region cannot be made, or another
    /// publisher holds it.
    pub fn publish_local(&self, name: &str) -> Result<Publication, LocalError>
    where
        SM: Publish,
    {
        self.publish_local_with(name, &LocalOptions::new())
    }

    /// Like [`View::publish_local`], with options.
    ///
    /// # Errors
    ///
    /// As [`View::publish_local`].
    pub fn publish_local_with(
        &self,
        name: &str,
        options: &LocalOptions,
    ) -> Result<Publication, LocalError>
    where
        SM: Publish,
    {
        Publication::start(Arc::clone(&self.shared), name, options)
    }

    /// Reads this copy's state now.
    pub fn local<R>(&self, read: impl FnOnce(&SM) -> R) -> R {
        self.read_with(read)
    }
}
