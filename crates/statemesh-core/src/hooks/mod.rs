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

mod hook;
mod hooked;

pub use hook::{Edit, HookError, Hooks};
pub use hooked::{Event, Hooked};
