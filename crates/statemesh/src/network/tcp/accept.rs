//! Accepting connections: the loop, and the handshake that ends in
//! admission or a refusal the other side can read (the TLS-or-plaintext
//! sniff and the hello itself are `statemesh-client`'s `accept`, shared
//! with mesh peers).

use super::admit::admit;
use super::serve::serve_requests;
use super::shared::{Shared, lock};
use crate::network::{
    ConnectionError,
    accept::{self, Incoming},
    auth::AuthError,
    handshake::{self, Hello, Peer, Welcome},
    repeats::Say,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    accept::accept_loop(listener, "accept", |tcp, remote| {
        let shared = Arc::clone(&shared);
        async move {
            let _open = OpenConnection::new();
            if let Err(e) = session(&shared, tcp, remote).await {
                log_session_end(&shared, remote, &e);
            }
        }
    })
    .await;
}

/// Counts an accepted connection while it is open, however its task ends.
struct OpenConnection(metrics::Gauge);

impl OpenConnection {
    fn new() -> Self {
        let g = metrics::gauge!("statemesh_connections", "direction" => "in");
        g.increment(1.0);
        Self(g)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn log_session_end(shared: &Shared, remote: SocketAddr, e: &ConnectionError) {
    // A peer that closed or reset its connection, a client that gave up
    // dialing (it went to another member while this node was paused,
    // say), a port probe: nothing was refused.
    if e.is_hangup() {
        tracing::debug!(%remote, error = %e, "connection closed by the peer");
        return;
    }
    metrics::counter!("statemesh_connections_refused_total").increment(1);
    let error = e.to_string();
    match shared.repeats.note(remote.ip(), &error, Instant::now()) {
        say @ Say::Warn { .. } => {
            tracing::warn!(%remote, %error, "connection refused or closed{}", say.more());
        }
        Say::Quiet => tracing::debug!(%remote, %error, "connection refused or closed (again)"),
    }
}

/// Serves one accepted connection until it closes or misbehaves.
async fn session(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    remote: SocketAddr,
) -> Result<(), ConnectionError> {
    let limits = shared.options.limits;
    let incoming = accept::accept(tcp, &shared.options.security, limits, "node").await?;
    if let Some(mesh) = mesh_peer(shared, &incoming.hello) {
        mesh.serve(incoming, remote).await;
        return Ok(());
    }
    let Incoming {
        reader,
        mut writer,
        hello,
        ..
    } = incoming;
    let admitted = admit(shared, &hello);
    let welcome = match &admitted {
        Ok((_, node)) => Welcome::Accepted {
            node: *node,
            cluster_id: *lock(&shared.cluster_id),
        },
        Err(ConnectionError::NotReady(why)) => Welcome::NotReady(why.clone()),
        Err(ConnectionError::Auth(AuthError::Expired(ago))) => Welcome::Expired {
            ago_ms: u64::try_from(ago.as_millis()).unwrap_or(u64::MAX),
        },
        // Said from the side that reads it.
        Err(ConnectionError::Cluster { ours, theirs }) => Welcome::Refused(format!(
            "this node belongs to cluster {ours:?}, not {theirs:?}: give the cluster's name"
        )),
        Err(ConnectionError::ClusterId { ours, theirs }) => Welcome::Refused(format!(
            "this node belongs to another cluster named {:?} (id {ours}; yours is {theirs}): \
             the two were bootstrapped apart and never exchange Raft traffic",
            shared.options.cluster
        )),
        Err(e) => Welcome::Refused(e.to_string()),
    };
    accept::answer(&mut writer, &welcome).await?;
    let (session, _) = admitted?;
    serve_requests(session, reader, writer, limits).await
}

/// The node's mesh, if the hello is a mesh peer's of this cluster and the
/// mesh runs; the mesh checks the peer's pass and answers it.
fn mesh_peer(shared: &Shared, hello: &[u8]) -> Option<statemesh_mesh::Mesh> {
    let hello: Hello = handshake::decode(hello).ok()?;
    if !matches!(hello.peer, Peer::Mesh { .. }) || hello.cluster != shared.options.cluster {
        return None;
    }
    lock(&shared.mesh).clone()
}
