//! Replicated collections, each a state machine with typed handles.
//!
//! Every collection has a [`Writer`] handle, opened on a voter, and a
//! [`Reader`] handle, opened on a learner (it never leads and never counts
//! toward a quorum); a writer reads like a reader. Every write returns its
//! outcome (the previous value, the element removed, whether a
//! compare-exchange stored) and the version it was applied at.

mod cell;
mod handle;
mod map;
mod once;
mod priority_queue;
mod set;
mod vec;

pub use cell::{Cell, CellReader};
pub use handle::{Reader, Writer, Written};
pub use map::{Map, MapReader};
pub use once::{Once, OnceReader};
pub use priority_queue::{PriorityQueue, PriorityQueueReader};
pub use set::{Set, SetReader};
pub use statemesh_client::View;
pub use statemesh_core::collections::*;
pub use vec::{Vec, VecReader};
