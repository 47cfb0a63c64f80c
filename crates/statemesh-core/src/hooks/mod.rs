//! Events and hooks: a collection that only user-defined, deterministic
//! functions change, in response to events anyone may send.
//!
//! A [`Hooks`] implementation names a collection state (a map, say), an
//! event type and what handling an event returns. Its
//! [`Hooks::on_event`] runs inside `apply` on every replica, in log order,
//! and changes the state through the collection's own commands (so mirrors
//! follow the changes as usual); its [`Hooks::init`] makes the initial
//! state. An event either applies entirely or not at all: if the hook
//! returns an error or panics, every change it made is rolled back and the
//! sender gets the error.
//!
//! Hooks run on every replica and must give the same result on each: no
//! I/O, no clock, no randomness, no iteration over a hash map's order, and
//! nothing but the state and the event as input. Nothing enforces this;
//! a hook that breaks it makes replicas disagree.
//!
//! ```
//! use statemesh_core::collections::{MapCommand, MapState};
//! use statemesh_core::hooks::{Edit, HookError, Hooks};
//! use serde::{Deserialize, Serialize};
//!
//! /// Accounts that never go below zero.
//! struct Bank;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Transfer { from: String, to: String, amount: u64 }
//!
//! impl Hooks for Bank {
//!     type State = MapState<String, u64>;
//!     type Event = Transfer;
//!     type Output = u64;
//!
//!     fn name(&self) -> String { "bank/1".into() }
//!
//!     fn init(&self, state: &mut Edit<'_, Self::State>) -> Result<(), HookError> {
//!         state.apply(MapCommand::Insert("reserve".into(), 1_000));
//!         Ok(())
//!     }
//!
//!     fn on_event(&self, state: &mut Edit<'_, Self::State>, t: Transfer) -> Result<u64, HookError> {
//!         let from = state.get().as_map().get(&t.from).copied().unwrap_or(0);
//!         let left = from.checked_sub(t.amount).ok_or_else(|| HookError::new("insufficient funds"))?;
//!         let to = state.get().as_map().get(&t.to).copied().unwrap_or(0);
//!         state.apply(MapCommand::Insert(t.from, left));
//!         state.apply(MapCommand::Insert(t.to, to + t.amount));
//!         Ok(left)
//!     }
//! }
//! ```

mod json_events;

pub use json_events::JsonEvents;

use crate::state_machine::{Changes, Mirrored, Queryable, StateMachine};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

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
/// collection. See the [module documentation](self) for what hooks may
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
    state: &'a mut S,
    version: u64,
    changes: Vec<S::Change>,
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
