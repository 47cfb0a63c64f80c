//! The settings a TCP network is made with.

use crate::network::{Limits, Security, auth::Authenticator};

/// What a [`TcpNetwork`](super::TcpNetwork) needs to know.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// The cluster's name: a node or client that names another cluster in
    /// its handshake is refused.
    pub cluster: String,
    /// TLS (the default) or plaintext.
    pub security: Security,
    /// The cluster secret this node presents to peers and checks, and the
    /// key of client JWTs.
    pub auth: Authenticator,
    /// Frame size, timeouts and concurrency caps.
    pub limits: Limits,
}

impl TcpOptions {
    /// Options for cluster `cluster` with default [`Limits`].
    #[must_use]
    pub fn new(cluster: impl Into<String>, security: Security, auth: Authenticator) -> Self {
        Self {
            cluster: cluster.into(),
            security,
            auth,
            limits: Limits::default(),
        }
    }
}
