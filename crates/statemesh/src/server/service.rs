//! Answers clients: checks what their token allows, then reads, writes or
//! changes the cluster.

use super::ServerInner;
use super::access::{refusal, require, require_admin, same_identity, user_collection};
use super::cluster_state::{ClusterCommand, ClusterOutcome};
use super::kinds::Hosted;
use super::{catalog, subscription};
use crate::group::Consistency;
use crate::group::rpc::Stamped;
use crate::network::{Access, BoxFuture, ClientHandler, Grant, Pushes};
use statemesh_client::Refusal;
use statemesh_client::protocol::{Call, ClientReply, ClientRequest, Response};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The longest a client may ask `WaitVersion` to wait.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest any request may take (a client's time is capped to it).
const MAX_CALL: Duration = Duration::from_secs(300);
/// How long past its deadline a request may run before it is cut short.
const LAST_RESORT: Duration = Duration::from_millis(50);

pub(crate) struct Service(pub(crate) Weak<ServerInner>);

impl ClientHandler for Service {
    fn subscribe(&self, grant: Arc<Grant>, request: Vec<u8>, pushes: Pushes) -> BoxFuture<Vec<u8>> {
        let inner = self.0.upgrade();
        Box::pin(async move {
            let response: Response = match (
                inner,
                statemesh_core::decode::from_bytes::<ClientRequest>(&request),
            ) {
                (None, _) => Err(Refusal::Unavailable("the node is shutting down".into())),
                (_, Err(e)) => Err(Refusal::BadRequest(e.to_string())),
                (
                    Some(inner),
                    Ok(ClientRequest::Subscribe {
                        collection,
                        signature,
                        identity,
                        from,
                    }),
                ) => {
                    let h = async {
                        if inner.is_removed() {
                            return Err(Refusal::Removed);
                        }
                        user_collection(&collection)?;
                        require(&grant, &collection, Access::Read)?;
                        let h = matching(&inner, &collection, &signature).await?;
                        same_identity(&*h, &collection, identity)?;
                        Ok::<_, Refusal>(h)
                    }
                    .await;
                    // The subscription holds the collection, not the
                    // server, which may shut down under it.
                    drop(inner);
                    match h {
                        Ok(h) => {
                            let mut dropped = h.dropped();
                            tokio::select! {
                                served = subscription::serve(Arc::clone(&h) as _, from, pushes) => served,
                                _ = dropped.wait_for(|d| *d) => Err(Refusal::Dropped(collection)),
                            }
                        }
                        Err(refusal) => Err(refusal),
                    }
                }
                (Some(_), Ok(_)) => Err(Refusal::BadRequest(
                    "a subscribe frame carries a subscription".into(),
                )),
            };
            postcard::to_allocvec(&response).unwrap_or_default()
        })
    }

    fn handle(&self, grant: Arc<Grant>, request: Vec<u8>) -> BoxFuture<Vec<u8>> {
        let inner = self.0.upgrade();
        Box::pin(async move {
            let response: Response =
                match (inner, statemesh_core::decode::from_bytes::<Call>(&request)) {
                    (None, _) => Err(Refusal::Unavailable("the node is shutting down".into())),
                    (_, Err(e)) => Err(Refusal::BadRequest(e.to_string())),
                    (Some(inner), Ok(call)) => {
                        let wait = Duration::from_millis(call.timeout_ms).min(MAX_CALL);
                        // Whatever the request, the node answers by the time the
                        // client gave it; a write cut short may still apply.
                        let changes = call.request.changes();
                        let deadline = Instant::now() + wait;
                        let answer = answer(&inner, &grant, call.request, deadline);
                        // The request's own deadline comes first, with what it
                        // knows (no quorum, or whether a leader took it); this
                        // only stops what does not watch the deadline.
                        tokio::time::timeout(wait + LAST_RESORT, answer)
                            .await
                            .unwrap_or(Err(Refusal::Timeout {
                                maybe_applied: changes,
                            }))
                    }
                };
            // Our own reply types always encode.
            postcard::to_allocvec(&response).unwrap_or_default()
        })
    }
}

async fn answer(
    inner: &ServerInner,
    grant: &Grant,
    request: ClientRequest,
    deadline: Instant,
) -> Response {
    if inner.is_removed() && !matches!(request, ClientRequest::Status) {
        return Err(Refusal::Removed);
    }
    match request {
        ClientRequest::Status => Ok(ClientReply::Status(inner.status().await)),
        ClientRequest::Join { id, member } => {
            require_admin(grant)?;
            inner
                .system
                .execute(ClusterCommand::Join { id, member })
                .await
                .map_err(refusal)?;
            Ok(ClientReply::Done)
        }
        ClientRequest::Leave { id } => {
            require_admin(grant)?;
            let (left, _) = inner
                .system
                .execute(ClusterCommand::Leave { id })
                .await
                .map_err(refusal)?;
            match left {
                ClusterOutcome::Left(false) => Err(Refusal::NoSuchMember(id)),
                _ => Ok(ClientReply::Done),
            }
        }
        ClientRequest::Snapshot { collection } => {
            require_admin(grant)?;
            let h = inner.hosted(&collection).await?;
            h.raft()
                .trigger()
                .snapshot()
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?;
            Ok(ClientReply::Done)
        }
        ClientRequest::Open {
            collection,
            signature,
            identity,
            mode,
        } => catalog::open(inner, grant, collection, signature, identity, mode).await,
        ClientRequest::Collections => catalog::list(inner, grant, deadline).await,
        ClientRequest::Drop { collection } => {
            catalog::drop_collection(inner, grant, collection).await
        }
        ClientRequest::Execute {
            collection,
            signature,
            command,
            stamp,
        } => {
            user_collection(&collection)?;
            require(grant, &collection, Access::Write)?;
            let h = matching(inner, &collection, &signature).await?;
            let command = Stamped { stamp, command };
            let (reply, version) = h.execute(command, deadline).await.map_err(refusal)?;
            let leader = h.status().leader.filter(|&l| l != inner.id).and_then(|l| {
                inner
                    .system
                    .read_local(|s| s.members.get(&l).map(|m| m.address.clone()))
            });
            Ok(ClientReply::Executed {
                reply,
                version,
                leader,
            })
        }
        ClientRequest::Query {
            collection,
            signature,
            linearizable,
            query,
        } => {
            user_collection(&collection)?;
            require(grant, &collection, Access::Read)?;
            let h = matching(inner, &collection, &signature).await?;
            let consistency = if linearizable {
                Consistency::Linearizable
            } else {
                Consistency::Local
            };
            let (answer, version) = h.query(consistency, query, deadline).await?;
            Ok(ClientReply::Answered { answer, version })
        }
        ClientRequest::Subscribe { .. } => Err(Refusal::BadRequest(
            "a subscription comes in a subscribe frame, not a request".into(),
        )),
        ClientRequest::MeshPass {
            name,
            ttl_secs,
            certificate,
        } => super::mesh::issue(
            inner,
            grant,
            &name,
            Duration::from_secs(ttl_secs),
            certificate,
        ),
        ClientRequest::MeshPeers => super::mesh::peers(inner),
        ClientRequest::WaitVersion {
            collection,
            after,
            timeout_ms,
        } => {
            user_collection(&collection)?;
            require(grant, &collection, Access::Read)?;
            let h = inner.hosted(&collection).await?;
            let mut when = h.when();
            let wait = Duration::from_millis(timeout_ms).min(MAX_WAIT);
            let _ = tokio::time::timeout(wait, when.reaches(after.saturating_add(1))).await;
            Ok(ClientReply::Version(h.status().applied))
        }
    }
}

/// The hosted collection, if it has the signature the client expects.
async fn matching(
    inner: &ServerInner,
    collection: &str,
    signature: &str,
) -> Result<Arc<dyn Hosted>, Refusal> {
    let h = inner.hosted(collection).await?;
    if h.signature() != signature {
        return Err(Refusal::Mismatch {
            collection: collection.to_owned(),
            ours: signature.to_owned(),
            theirs: h.signature().to_owned(),
        });
    }
    Ok(h)
}
