//! `Cell<T>`: one replicated value.

use super::handle::{Reader, Writer, Written};
use crate::error::QueryError;
use statemesh_core::collections::CellState;
use statemesh_core::collections::{Value, cell_ops};

/// The writer handle of a replicated value.
pub type Cell<T> = Writer<CellState<T>>;
/// The read-only handle of a replicated value.
pub type CellReader<T> = Reader<CellState<T>>;

impl<T: Value> Reader<CellState<T>> {
    /// The value as of now, cluster-wide.
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn read_linearizable(&self) -> Result<Option<T>, QueryError> {
        self.linearizable(|s| s.value().cloned()).await
    }
}

impl<T: Value> Writer<CellState<T>> {
    /// Sets the value; returns the previous one.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn write(&self, value: T) -> Written<Option<T>> {
        cell_ops::write(self, value).await
    }

    /// Empties the cell; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<Option<T>> {
        cell_ops::clear(self).await
    }

    /// Stores `new` if the cell holds `expected`: `Ok(previous)` if it did,
    /// `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn compare_exchange(
        &self,
        expected: Option<T>,
        new: Option<T>,
    ) -> Written<Result<Option<T>, Option<T>>> {
        cell_ops::compare_exchange(self, expected, new).await
    }
}
