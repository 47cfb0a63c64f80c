//! Why joining the mesh, or producing to it, failed.

use crate::gossip::GossipError;
use crate::pass::PassError;
use crate::stream::TypeMismatch;
use statemesh_client::network::ConnectionError;

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
