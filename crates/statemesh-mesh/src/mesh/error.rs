//! Why joining the mesh, or a stream, failed, and what a consumer's
//! stream yields besides items.

use crate::gossip::GossipError;
use crate::pass::PassError;
use crate::peer::PeerId;
use crate::stream::Missed;
use crate::stream::TypeMismatch;
use crate::wire::End;
use statemesh_client::network::ConnectionError;
use std::time::Duration;

/// Why the mesh could not be joined or a stream set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// This process's pass is not good (another cluster, expired).
    #[error("mesh pass: {0}")]
    Pass(#[from] PassError),
    /// The listen address did not bind.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    /// TLS settings that cannot work (or no certificate could be made).
    #[error("tls: {0}")]
    Tls(#[from] statemesh_client::network::TlsError),
    /// A connection to a peer failed.
    #[error("{0}")]
    Connection(#[from] ConnectionError),
    /// The peer at the other end is not admitted by this cluster's key.
    #[error("the peer at {address} is not admitted: {error}")]
    PeerPass {
        /// Its address.
        address: String,
        /// Why.
        error: PassError,
    },
    /// The gossip engine refused an operation.
    #[error(transparent)]
    Gossip(#[from] GossipError),
    /// This process already produces the stream.
    #[error("this process already produces stream {0:?}")]
    AlreadyProduced(String),
    /// This process's pass does not allow producing the stream.
    #[error("this process's pass does not allow producing stream {0:?}")]
    MayNotProduce(String),
    /// This process's pass does not allow consuming the stream.
    #[error("this process's pass does not allow consuming stream {0:?}")]
    MayNotConsume(String),
    /// The cluster did not give this process a pass.
    #[error("no mesh pass from the cluster: {0}")]
    Client(#[from] statemesh_client::ClientError),
    /// The stream is produced elsewhere as another type.
    #[error(transparent)]
    TypeMismatch(#[from] TypeMismatch),
}

/// What a consumer's stream yields besides items.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// Items of `producer` were lost before the next one from it: it
    /// dropped them from its buffer before this consumer got them (it fell
    /// behind, or was away too long), or it restarted without its buffer.
    #[error("lagged: missed {} from producer {producer}", crate::wire::describe(*missed))]
    Lagged {
        /// The producer.
        producer: PeerId,
        /// How many.
        missed: Missed,
    },
    /// A producer refused this consumer for a reason only this side can
    /// change (another item type, a pass without the stream): said once;
    /// that producer is not asked again.
    #[error("producer {producer} refused: {reason}")]
    Refused {
        /// The producer.
        producer: PeerId,
        /// Why.
        reason: End,
    },
    /// This process's mesh pass expired (this long ago): producers refuse
    /// it until it joins with a new one.
    #[error("this process's mesh pass expired {ago:?} ago: join with a new pass")]
    Expired {
        /// How long ago.
        ago: Duration,
    },
    /// An item did not decode as this consumer's type.
    #[error("an item from producer {producer} did not decode: {error}")]
    Decode {
        /// The producer.
        producer: PeerId,
        /// Why.
        error: String,
    },
}
