//! Joining through a cluster's node: a token holder asks a node for its
//! pass, and the members are its seeds.

use super::error::MeshError;
use super::{Mesh, MeshBuilder};
use crate::catalog::Entry;
use crate::pass::{Credentials, Pass, PassVerifier};
use statemesh_client::Client;
use statemesh_client::protocol::{ClientReply, ClientRequest};
use std::time::Duration;

/// How long a pass asked for by `Mesh::through` lasts at most (a JWT's
/// own expiry shortens it).
pub(crate) const PASS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl Mesh {
    /// Settings to join the mesh of the cluster `client` is connected to,
    /// as the peer named `name`: a node issues the pass (with the streams
    /// the client's token may produce and consume, for 30 days or until
    /// the token expires if sooner) and the cluster's members are the
    /// seeds. When the pass expires, the peer's connections end: join
    /// again with a fresh token. The peer's id
    /// comes from `name` and the token's subject, so the same name joins
    /// as the same peer after a restart, and resumes its streams.
    ///
    /// # Errors
    ///
    /// [`MeshError::Client`] if no node answered or the token may not
    /// join; [`MeshError::Pass`] if what came back does not decode.
    pub async fn through(client: &Client, name: &str) -> Result<MeshBuilder, MeshError> {
        let request = ClientRequest::MeshPass {
            name: name.to_owned(),
            ttl_secs: PASS_TTL.as_secs(),
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
        let options = client.options();
        let mut builder = Mesh::builder(
            options.cluster.clone(),
            options.security.clone(),
            credentials,
        );
        for seed in seeds {
            builder = builder.seed(seed);
        }
        Ok(builder)
    }
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
