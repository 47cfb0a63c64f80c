//! `Once<T>`: a value set once, by whichever writer is first.

use super::handle::{Reader, Writer, Written};
use crate::error::QueryError;
use statemesh_core::collections::OnceState;
use statemesh_core::collections::{Value, once_ops};

/// The writer handle of a set-once value.
pub type Once<T> = Writer<OnceState<T>>;
/// The read-only handle of a set-once value.
pub type OnceReader<T> = Reader<OnceState<T>>;

impl<T: Value> Reader<OnceState<T>> {
    /// The value as of now, cluster-wide.
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn get_linearizable(&self) -> Result<Option<T>, QueryError> {
        self.linearizable(|s| s.value().cloned()).await
    }
}

impl<T: Value> Writer<OnceState<T>> {
    /// Sets the value unless one is set: `Ok(())` if this call set it,
    /// `Err(existing)` if not (the write is ignored).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn set(&self, value: T) -> Written<Result<(), T>> {
        once_ops::set(self, value).await
    }
}
