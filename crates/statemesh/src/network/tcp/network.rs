//! [`TcpNetwork`]: binding, addresses, and calls to peers through their
//! links.

use super::accept::accept_loop;
use super::handler::ClientHandler;
use super::options::TcpOptions;
use super::shared::{Link, Outcome, Shared, lock};
use crate::network::repeats::Repeats;
use crate::network::{
    BoxFuture, Handler, Network, NetworkError, connection::CallError, reachability::Reachability,
};
use crate::types::{ClusterId, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A node's place on the network: it listens for peers and clients, and
/// keeps one connection to each peer it calls, shared by all its groups'
/// requests, reconnecting with backoff when one breaks.
///
/// Peers are found by the addresses given to [`TcpNetwork::set_address`].
pub struct TcpNetwork {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for TcpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpNetwork")
            .field("local_addr", &self.local_addr)
            .field("cluster", &self.shared.options.cluster)
            .finish_non_exhaustive()
    }
}

impl Drop for TcpNetwork {
    fn drop(&mut self) {
        // Aborting the accept loop drops its set of sessions, which aborts
        // them all.
        self.accept.abort();
    }
}

impl TcpNetwork {
    /// Listens on `address` (`host:port`; port 0 picks a free one).
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn bind(address: &str, options: TcpOptions) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind(address).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            cluster_id: Mutex::new(None),
            local: Mutex::new(None),
            clients: Mutex::new(None),
            mesh: Mutex::new(None),
            addresses: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            repeats: Repeats::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Arc::new(Self {
            shared,
            accept,
            local_addr,
        }))
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reaches `node` at `address` (`host:port`) from now on; a connection
    /// to an older address is closed.
    pub fn set_address(&self, node: NodeId, address: impl Into<String>) {
        let address = address.into();
        let old = lock(&self.shared.addresses).insert(node, address.clone());
        if old.as_ref() != Some(&address) {
            lock(&self.shared.links).remove(&node);
        }
    }

    /// Belongs to cluster `id` from now on: a node of another cluster is
    /// refused in the handshake, either way round, and clients learn it.
    /// Until it is set (a node that has not joined yet), any is accepted.
    pub fn set_cluster_id(&self, id: ClusterId) {
        *lock(&self.shared.cluster_id) = Some(id);
    }

    /// The cluster's id, if set.
    #[must_use]
    pub fn cluster_id(&self) -> Option<ClusterId> {
        *lock(&self.shared.cluster_id)
    }

    /// The address `node` is reached at, if known.
    #[must_use]
    pub fn address(&self, node: NodeId) -> Option<String> {
        lock(&self.shared.addresses).get(&node).cloned()
    }

    /// Stops listening and closes every connection, accepted or made.
    /// Calls fail as unreachable from then on.
    pub fn close(&self) {
        self.accept.abort();
        *lock(&self.shared.local) = None;
        *lock(&self.shared.clients) = None;
        *lock(&self.shared.mesh) = None;
        lock(&self.shared.addresses).clear();
        lock(&self.shared.links).clear();
    }

    /// Hands client requests to `handler` from now on. Until then clients
    /// are refused at the handshake.
    pub fn serve_clients(&self, handler: Arc<dyn ClientHandler>) {
        *lock(&self.shared.clients) = Some(handler);
    }

    /// Hands the connections of mesh peers to `mesh` from now on (the
    /// node's mesh shares its port). Until then they are told the node is
    /// not ready.
    pub fn serve_mesh(&self, mesh: statemesh_mesh::Mesh) {
        *lock(&self.shared.mesh) = Some(mesh);
    }
}

impl Network for TcpNetwork {
    fn serve(&self, node: NodeId, handler: Arc<dyn Handler>) {
        *lock(&self.shared.local) = Some((node, handler));
    }

    fn stop(&self, node: NodeId) {
        let mut local = lock(&self.shared.local);
        if local.as_ref().is_some_and(|(id, _)| *id == node) {
            *local = None;
        }
    }

    fn call(
        &self,
        from: NodeId,
        to: NodeId,
        request: Vec<u8>,
    ) -> BoxFuture<Result<Vec<u8>, NetworkError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let local = lock(&shared.local).clone();
            if let Some((id, handler)) = local
                && id == to
            {
                return Ok(handler.handle(from, request).await);
            }
            let link = Arc::clone(lock(&shared.links).entry(to).or_insert_with(|| {
                Arc::new(Link {
                    peer: to,
                    current: Mutex::new(None),
                    state: tokio::sync::Mutex::default(),
                    reachability: Reachability::new(to),
                })
            }));
            // A call the caller stops waiting for counts as unanswered.
            let mut outcome = Outcome {
                link: &link,
                shared: &shared,
                settled: false,
            };
            let connection = match link.connect(&shared, from).await {
                Ok(c) => c,
                Err(why) => {
                    outcome.failed(&why);
                    return Err(NetworkError::Unreachable(to));
                }
            };
            match connection.call(request).await {
                Ok(reply) => {
                    outcome.answered();
                    Ok(reply)
                }
                Err(CallError::NotSent) => {
                    outcome.failed(&"the connection closed");
                    Err(NetworkError::Unreachable(to))
                }
                Err(CallError::Lost) => {
                    outcome.failed(&"the connection closed before the answer came");
                    Err(NetworkError::ReplyLost(to))
                }
            }
        })
    }
}
