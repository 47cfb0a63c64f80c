//! Joining through a cluster's node: a token holder asks a node for its
//! pass, and the members are its seeds.

use super::error::MeshError;
use crate::catalog::Entry;
use crate::pass::{Credentials, Pass, PassVerifier};
use statemesh_client::Client;
use statemesh_client::protocol::{ClientReply, ClientRequest};
use std::time::Duration;

/// How long a pass asked for by `Mesh::through` lasts at most (a JWT's
/// own expiry shortens it).
pub(crate) const PASS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A pass for the peer named `name` from the node `client` is connected
/// to (see `Mesh::through`), and the members' addresses as seeds.
/// Over TLS, the pass names `certificate` (see `crate::identity`).
pub(super) async fn pass(
    client: &Client,
    name: &str,
    certificate: Option<[u8; 32]>,
) -> Result<(Credentials, Vec<String>), MeshError> {
    let request = ClientRequest::MeshPass {
        name: name.to_owned(),
        ttl_secs: PASS_TTL.as_secs(),
        certificate,
    };
    let ClientReply::MeshPass {
        pass,
        verifier,
        seeds,
    } = client.call(&request).await?
    else {
        return Err(MeshError::Config(
            "the node answered a pass request with something else".into(),
        ));
    };
    let malformed = |e: postcard::Error| crate::pass::PassError::Malformed(e.to_string());
    let credentials = Credentials {
        pass: statemesh_core::decode::from_bytes::<Pass>(&pass).map_err(malformed)?,
        verifier: statemesh_core::decode::from_bytes::<PassVerifier>(&verifier)
            .map_err(malformed)?,
    };
    Ok((credentials, seeds))
}

/// The mesh's peers as the node `client` is connected to knows them, that
/// node first: what `statemesh peers` shows. Needs no pass and no
/// listener.
///
/// # Errors
///
/// [`MeshError::Client`] if no node answered; [`MeshError::Config`] if
/// its answer does not decode.
pub async fn catalog_through(client: &Client) -> Result<Vec<Entry>, MeshError> {
    match client.call(&ClientRequest::MeshPeers).await? {
        ClientReply::MeshPeers(bytes) => statemesh_core::decode::from_bytes(&bytes)
            .map_err(|e| MeshError::Config(format!("a catalog that does not decode: {e}"))),
        _ => Err(MeshError::Config(
            "the node answered a catalog request with something else".into(),
        )),
    }
}
