//! What a client operation can fail with.

use crate::network::ConnectionError;
use crate::protocol::{ClientReply, Refusal};
use std::time::Duration;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No node of the cluster could be reached in time.
    #[error("no node of the cluster answered within {timeout:?} (last: {last})")]
    Unreachable {
        /// How long it tried.
        timeout: Duration,
        /// The last error seen.
        last: String,
    },
    /// The members reached could not reach a majority of the collection's
    /// voters until the deadline: nothing can be committed or confirmed.
    /// A command was not applied.
    #[error("no quorum: {reachable} of {voters} voters reachable (gave up after {timeout:?})")]
    NoQuorum {
        /// Voters the last member asked could reach (itself included).
        reachable: usize,
        /// The collection's voters.
        voters: usize,
        /// How long it tried.
        timeout: Duration,
    },
    /// The deadline passed before the outcome was known. If
    /// `maybe_applied`, a leader had taken the command: it may still be
    /// applied, once; otherwise it was not applied.
    #[error(
        "no outcome within {timeout:?} ({}; last: {last})",
        if *maybe_applied { "it may have been applied" } else { "it was not applied" }
    )]
    Timeout {
        /// The deadline the operation had.
        timeout: Duration,
        /// Whether a command may have been applied.
        maybe_applied: bool,
        /// What the last try came to.
        last: String,
    },
    /// No member could be connected to, and trying again will not help:
    /// a member refused the token, cluster name or protocol version, the
    /// TLS settings do not match the node's, or the address is wrong.
    #[error("{address}: {error}")]
    Connection {
        /// The member's address.
        address: String,
        /// What went wrong ([`ConnectionError::is_permanent`]).
        error: ConnectionError,
    },
    /// The node refused the request.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A command's outcome is unknown and cannot be learned: its session
    /// expired (it was retried for longer than a session lives) before the
    /// outcome was known, or the member shut down while it was in flight.
    #[error("the outcome is unknown: {0}")]
    Indeterminate(String),
    /// An answer could not be decoded (a node of another build?).
    #[error("could not decode the answer: {0}")]
    Decode(String),
}

/// The error for an answer of another kind than the request asks for.
pub(crate) fn unexpected(reply: &ClientReply) -> ClientError {
    ClientError::Decode(format!("an answer of the wrong kind: {reply:?}"))
}
