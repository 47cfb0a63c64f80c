//! Remote once-cells.

use super::{Remote, RemoteWritten};
use crate::client::ClientError;
use statemesh_core::collections::once_ops as ops;
use statemesh_core::collections::{OnceQuery, OnceState, Value};
use std::time::Duration;

impl<T: Value> Remote<OnceState<T>> {
    /// The value, if set.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get(&self) -> Result<Option<T>, ClientError> {
        Ok(self.query(OnceQuery).await?.0)
    }

    /// Sets the value if no writer did before: `Ok(())` if this one did,
    /// `Err(value)` with the value that stays if not.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn set(&self, value: T) -> RemoteWritten<Result<(), T>> {
        ops::set(self, value).await
    }

    /// Waits until the value is set, and returns it.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn wait_value(&self) -> Result<T, ClientError> {
        let mut version = 0;
        loop {
            if let (Some(v), _) = self.query(OnceQuery).await? {
                return Ok(v);
            }
            version = self.wait_version(version, Duration::from_secs(30)).await?;
        }
    }
}
