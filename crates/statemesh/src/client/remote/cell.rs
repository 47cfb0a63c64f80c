//! Remote cells.

use super::{Remote, RemoteWritten, wrong};
use crate::client::ClientError;
use crate::collections::{CellCommand, CellOutcome, CellQuery, CellState, Value};

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
        cell_previous(self.execute(CellCommand::Write(value)).await?)
    }

    /// Empties the cell; returns the previous value.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<Option<T>> {
        cell_previous(self.execute(CellCommand::Clear).await?)
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
        match self
            .execute(CellCommand::CompareExchange { expected, new })
            .await?
        {
            (CellOutcome::Exchanged(r), v) => Ok((r, v)),
            _ => wrong("compare_exchange"),
        }
    }
}

fn cell_previous<T>(r: (CellOutcome<T>, u64)) -> RemoteWritten<Option<T>> {
    match r {
        (CellOutcome::Previous(p), v) => Ok((p, v)),
        _ => wrong("a write"),
    }
}
