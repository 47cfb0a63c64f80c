//! The state machine of a hooked collection: events in the log, the
//! hooks' edits applied on every replica.

use super::hook::{Edit, HookError, Hooks};
use crate::state_machine::{Changes, Mirrored, Queryable, StateMachine};
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// What a hooked collection's log holds: events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<E>(pub E);

/// The state machine of a collection changed only by the hooks `H`.
pub struct Hooked<H: Hooks> {
    hooks: Arc<H>,
    state: H::State,
}

impl<H: Hooks> Clone for Hooked<H> {
    fn clone(&self) -> Self {
        Self {
            hooks: Arc::clone(&self.hooks),
            state: self.state.clone(),
        }
    }
}

impl<H: Hooks> std::fmt::Debug for Hooked<H>
where
    H::State: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("hooks", &self.hooks.name())
            .field("state", &self.state)
            .finish()
    }
}

impl<H: Hooks> Hooked<H> {
    /// The collection's initial state under `hooks`: the empty state,
    /// changed by [`Hooks::init`].
    ///
    /// # Errors
    ///
    /// What `init` refused, or its panic.
    pub fn new(hooks: H) -> Result<Self, HookError> {
        let hooks = Arc::new(hooks);
        let mut state = H::State::default();
        let mut edit = Edit {
            state: &mut state,
            version: 0,
            changes: Vec::new(),
        };
        guarded(|| hooks.init(&mut edit))?;
        Ok(Self { hooks, state })
    }

    /// The collection's state.
    #[must_use]
    pub fn state(&self) -> &H::State {
        &self.state
    }

    /// Runs the hook on `event`; its changes are kept only if it succeeds.
    fn handle(
        &mut self,
        event: H::Event,
        version: u64,
        changes: &mut Changes<<H::State as Mirrored>::Change>,
    ) -> Result<H::Output, HookError> {
        // O(1) for the collections (persistent structures): the state to
        // go back to if the hook fails.
        let before = self.state.clone();
        let mut edit = Edit {
            state: &mut self.state,
            version,
            changes: Vec::new(),
        };
        let hooks = &self.hooks;
        match guarded(|| hooks.on_event(&mut edit, event)) {
            Ok(output) => {
                for c in edit.changes {
                    changes.record(|| c);
                }
                Ok(output)
            }
            Err(e) => {
                self.state = before;
                Err(e)
            }
        }
    }
}

/// Runs a hook, turning a panic into an error: the node applying it must
/// go on, and every replica panics alike on the same event.
fn guarded<T>(hook: impl FnOnce() -> Result<T, HookError>) -> Result<T, HookError> {
    match catch_unwind(AssertUnwindSafe(hook)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(HookError::new(format!("the hook panicked: {message}")))
        }
    }
}

impl<H: Hooks> StateMachine for Hooked<H> {
    type Command = Event<H::Event>;
    type Response = Result<H::Output, HookError>;
    type Snapshot = <H::State as StateMachine>::Snapshot;

    fn signature(&self) -> String {
        format!(
            "statemesh::Hooked<{}>({})",
            self.state.signature(),
            self.hooks.name()
        )
    }

    fn apply(&mut self, event: Event<H::Event>, version: u64) -> Self::Response {
        self.handle(event.0, version, &mut Changes::off())
    }

    fn snapshot(&self) -> Self::Snapshot {
        self.state.snapshot()
    }

    fn restore(&mut self, snapshot: Self::Snapshot) {
        self.state.restore(snapshot);
    }

    fn entries(&self) -> Option<u64> {
        self.state.entries()
    }
}

impl<H: Hooks> Mirrored for Hooked<H> {
    type Change = <H::State as Mirrored>::Change;

    fn apply_recording(
        &mut self,
        event: Event<H::Event>,
        version: u64,
        changes: &mut Changes<Self::Change>,
    ) -> Self::Response {
        self.handle(event.0, version, changes)
    }

    fn apply_change(&mut self, change: Self::Change) {
        self.state.apply_change(change);
    }

    fn merge(changes: Vec<Self::Change>) -> Vec<Self::Change> {
        H::State::merge(changes)
    }
}

impl<H: Hooks> Queryable for Hooked<H>
where
    H::State: Queryable,
{
    type Query = <H::State as Queryable>::Query;
    type Answer = <H::State as Queryable>::Answer;

    fn answer(&self, query: Self::Query) -> Self::Answer {
        self.state.answer(query)
    }
}
