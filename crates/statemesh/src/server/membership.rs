//! The membership policy: what a group's leader changes next so the
//! group's voters and learners match the cluster's members.
//!
//! A pure function of what the leader sees, so every rule is tested by
//! what it returns; the server carries the answer out with openraft's
//! joint consensus (`change_membership`), one change at a time.

use crate::types::NodeId;
use statemesh_client::MemberRole;
use std::collections::{BTreeMap, BTreeSet};

/// What the leader of a group sees.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) leader: NodeId,
    pub(crate) voters: BTreeSet<NodeId>,
    pub(crate) learners: BTreeSet<NodeId>,
    /// The cluster's members and what each may do.
    pub(crate) members: BTreeMap<NodeId, MemberRole>,
    /// Nodes whose log is close behind the leader's.
    pub(crate) caught_up: BTreeSet<NodeId>,
    /// Nodes not heard from for longer than the replacement timeout.
    pub(crate) unreachable: BTreeSet<NodeId>,
    /// How many voters the cluster wants.
    pub(crate) target: usize,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start replicating to a new member, as a learner.
    AddLearner(NodeId),
    /// Make exactly these the voters (the others stay learners).
    SetVoters(BTreeSet<NodeId>),
    /// Stop replicating to these learners.
    Remove(BTreeSet<NodeId>),
}

/// The next change, if any, in order of urgency: admit new members, drop
/// voters that left or became readers, drop learners that left, replace a
/// voter that is unreachable by a caught-up learner, grow toward the
/// target. Choices go by lowest node id, so the plan is deterministic.
pub(crate) fn plan(v: &View) -> Option<Action> {
    if let Some(&new) = v
        .members
        .keys()
        .find(|id| !v.voters.contains(id) && !v.learners.contains(id))
    {
        return Some(Action::AddLearner(new));
    }
    let may_vote = |id: &NodeId| v.members.get(id) == Some(&MemberRole::Voter);
    let keep: BTreeSet<NodeId> = v.voters.iter().copied().filter(may_vote).collect();
    if keep.len() < v.voters.len() && !keep.is_empty() {
        return Some(Action::SetVoters(keep));
    }
    let gone: BTreeSet<NodeId> = v
        .learners
        .iter()
        .copied()
        .filter(|id| !v.members.contains_key(id))
        .collect();
    if !gone.is_empty() {
        return Some(Action::Remove(gone));
    }
    let candidate = v
        .learners
        .iter()
        .copied()
        .find(|id| may_vote(id) && v.caught_up.contains(id) && !v.unreachable.contains(id));
    let candidate = candidate?;
    if let Some(&dead) = v
        .voters
        .iter()
        .find(|&&id| id != v.leader && v.unreachable.contains(&id))
    {
        let mut voters = v.voters.clone();
        voters.remove(&dead);
        voters.insert(candidate);
        return Some(Action::SetVoters(voters));
    }
    if v.voters.len() < v.target {
        let mut voters = v.voters.clone();
        voters.insert(candidate);
        return Some(Action::SetVoters(voters));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn view(voters: &[NodeId], learners: &[NodeId], members: &[(NodeId, MemberRole)]) -> View {
        View {
            leader: voters[0],
            voters: set(voters),
            learners: set(learners),
            members: members.iter().copied().collect(),
            caught_up: set(&[]),
            unreachable: set(&[]),
            target: 3,
        }
    }

    use MemberRole::{Reader, Voter};

    #[test]
    fn a_new_member_becomes_a_learner_then_a_voter_once_caught_up() {
        let mut v = view(&[1], &[], &[(1, Voter), (2, Voter)]);
        assert_eq!(plan(&v), Some(Action::AddLearner(2)));
        v.learners = set(&[2]);
        assert_eq!(plan(&v), None, "not promoted before it caught up");
        v.caught_up = set(&[2]);
        assert_eq!(plan(&v), Some(Action::SetVoters(set(&[1, 2]))));
    }

    #[test]
    fn no_growth_past_the_target_and_readers_stay_learners() {
        let mut v = view(
            &[1, 2, 3],
            &[4, 5],
            &[(1, Voter), (2, Voter), (3, Voter), (4, Voter), (5, Reader)],
        );
        v.caught_up = set(&[4, 5]);
        assert_eq!(plan(&v), None);
        let mut v = view(&[1, 2], &[5], &[(1, Voter), (2, Voter), (5, Reader)]);
        v.caught_up = set(&[5]);
        assert_eq!(plan(&v), None, "a reader is never promoted");
    }

    #[test]
    fn an_unreachable_voter_is_replaced_by_a_caught_up_learner() {
        let mut v = view(
            &[1, 2, 3],
            &[4],
            &[(1, Voter), (2, Voter), (3, Voter), (4, Voter)],
        );
        v.unreachable = set(&[3]);
        assert_eq!(plan(&v), None, "the learner has not caught up");
        v.caught_up = set(&[4]);
        assert_eq!(plan(&v), Some(Action::SetVoters(set(&[1, 2, 4]))));
        v.unreachable = set(&[3, 4]);
        assert_eq!(plan(&v), None, "an unreachable learner is no replacement");
    }

    #[test]
    fn members_that_leave_or_become_readers_stop_voting_then_are_removed() {
        let v = view(&[1, 2, 3], &[], &[(1, Voter), (2, Voter)]);
        assert_eq!(plan(&v), Some(Action::SetVoters(set(&[1, 2]))));
        let v = view(&[1, 2], &[3], &[(1, Voter), (2, Voter)]);
        assert_eq!(plan(&v), Some(Action::Remove(set(&[3]))));
        let v = view(&[1, 2], &[], &[(1, Voter), (2, Reader)]);
        assert_eq!(plan(&v), Some(Action::SetVoters(set(&[1]))));
        // The last voter is never removed.
        let v = view(&[1], &[], &[]);
        assert_eq!(plan(&v), None);
    }
}
