//! The cluster's own replicated state: who the members are, where they
//! listen, and which collections exist.

use crate::group::GroupId;
use crate::types::NodeId;
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use statemesh_client::Member;
use statemesh_core::{Changes, Mirrored, Queryable, StateMachine};

/// The state of the `_cluster` group.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ClusterState {
    pub(crate) members: OrdMap<NodeId, Member>,
    pub(crate) collections: OrdMap<String, Collection>,
    /// The groups of dropped collections: a node deletes their files when
    /// it learns of the drop, even if it was down when it happened. Only
    /// ever added to (16 bytes a drop), so a node whose copy of this state
    /// lags behind deletes too little, never too much.
    pub(crate) dropped: OrdSet<GroupId>,
}

/// A collection, as the cluster records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Collection {
    /// Its state machine's signature.
    pub(crate) signature: String,
    /// The node that created it: the only one that may initialize its
    /// group (with itself as the one voter; the policy adds the others),
    /// so two nodes never start the same group with different voters.
    pub(crate) creator: NodeId,
    /// Random, chosen by the creator: names this incarnation's group (see
    /// [`GroupId::incarnation`]).
    pub(crate) incarnation: u64,
}

impl Collection {
    /// The id of the collection `name`'s group.
    pub(crate) fn group_id(&self, name: &str) -> GroupId {
        GroupId::incarnation(name, &self.signature, self.incarnation)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ClusterCommand {
    /// Adds a member, or changes its address or role.
    Join { id: NodeId, member: Member },
    /// Removes a member.
    Leave { id: NodeId },
    /// Records a collection; refused if the name exists with another
    /// signature.
    Create {
        name: String,
        signature: String,
        creator: NodeId,
        incarnation: u64,
    },
    /// Removes a collection; its group is recorded as dropped.
    Drop { name: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ClusterOutcome {
    Joined,
    Left(bool),
    /// `Ok(creator)`: the node that created it (this command's, if new);
    /// `Err(signature)`: the name exists with that other signature.
    Created(Result<NodeId, String>),
    /// The dropped collection (none: there was none of that name).
    Dropped(Option<Collection>),
}

/// The cluster's own group records its commands as its changes (a mirror
/// of it replays them).
impl Mirrored for ClusterState {
    type Change = ClusterCommand;

    fn apply_recording(
        &mut self,
        command: ClusterCommand,
        version: u64,
        changes: &mut Changes<ClusterCommand>,
    ) -> ClusterOutcome {
        changes.record(|| command.clone());
        self.apply(command, version)
    }

    fn apply_change(&mut self, change: ClusterCommand) {
        self.apply(change, 0);
    }
}

/// Published whole, like any state machine without its own layout.
impl statemesh_client::local::Publish for ClusterState {}

impl StateMachine for ClusterState {
    type Command = ClusterCommand;
    type Response = ClusterOutcome;
    type Snapshot = (
        OrdMap<NodeId, Member>,
        OrdMap<String, Collection>,
        OrdSet<GroupId>,
    );

    fn signature(&self) -> String {
        "statemesh::cluster/1".into()
    }

    fn apply(&mut self, command: ClusterCommand, _version: u64) -> ClusterOutcome {
        match command {
            ClusterCommand::Join { id, member } => {
                self.members.insert(id, member);
                ClusterOutcome::Joined
            }
            ClusterCommand::Leave { id } => {
                ClusterOutcome::Left(self.members.remove(&id).is_some())
            }
            ClusterCommand::Create {
                name,
                signature,
                creator,
                incarnation,
            } => ClusterOutcome::Created(match self.collections.get(&name) {
                Some(c) if c.signature != signature => Err(c.signature.clone()),
                Some(c) => Ok(c.creator),
                None => {
                    let c = Collection {
                        signature,
                        creator,
                        incarnation,
                    };
                    self.collections.insert(name, c);
                    Ok(creator)
                }
            }),
            ClusterCommand::Drop { name } => {
                let gone = self.collections.remove(&name);
                if let Some(c) = &gone {
                    self.dropped.insert(c.group_id(&name));
                }
                ClusterOutcome::Dropped(gone)
            }
        }
    }

    fn snapshot(&self) -> Self::Snapshot {
        (
            self.members.clone(),
            self.collections.clone(),
            self.dropped.clone(),
        )
    }

    fn restore(&mut self, (members, collections, dropped): Self::Snapshot) {
        self.members = members;
        self.collections = collections;
        self.dropped = dropped;
    }
}

impl Queryable for ClusterState {
    type Query = ();
    type Answer = Self::Snapshot;

    fn answer(&self, (): ()) -> Self::Snapshot {
        self.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statemesh_client::MemberRole;

    #[test]
    fn members_and_collections() {
        let mut s = ClusterState::default();
        let m = Member {
            address: "a:1".into(),
            role: MemberRole::Voter,
        };
        s.apply(
            ClusterCommand::Join {
                id: 1,
                member: m.clone(),
            },
            1,
        );
        assert_eq!(s.members.get(&1), Some(&m));
        let create = |name: &str, sig: &str, creator| ClusterCommand::Create {
            name: name.into(),
            signature: sig.into(),
            creator,
            incarnation: 42,
        };
        assert!(matches!(
            s.apply(create("x", "A", 7), 2),
            ClusterOutcome::Created(Ok(7))
        ));
        // The first creator stays the creator.
        assert!(matches!(
            s.apply(create("x", "A", 8), 3),
            ClusterOutcome::Created(Ok(7))
        ));
        assert!(matches!(
            s.apply(create("x", "B", 8), 4),
            ClusterOutcome::Created(Err(sig)) if sig == "A"
        ));
        let x = s.collections.get("x").unwrap().group_id("x");
        assert_ne!(
            x,
            GroupId::new("x", "A"),
            "an incarnation has its own group"
        );
        let drop = || ClusterCommand::Drop { name: "x".into() };
        assert!(matches!(
            s.apply(drop(), 5),
            ClusterOutcome::Dropped(Some(_))
        ));
        assert!(matches!(s.apply(drop(), 6), ClusterOutcome::Dropped(None)));
        assert!(s.dropped.contains(&x) && !s.collections.contains_key("x"));
        // Made again (by its creator, with a new incarnation): another
        // group.
        let again = ClusterCommand::Create {
            name: "x".into(),
            signature: "A".into(),
            creator: 8,
            incarnation: 43,
        };
        assert!(matches!(s.apply(again, 7), ClusterOutcome::Created(Ok(8))));
        assert_ne!(s.collections.get("x").unwrap().group_id("x"), x);
        assert!(matches!(
            s.apply(ClusterCommand::Leave { id: 1 }, 5),
            ClusterOutcome::Left(true)
        ));
        assert!(matches!(
            s.apply(ClusterCommand::Leave { id: 1 }, 6),
            ClusterOutcome::Left(false)
        ));
    }
}
