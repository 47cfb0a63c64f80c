//! Sending events to a hooked collection.

use super::{Remote, RemoteWritten};
use statemesh_core::Queryable;
use statemesh_core::hooks::{Event, HookError, Hooked, Hooks};

impl<H: Hooks> Remote<Hooked<H>>
where
    H::State: Queryable,
{
    /// Sends `event`: it is committed in log order and the hooks handle it
    /// on every replica. Returns what the hook returned (or why it refused,
    /// in which case nothing changed) and the version it was applied at.
    ///
    /// # Errors
    ///
    /// See [`ClientError`](crate::ClientError): the event could not be
    /// sent, or its outcome is unknown.
    pub async fn send_event(&self, event: H::Event) -> RemoteWritten<Result<H::Output, HookError>> {
        self.execute(Event(event)).await
    }
}
