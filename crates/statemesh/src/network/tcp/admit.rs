//! Admission: a pure check of a hello against the node's cluster, secret
//! and token, kept apart from the I/O of the handshake around it.

use super::handler::ClientHandler;
use super::shared::{Shared, lock};
use crate::network::{
    ConnectionError, Handler,
    auth::{AuthError, Grant},
    handshake::{self, Hello, Peer},
};
use crate::types::NodeId;
use std::sync::Arc;

/// Who is at the other end of an accepted connection.
pub(super) enum Session {
    Node(NodeId, Arc<dyn Handler>),
    Client(Arc<Grant>, Arc<dyn ClientHandler>),
}

/// Decides whether the introduced side may stay; returns what it is and
/// this node's id.
pub(super) fn admit(shared: &Shared, payload: &[u8]) -> Result<(Session, NodeId), ConnectionError> {
    let hello: Hello = handshake::decode(payload)?;
    let o = &shared.options;
    if hello.cluster != o.cluster {
        return Err(ConnectionError::Cluster {
            ours: o.cluster.clone(),
            theirs: hello.cluster,
        });
    }
    let local = lock(&shared.local).clone();
    let Some((node, handler)) = local else {
        return Err(ConnectionError::NotReady("this node is starting".into()));
    };
    match hello.peer {
        Peer::Node {
            id,
            secret,
            cluster_id,
        } => {
            if !o.auth.secret().matches(&secret) {
                return Err(ConnectionError::Auth(AuthError::Invalid));
            }
            if let (Some(ours), Some(theirs)) = (*lock(&shared.cluster_id), cluster_id)
                && ours != theirs
            {
                return Err(ConnectionError::ClusterId { ours, theirs });
            }
            Ok((Session::Node(id, handler), node))
        }
        Peer::Client { token } => {
            let grant = o.auth.check(&token).map_err(ConnectionError::Auth)?;
            let clients = lock(&shared.clients).clone().ok_or_else(|| {
                ConnectionError::NotReady("this node does not serve clients yet".into())
            })?;
            Ok((Session::Client(Arc::new(grant), clients), node))
        }
        // Served by the node's mesh once it runs (see `accept::session`).
        Peer::Mesh { .. } => Err(ConnectionError::NotReady(
            "this node has not joined the mesh yet".into(),
        )),
    }
}
