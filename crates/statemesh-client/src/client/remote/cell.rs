//! Remote cells.

use super::{Remote, RemoteWritten};
use crate::client::ClientError;
use statemesh_core::collections::cell_ops as ops;
use statemesh_core::collections::{CellQuery, CellState, Value};

impl<T: Value> Remote<CellState<T>> {
    /// The value.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn read(&self) -> Result<Option<T>, ClientError> {
        Ok(self.query(CellQuery).await?.0)
    }

    /// Sets the value; returns the previous one.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn write(&self, value: T) -> RemoteWritten<Option<T>> {
        ops::write(self, value).await
    }

    /// Empties the cell; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<Option<T>> {
        ops::clear(self).await
    }

    /// Stores `new` if the cell holds `expected`: `Ok(previous)` if it did,
    /// `Err(current)` if not.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn compare_exchange(
        &self,
        expected: Option<T>,
        new: Option<T>,
    ) -> RemoteWritten<Result<Option<T>, Option<T>>> {
        ops::compare_exchange(self, expected, new).await
    }
}
