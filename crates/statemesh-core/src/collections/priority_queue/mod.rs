//! `PriorityQueue<P, K, V>`: replicated entries ordered by priority,
//! addressed by key, bounded or not.
//!
//! One module per concern: the state and its indexes, the commands (the
//! log's format), applying them, the changes mirrors receive, local
//! snapshots, remote queries, and the write operations; this file only
//! declares them and re-exports.

mod apply;
mod changes;
mod command;
pub mod ops;
mod query;
mod snapshot;
mod state;
#[cfg(test)]
mod tests;

pub use changes::PriorityQueueChange;
pub use command::{PriorityQueueCommand, PriorityQueueOutcome};
pub use query::{PriorityQueueAnswer, PriorityQueueQuery};
pub use snapshot::PriorityQueueSnapshot;
pub use state::{Entry, PriorityQueueState};
