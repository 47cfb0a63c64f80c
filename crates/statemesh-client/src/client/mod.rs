//! A client of a cluster: typed collection handles over the network, for a
//! process that holds no replica.

mod call;
mod catalog;
mod error;
mod remote;
mod report;

pub use crate::protocol::{ClusterStatus, CollectionInfo, Refusal, Resync};
pub(crate) use call::Attempt;
pub use call::{Client, ClientOptions};
pub use error::ClientError;
pub(crate) use error::unexpected;
pub use remote::{
    Remote, RemoteCell, RemoteMap, RemoteOnce, RemotePriorityQueue, RemoteSet, RemoteVec,
    RemoteWritten,
};
pub use report::{ClusterReport, MemberReport};
