//! A group: one Raft instance, its log and its state machine.
//!
//! The handle ([`Group`]) is split by what a call needs: reads and status
//! on this replica (`handle`), writes (`execute`), linearizable reads
//! (`query`), reaching other members (`forward`); `endpoint` answers
//! them. This file only declares modules and re-exports.

mod endpoint;
mod execute;
mod forward;
/// What the crate's fuzzing hooks reach inside a group (see
/// `crate::fuzzing`).
pub(crate) mod fuzzing;
mod handle;
mod history;
mod lease;
mod proposer;
mod query;
mod raft_network;
pub(crate) mod rpc;
mod sessions;
mod snapshot_file;
mod snapshot_stream;
mod store;
mod when;

#[cfg(test)]
mod exactly_once_tests;

pub use handle::Group;
pub use history::HistoryLimits;
pub use snapshot_stream::SnapshotStream;
pub(crate) use statemesh_client::protocol::millis;
pub use statemesh_client::{Consistency, GroupStatus, Role, Versions};
pub use statemesh_core::{GroupId, Identity};
pub use when::When;

pub(crate) use endpoint::Endpoint;
pub(crate) use handle::Redirect;
pub(crate) use history::{History, Item, Recorder, Recording, Since, merge as merge_history};
pub(crate) use lease::{Contacts, Lease};
pub(crate) use proposer::Proposer;
pub(crate) use raft_network::GroupNetwork;
pub(crate) use statemesh_client::Shared;
pub(crate) use statemesh_client::VersionSender;
pub(crate) use store::{LoadError, SnapshotCloser, Store};
