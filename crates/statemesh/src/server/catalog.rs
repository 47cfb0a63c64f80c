//! Which collections exist: opening (and creating) one for a client,
//! listing them, dropping one, and what each node does when one is
//! dropped.
//!
//! The `_cluster` group records every collection (with a random
//! incarnation that names its group) and, once dropped, its group's id.
//! Each node deletes a dropped group's files when it learns of the drop,
//! even if it was down when it happened; a collection made again under
//! the same name is another group, so nothing of the old one comes back.

use super::access::{refusal, require, require_admin, same_identity, user_collection};
use super::cluster_state::{ClusterCommand, ClusterOutcome};
use super::{SYSTEM_GROUP, ServerInner, lock};
use crate::group::Identity;
use crate::network::{Access, Grant};
use crate::node::tree_bytes;
use statemesh_client::Refusal;
use statemesh_client::protocol::{ClientReply, CollectionInfo, OpenMode, Response};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long a node waits for a change of the cluster's record it made to
/// reach its own copy.
const REACH: Duration = Duration::from_secs(10);

/// What a listing keeps of its time to measure each collection's disk
/// and send the answer, after asking the leader.
const LIST_MARGIN: Duration = Duration::from_millis(200);

/// Opens `collection` for a client, creating it as `mode` allows.
pub(super) async fn open(
    inner: &ServerInner,
    grant: &Grant,
    collection: String,
    signature: String,
    identity: Identity,
    mode: OpenMode,
) -> Response {
    user_collection(&collection)?;
    let existing = inner.collection(&collection).await;
    let created = match existing {
        Some(c) if mode == OpenMode::New => {
            require(grant, &collection, Access::Read)?;
            return Err(Refusal::Exists {
                collection,
                signature: c.signature,
            });
        }
        Some(c) if c.signature != signature => {
            return Err(Refusal::Mismatch {
                collection,
                ours: signature,
                theirs: c.signature,
            });
        }
        Some(_) => {
            require(grant, &collection, Access::Read)?;
            false
        }
        None if mode == OpenMode::Existing || !grant.allows(&collection, Access::Write) => {
            if mode == OpenMode::New {
                require(grant, &collection, Access::Write)?;
            }
            require(grant, &collection, Access::Read)?;
            return Err(Refusal::NoSuchCollection(collection));
        }
        None => create(inner, &collection, &signature, mode).await?,
    };
    let h = inner.hosted(&collection).await?;
    same_identity(&*h, &collection, identity)?;
    Ok(ClientReply::Opened { created })
}

/// Records a new collection; whether this request made it (another may
/// have made it first).
async fn create(
    inner: &ServerInner,
    collection: &str,
    signature: &str,
    mode: OpenMode,
) -> Result<bool, Refusal> {
    if !inner.kinds.knows(signature) {
        return Err(Refusal::UnknownKind(signature.to_owned()));
    }
    // Zero is the incarnation of groups made without a cluster record.
    let incarnation = getrandom::u64()
        .map_err(|e| Refusal::Unavailable(format!("no randomness: {e}")))?
        .max(1);
    let (outcome, version) = inner
        .system
        .execute(ClusterCommand::Create {
            name: collection.to_owned(),
            signature: signature.to_owned(),
            creator: inner.id,
            incarnation,
        })
        .await
        .map_err(refusal)?;
    if let ClusterOutcome::Created(Err(theirs)) = outcome {
        return Err(Refusal::Mismatch {
            collection: collection.to_owned(),
            ours: signature.to_owned(),
            theirs,
        });
    }
    reach(inner, version, collection).await?;
    let ours = inner.system.read_local(|s| {
        s.collections
            .get(collection)
            .is_some_and(|c| c.incarnation == incarnation)
    });
    if !ours && mode == OpenMode::New {
        return Err(Refusal::Exists {
            collection: collection.to_owned(),
            signature: signature.to_owned(),
        });
    }
    Ok(ours)
}

