//! Replicated collections, each a state machine with typed handles.
//!
//! Every collection has a writer handle, opened on a voter, and a read-only
//! handle, opened on a learner (it never leads and never counts toward a
//! quorum). Every write returns its outcome (the previous value, whether a
//! compare-exchange succeeded) and the version it was applied at.

mod cell;

pub use cell::{Cell, CellCommand, CellOutcome, CellReader, CellState, Value, Written};
