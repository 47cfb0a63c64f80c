//! `Set<T>`: a replicated ordered set.

use super::handle::{Reader, Writer, Written};
use crate::error::QueryError;
use imbl::OrdSet;
use statemesh_core::collections::SetState;
use statemesh_core::collections::{Key, set_ops};

/// The writer handle of a replicated set.
pub type Set<T> = Writer<SetState<T>>;
/// The read-only handle of a replicated set.
pub type SetReader<T> = Reader<SetState<T>>;

impl<T: Key> Reader<SetState<T>> {
    /// The elements as of now, cluster-wide (read index).
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn snapshot_linearizable(&self) -> Result<OrdSet<T>, QueryError> {
        self.linearizable(|s| s.as_set().clone()).await
    }
}

impl<T: Key> Writer<SetState<T>> {
    /// Adds `value`; returns whether it was new.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn insert(&self, value: T) -> Written<bool> {
        set_ops::insert(self, value).await
    }

    /// Removes `value`; returns whether it was there.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove(&self, value: T) -> Written<bool> {
        set_ops::remove(self, value).await
    }

    /// Removes `values` in one change; returns how many were there.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn remove_many(&self, values: Vec<T>) -> Written<usize> {
        set_ops::remove_many(self, values).await
    }

    /// Adds `values` in one change; returns how many were new.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn extend(&self, values: Vec<T>) -> Written<usize> {
        set_ops::extend(self, values).await
    }

    /// Removes every element; returns how many there were.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<usize> {
        set_ops::clear(self).await
    }
}