/// Waits until this node's copy of the cluster's record has `version`
/// (applied on the leader; this replica may be behind).
async fn reach(inner: &ServerInner, version: u64, collection: &str) -> Result<(), Refusal> {
    let mut when = inner.system.when();
    tokio::time::timeout(REACH, when.reaches(version))
        .await
        .map_err(|_| {
            Refusal::Unavailable(format!(
                "the change to {collection:?} was made but has not reached this node"
            ))
        })
}

/// The collections `grant` may read, by name, answered by `deadline`:
/// without a leader to ask, as this node knows them.
pub(super) async fn list(inner: &ServerInner, grant: &Grant, deadline: Instant) -> Response {
    // Leaves time to measure the disk and answer.
    let ask_until = deadline.checked_sub(LIST_MARGIN).unwrap_or(deadline);
    let all: Vec<_> = inner
        .fresh_until(ask_until, |s| {
            s.collections
                .iter()
                .filter(|(name, _)| grant.allows(name, Access::Read))
                .map(|(name, c)| (name.clone(), c.clone()))
                .collect()
        })
        .await;
    let hosted = inner.hosted.lock().await.clone();
    let mut out = Vec::with_capacity(all.len());
    for (name, c) in all {
        let dirs = inner.node.group_dirs(c.group_id(&name));
        let disk_bytes =
            tokio::task::spawn_blocking(move || dirs.iter().map(|d| tree_bytes(d)).sum())
                .await
                .unwrap_or(0);
        let h = hosted.get(&name);
        let status = h.map(|h| h.status());
        out.push(CollectionInfo {
            version: status.as_ref().map(|s| s.applied),
            leader: status.and_then(|s| s.leader),
            entries: h.and_then(|h| h.entries()),
            disk_bytes,
            signature: c.signature,
            name,
        });
    }
    Ok(ClientReply::Collections(out))
}

/// Drops `collection` from the cluster, and at once from this node.
pub(super) async fn drop_collection(
    inner: &ServerInner,
    grant: &Grant,
    collection: String,
) -> Response {
    user_collection(&collection)?;
    require_admin(grant)?;
    let (outcome, version) = inner
        .system
        .execute(ClusterCommand::Drop {
            name: collection.clone(),
        })
        .await
        .map_err(refusal)?;
    if let ClusterOutcome::Dropped(None) = outcome {
        return Err(Refusal::NoSuchCollection(collection));
    }
    reach(inner, version, &collection).await?;
    sweep(inner).await;
    Ok(ClientReply::Done)
}

/// Stops and deletes what this node keeps of dropped collections: hosted
/// groups the record no longer has, and the files of every group recorded
/// as dropped that are still here (from a drop while the node was down).
pub(super) async fn sweep(inner: &ServerInner) {
    let mut swept = inner.swept.lock().await;
    let (names, dropped): (HashSet<String>, Vec<_>) = inner.system.read_local(|s| {
        (
            s.collections.keys().cloned().collect(),
            s.dropped.iter().copied().collect(),
        )
    });
    let gone: Vec<_> = {
        let mut hosted = inner.hosted.lock().await;
        let gone: Vec<String> = hosted
            .keys()
            .filter(|n| *n != SYSTEM_GROUP && !names.contains(*n))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|n| hosted.remove(&n).map(|h| (n, h)))
            .collect()
    };
    for (name, h) in gone {
        h.mark_dropped();
        let publication = lock(&inner.publications).remove(&name);
        if let Some(p) = publication {
            tokio::task::spawn_blocking(move || p.close_dropped());
        }
        let id = h.group_id();
        std::mem::drop(h);
        match inner.node.remove_group(id).await {
            Ok(()) => tracing::info!(collection = %name, "dropped: its files are deleted"),
            Err(e) => tracing::error!(collection = %name, "dropped, but {e}"),
        }
        swept.insert(id);
    }
    for id in dropped {
        if swept.insert(id)
            && let Err(e) = inner.node.remove_group(id).await
        {
            tracing::error!(group = %id, "a dropped collection's files remain: {e}");
        }
    }
}
