//! Replicated collections, each a state machine with typed handles.
//!
//! Every collection has a [`Writer`] handle, opened on a voter, and a
//! [`Reader`] handle, opened on a learner (it never leads and never counts
//! toward a quorum); a writer reads like a reader. Every write returns its
//! outcome (the previous value, the element removed, whether a
//! compare-exchange stored) and the version it was applied at.

mod cell;
mod handle;
mod json;
mod kind;
mod map;
mod once;
mod priority_queue;
mod set;
mod vec;

pub use cell::{Cell, CellCommand, CellOutcome, CellQuery, CellReader, CellState};
pub(crate) use handle::Executor;
pub use handle::{Reader, View, Writer};
pub use json::Json;
pub use kind::describe;
pub use map::{Map, MapAnswer, MapChange, MapCommand, MapOutcome, MapQuery, MapReader, MapState};
pub use once::{Once, OnceQuery, OnceReader, OnceState};
pub(crate) use priority_queue::ops as priority_queue_ops;
pub use priority_queue::{
    Entry, PriorityQueue, PriorityQueueAnswer, PriorityQueueChange, PriorityQueueCommand,
    PriorityQueueOutcome, PriorityQueueQuery, PriorityQueueReader, PriorityQueueSnapshot,
    PriorityQueueState,
};
pub use set::{Set, SetAnswer, SetChange, SetCommand, SetOutcome, SetQuery, SetReader, SetState};
pub use vec::{OutOfRange, Vec, VecAnswer, VecCommand, VecOutcome, VecQuery, VecReader, VecState};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a replicated value must be: encodable, comparable, shareable.
pub trait Value: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static> Value for T {}

/// What a map key or set element must be: a [`Value`] with a total order
/// (which fixes the iteration order on every replica).
pub trait Key: Value + Ord {}
impl<T: Value + Ord> Key for T {}

/// A write's outcome and the version (log index) it was applied at.
pub type Written<O> = Result<(O, u64), crate::error::ExecuteError>;
