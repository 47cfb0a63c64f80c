//! What a client may do, checked once for every request that needs it,
//! and how a failed command is told to the client.

use super::SYSTEM_GROUP;
use super::kinds::Hosted;
use crate::error::ExecuteError;
use crate::group::Identity;
use crate::network::{Access, Grant};
use statemesh_client::Refusal;

/// What the client is told of a command that failed.
pub(super) fn refusal(e: ExecuteError) -> Refusal {
    match e {
        ExecuteError::NoQuorum { reachable, voters } => Refusal::NoQuorum { reachable, voters },
        ExecuteError::Timeout { maybe_applied, .. } => Refusal::Timeout { maybe_applied },
        ExecuteError::Indeterminate(why) => Refusal::Indeterminate(why),
        ExecuteError::Shutdown => Refusal::Indeterminate("the node shut down".into()),
        e => Refusal::BadRequest(e.to_string()),
    }
}

/// Whether `grant` allows `access` to `collection`, as the refusal to send.
pub(super) fn require(grant: &Grant, collection: &str, access: Access) -> Result<(), Refusal> {
    if grant.allows(collection, access) {
        Ok(())
    } else {
        Err(Refusal::Forbidden {
            collection: collection.to_owned(),
            access: match access {
                Access::Read => "read".into(),
                Access::Write => "write".into(),
            },
        })
    }
}

/// Administration (membership, snapshots) needs write access to the
/// cluster's own group: the cluster secret, or a JWT that may write `*`.
pub(super) fn require_admin(grant: &Grant) -> Result<(), Refusal> {
    if grant.allows(SYSTEM_GROUP, Access::Write) {
        Ok(())
    } else {
        Err(Refusal::Forbidden {
            collection: SYSTEM_GROUP.to_owned(),
            access: "admin".into(),
        })
    }
}

/// Collections are named by users; names starting with `_` are the
/// cluster's.
pub(super) fn user_collection(name: &str) -> Result<(), Refusal> {
    if name.is_empty() || name.starts_with('_') {
        Err(Refusal::BadRequest(format!(
            "{name:?} is not a collection name (empty, or reserved: starts with '_')"
        )))
    } else {
        Ok(())
    }
}

/// Refuses a copy whose identity is not the collection's.
pub(super) fn same_identity(
    h: &dyn Hosted,
    collection: &str,
    ours: Identity,
) -> Result<(), Refusal> {
    if h.identity() == ours {
        Ok(())
    } else {
        Err(Refusal::Identity {
            collection: collection.to_owned(),
            ours: ours.to_hex(),
            theirs: h.identity().to_hex(),
        })
    }
}
