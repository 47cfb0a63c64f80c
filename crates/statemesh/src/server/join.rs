//! Reaching the cluster with the secret: to join it, to check that a
//! restart's `--join` names this node's cluster, and to ask this node
//! itself.

use super::data_dir;
use super::options::{ServerError, ServerOptions};
use crate::types::ClusterId;
use statemesh_client::{Client, ClientError, ClientOptions};
use std::time::Duration;

/// A client of the members `options.join` names, presenting the cluster
/// secret.
pub(super) async fn join_client(
    options: &ServerOptions,
    timeout: Duration,
) -> Result<Client, ClientError> {
    secret_client(options, &options.join, timeout).await
}

/// A client of this node itself, presenting the cluster secret.
pub(super) async fn own_client(
    options: &ServerOptions,
    address: &str,
) -> Result<Client, ClientError> {
    secret_client(options, &[address.to_owned()], Duration::from_secs(5)).await
}

pub(super) async fn secret_client(
    options: &ServerOptions,
    addresses: &[String],
    timeout: Duration,
) -> Result<Client, ClientError> {
    let n = &options.network;
    let mut client_options = ClientOptions::new(n.cluster.clone(), n.security.clone());
    client_options.timeout = timeout;
    let secret = String::from_utf8_lossy(n.auth.secret().as_bytes()).into_owned();
    Client::connect(addresses, secret, client_options).await
}

/// Before a node that already belongs to cluster `ours` opens anything:
/// refuses a `join` that names another cluster. A restart with the flags
/// of the first start is normal; a `join` through members that cannot be
/// reached now is let pass (with a warning), since a member that has
/// already joined does not need them.
pub(super) async fn check_join(
    options: &ServerOptions,
    data: &data_dir::DataDir,
    ours: ClusterId,
) -> Result<(), ServerError> {
    match join_client(options, Duration::from_secs(2)).await {
        Ok(client) => match client.cluster_id().await {
            Ok(Some(theirs)) if theirs != ours => Err(ServerError::OtherCluster {
                path: data.path().to_path_buf(),
                ours,
                address: client.address().await,
                theirs,
            }),
            _ => Ok(()),
        },
        Err(ClientError::Connection { address, error }) if error.is_permanent() => {
            Err(ClientError::Connection { address, error }.into())
        }
        Err(e) => {
            tracing::warn!(
                "cannot check that --join names this node's cluster ({e}): resuming from the \
                 data directory"
            );
            Ok(())
        }
    }
}
