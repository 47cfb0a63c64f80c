//! statemesh's collections as pure state machines, with no I/O: what every
//! other statemesh crate agrees on.
//!
//! - [`StateMachine`]: a deterministic state machine, what a group
//!   replicates; [`Mirrored`] ones can be followed by diffs, [`Queryable`]
//!   ones answer remote reads.
//! - [`collections`]: the states of `Cell`, `Once`, `Map`, `Set`, `Vec` and
//!   `PriorityQueue`, their commands, changes and outcomes, and each write
//!   operation written once over an [`Executor`](collections::Executor):
//!   the in-process writer of `statemesh` and the remote handle of
//!   `statemesh-client` both run them.
//! - [`hooks`]: collections that only deterministic, user-written event
//!   handlers change.
//! - [`GroupId`] and [`Identity`]: what names a replicated collection and
//!   its type everywhere; [`NodeId`] and [`ClusterId`].
//!
//! Applying a command is a plain function call:
//!
//! ```
//! use statemesh_core::StateMachine;
//! use statemesh_core::collections::{MapCommand, MapOutcome, MapState};
//!
//! let mut map = MapState::<String, u64>::default();
//! let outcome = map.apply(MapCommand::Insert("a".into(), 1), 1);
//! assert!(matches!(outcome, MapOutcome::Previous(None)));
//! assert_eq!(map.as_map().get("a"), Some(&1));
//! ```
#![forbid(unsafe_code)]

pub mod collections;
pub mod decode;
pub mod hooks;
mod identity;
pub mod pattern;
pub mod session;
mod state_machine;
pub mod types;

pub use identity::{GroupId, Identity};

pub use state_machine::{Changes, Mirrored, Queryable, StateMachine, type_name};
pub use types::{ClusterId, NodeId};
