//! What a user writes: the hooks that handle events, and the edit of the
//! state they make.

use crate::state_machine::{Changes, Mirrored};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a hook refused an event (or the initial state could not be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    /// What the hook said, or what its panic said.
    pub message: String,
}

impl HookError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// User-defined handling of events: the only thing that changes a hooked
/// collection. See the [module documentation](crate::hooks) for what hooks may
/// not do.
pub trait Hooks: Send + Sync + 'static {
    /// The collection the hooks change.
    type State: Mirrored + Default + Clone;
    /// What senders send.
    type Event: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What handling an event returns to its sender.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Names this set of hooks and its version (`"bank/2"`): part of the
    /// collection's signature, so nodes with other hooks never share it.
    fn name(&self) -> String;

    /// Makes the initial state from the empty one. It runs where a
    /// collection's empty state is made, on every replica, mirror and
    /// client, and its result is part of the collection's identity. If it
    /// fails, the collection cannot be created. The default leaves the
    /// state empty.
    ///
    /// # Errors
    ///
    /// Whatever the hook refuses.
    fn init(&self, state: &mut Edit<'_, Self::State>) -> Result<(), HookError> {
        let _ = state;
        Ok(())
    }

    /// Handles `event`, changing the state through [`Edit::apply`].
    ///
    /// # Errors
    ///
    /// Whatever the hook refuses: then nothing it changed is kept.
    fn on_event(
        &self,
        state: &mut Edit<'_, Self::State>,
        event: Self::Event,
    ) -> Result<Self::Output, HookError>;
}

/// What a hook changes the state through: the collection's commands,
/// recorded for mirrors as any command is.
pub struct Edit<'a, S: Mirrored> {
    pub(super) state: &'a mut S,
    pub(super) version: u64,
    pub(super) changes: Vec<S::Change>,
}

impl<S: Mirrored> Edit<'_, S> {
    /// The state as the hook has changed it so far.
    #[must_use]
    pub fn get(&self) -> &S {
        self.state
    }

    /// Applies one of the collection's commands; its outcome.
    pub fn apply(&mut self, command: S::Command) -> S::Response {
        self.state
            .apply_recording(command, self.version, &mut Changes::into(&mut self.changes))
    }

    /// The version the event is applied at.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }
}
