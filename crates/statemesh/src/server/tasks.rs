//! The server's background work: joining, following the cluster's
//! state, and keeping every group's membership to the policy.

use super::cluster_state::ClusterState;
use super::inner::{ServerInner, lock};
use super::membership::{Action, View};
use super::options::{CAUGHT_UP_LAG, SYSTEM_GROUP};
use super::{catalog, membership};
use crate::group::rpc::{Envelope, Request, encode};
use crate::network::Network;
use crate::types::NodeId;
use openraft::{BasicNode, ChangeMembers, ServerState};
use statemesh_client::{Member, MemberRole};
use statemesh_core::StateMachine;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Follows the cluster's state: members' addresses, and collections to
/// host.
pub(super) async fn follow_cluster(inner: Arc<ServerInner>) {
    let mut when = inner.system.when();
    // A node is not in the record until its join is applied, so only a
    // record that had it and lost it means a removal.
    let mut was_member = false;
    loop {
        inner.learn_addresses();
        super::mesh::refresh_seeds(&inner);
        let member = inner
            .system
            .read_local(|s| s.members.contains_key(&inner.id));
        if member {
            was_member = true;
            if inner.removed.send_replace(false) {
                // Added back (`statemesh members add`).
                if let Some(d) = &*lock(&inner.data)
                    && let Err(e) = d.clear_removed()
                {
                    tracing::error!("{e}");
                }
                tracing::info!(node = inner.id, "this node is a member again");
            }
        } else if was_member {
            inner.note_removed();
        }
        catalog::sweep(&inner).await;
        let names: Vec<String> = inner
            .system
            .read_local(|s| s.collections.keys().cloned().collect());
        lock(&inner.unhosted).retain(|n, _| names.contains(n));
        for name in names {
            match inner.hosted(&name).await {
                Ok(_) => {
                    lock(&inner.unhosted).remove(&name);
                }
                Err(e) => {
                    let why = e.to_string();
                    if lock(&inner.unhosted).insert(name.clone(), why.clone()) != Some(why.clone())
                    {
                        tracing::error!(collection = %name, "cannot host: {why}");
                    }
                }
            }
        }
        if let Ok(None) = tokio::time::timeout(Duration::from_secs(1), when.updated()).await {
            // The cluster's group is closed: the node is shutting down.
            return;
        }
    }
}

/// Pings the members and, in every group this node leads, carries out the
/// membership policy.
pub(super) async fn keep_membership(inner: Arc<ServerInner>) {
    let ping = encode(&Envelope {
        group: inner.system.id(),
        request: Request::Hello {
            name: SYSTEM_GROUP.to_owned(),
            signature: ClusterState::default().signature(),
        },
    });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let members: BTreeMap<NodeId, Member> = inner
            .system
            .read_local(|s| s.members.iter().map(|(k, v)| (*k, v.clone())).collect());
        let mut pings = tokio::task::JoinSet::new();
        for &id in members.keys().filter(|&&id| id != inner.id) {
            let (net, ping, me) = (Arc::clone(&inner.net), ping.clone(), inner.id);
            pings.spawn(async move {
                let answered =
                    tokio::time::timeout(Duration::from_millis(500), net.call(me, id, ping))
                        .await
                        .is_ok_and(|r| r.is_ok());
                (id, answered)
            });
        }
        let now = Instant::now();
        {
            let mut seen = lock(&inner.seen);
            seen.insert(inner.id, now);
            for id in members.keys() {
                seen.entry(*id).or_insert(now);
            }
        }
        while let Some(Ok((id, answered))) = pings.join_next().await {
            if answered {
                lock(&inner.seen).insert(id, Instant::now());
            }
        }
        let unreachable: BTreeSet<NodeId> = lock(&inner.seen)
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > inner.options.replace_after)
            .map(|(id, _)| *id)
            .collect();
        let roles: BTreeMap<NodeId, MemberRole> =
            members.iter().map(|(id, m)| (*id, m.role)).collect();
        for (name, group) in inner.all_hosted().await {
            let metrics = group.raft().metrics().borrow().clone();
            if metrics.state != ServerState::Leader || lock(&inner.changing).contains(&name) {
                continue;
            }
            let membership = metrics.membership_config.membership();
            let last = metrics.last_log_index.unwrap_or(0);
            let caught_up = metrics
                .replication
                .iter()
                .flatten()
                .filter(|(_, matched)| matched.map_or(0, |l| l.index) + CAUGHT_UP_LAG >= last)
                .map(|(id, _)| *id)
                .collect();
            let view = View {
                leader: inner.id,
                voters: membership.voter_ids().collect(),
                learners: membership.learner_ids().collect(),
                members: roles.clone(),
                caught_up,
                unreachable: unreachable.clone(),
                target: inner.options.target_voters.max(1),
            };
            let Some(action) = membership::plan(&view) else {
                continue;
            };
            lock(&inner.changing).insert(name.clone());
            let (inner, members) = (Arc::clone(&inner), members.clone());
            tokio::spawn(async move {
                tracing::info!(group = %name, ?action, "membership change");
                let raft = group.raft();
                let result = match action {
                    Action::AddLearner(id) => {
                        let address = members
                            .get(&id)
                            .map(|m| m.address.clone())
                            .unwrap_or_default();
                        raft.add_learner(id, BasicNode::new(address), false)
                            .await
                            .map(|_| ())
                    }
                    Action::SetVoters(voters) => raft
                        .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
                        .await
                        .map(|_| ()),
                    Action::Remove(nodes) => raft
                        .change_membership(ChangeMembers::RemoveNodes(nodes), false)
                        .await
                        .map(|_| ()),
                };
                if let Err(e) = result {
                    tracing::warn!(group = %name, "membership change failed: {e}");
                }
                lock(&inner.changing).remove(&name);
            });
        }
    }
}
