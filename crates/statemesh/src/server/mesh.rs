//! The node's place in the mesh: it shares the node's port, its seeds are
//! the cluster's other members, and it issues passes to token holders.

use super::inner::{NodeMesh, ServerInner, lock};
use super::options::ServerError;
use crate::network::{Grant, Security};
use statemesh_client::Refusal;
use statemesh_client::protocol::ClientReply;
use statemesh_mesh::Mesh;
use statemesh_mesh::catalog::{Entry, Liveness};
use statemesh_mesh::pass::{Credentials, PassIssuer};
use statemesh_mesh::peer::PeerId;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a node's own pass lasts: it issues itself a new one at each
/// start, and a pass that expired would end its mesh connections.
const NODE_PASS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Joins the mesh once the node knows its cluster's id (every node derives
/// the same signing key from the cluster secret and that id).
pub(super) async fn start(inner: &ServerInner) -> Result<NodeMesh, ServerError> {
    let Some(cluster_id) = inner.net.cluster_id() else {
        return Err(ServerError::Mesh(statemesh_mesh::MeshError::Config(
            "the node has no cluster id yet".into(),
        )));
    };
    let options = &inner.options.network;
    let issuer = PassIssuer::new(options.auth.secret().as_bytes(), cluster_id);
    let everything = || vec!["*".to_owned()];
    // Over TLS, the node's mesh presents the node's own certificate.
    let certificate = match &options.security {
        Security::Tls(tls) => tls.identity().map(|i| statemesh_mesh::identity::hash(i)),
        Security::Plaintext => None,
    };
    let credentials = Credentials {
        pass: issuer.issue_bound(
            PeerId::from_name(&format!("node {}", inner.id)),
            NODE_PASS,
            everything(),
            everything(),
            certificate,
        ),
        verifier: issuer.verifier(),
    };
    let mut builder = Mesh::builder(
        options.cluster.clone(),
        options.security.clone(),
        credentials,
    )
    .without_listener()
    .advertise(inner.address.clone())
    .node(inner.id)
    .limits(options.limits);
    for tag in &inner.options.tags {
        builder = builder.tag(tag.clone());
    }
    for seed in seeds(inner) {
        builder = builder.seed(seed);
    }
    let mesh = builder.start().await?;
    inner.net.serve_mesh(mesh.clone());
    Ok(NodeMesh { mesh, issuer })
}

/// Points the node's mesh at the members as they now are.
pub(super) fn refresh_seeds(inner: &ServerInner) {
    if let Some(node) = &*lock(&inner.mesh) {
        node.mesh.set_seeds(seeds(inner));
    }
}

/// The members' addresses: every node's mesh listens on its node's port.
pub(super) fn seeds(inner: &ServerInner) -> Vec<String> {
    inner.system.read_local(|s| {
        s.members
            .values()
            .map(|m| m.address.clone())
            .filter(|a| *a != inner.address)
            .collect()
    })
}

/// The node's mesh, once it has joined (after entering its cluster).
fn joined(inner: &ServerInner) -> Result<Arc<NodeMesh>, Refusal> {
    lock(&inner.mesh)
        .clone()
        .ok_or_else(|| Refusal::Unavailable("this node has not joined the mesh yet".into()))
}

/// The node's catalog, itself first (as alive: it answers).
pub(super) fn peers(inner: &ServerInner) -> Result<ClientReply, Refusal> {
    let node = joined(inner)?;
    let catalog = node.mesh.catalog();
    let mut entries = vec![Entry {
        info: node.mesh.me(),
        liveness: Liveness::Alive,
    }];
    entries.extend(catalog.iter().cloned());
    postcard::to_allocvec(&entries)
        .map(ClientReply::MeshPeers)
        .map_err(|e| Refusal::Unavailable(format!("encoding the catalog: {e}")))
}

/// A pass for the token holder's peer `name`: the streams its token may
/// produce and consume, until it expires or `ttl` passes, whichever is
/// first. The peer's id is made of the token's subject and `name`, so one
/// holder cannot take another's (or a node's) id. Over TLS the pass
/// names `certificate`, the one the peer will present.
pub(super) fn issue(
    inner: &ServerInner,
    grant: &Grant,
    name: &str,
    ttl: Duration,
    certificate: Option<[u8; 32]>,
) -> Result<ClientReply, Refusal> {
    let node = joined(inner)?;
    if name.is_empty() || ttl.is_zero() {
        return Err(Refusal::BadRequest(
            "a mesh pass needs a peer name and a lifetime".into(),
        ));
    }
    let left = grant.expires.map_or(ttl, |e| {
        e.duration_since(SystemTime::now()).unwrap_or_default()
    });
    let peer = PeerId::from_name(&format!("{}/{name}", grant.subject));
    let pass = node.issuer.issue_bound(
        peer,
        ttl.min(left),
        grant.produce.clone(),
        grant.consume.clone(),
        certificate,
    );
    let encode = |e: postcard::Error| Refusal::Unavailable(format!("encoding the pass: {e}"));
    let mut seeds = seeds(inner);
    seeds.push(inner.address.clone());
    Ok(ClientReply::MeshPass {
        pass: postcard::to_allocvec(&pass).map_err(encode)?,
        verifier: postcard::to_allocvec(&node.issuer.verifier()).map_err(encode)?,
        seeds,
    })
}
