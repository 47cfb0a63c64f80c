//! What a mirror's receivers are told of each step of its state.

use crate::client::Resync;

/// One step of a mirror's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Update<C> {
    /// The whole state was replaced by a node's, at `version`.
    Reset {
        /// The version of the state received.
        version: u64,
        /// Why the whole state was sent.
        reason: Resync,
    },
    /// The changes that took the mirror from `from` to `to`, in order.
    Changes {
        /// The version before.
        from: u64,
        /// The version after.
        to: u64,
        /// What changed (empty: the version passed with no change).
        changes: Vec<C>,
    },
}
