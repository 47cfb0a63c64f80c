//! Every member's own account of itself: what `statemesh status`,
//! `statemesh health` and `statemesh members list` show.
//!
//! One node's status says what that node believes; a member that is down,
//! paused or cut off is exactly the one whose view it cannot give. So the
//! report asks each recorded member directly, each within a short time, and
//! keeps why a member did not answer.

use super::{Client, ClientError};
use crate::MemberRole;
use crate::protocol::millis;
use crate::protocol::{ClientReply, ClientRequest, ClusterStatus, Response, call_bytes};
use crate::{GroupStatus, Role};
use serde::Serialize;
use statemesh_core::NodeId;
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one member has to answer for itself.
const ASK_TIME: Duration = Duration::from_secs(2);

/// A member as the cluster records it, and as it answered for itself.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    /// Its node id.
    pub id: NodeId,
    /// Where it listens.
    pub address: String,
    /// What the cluster means it to be.
    pub role: MemberRole,
    /// Whether it answered.
    pub reachable: bool,
    /// Its own view, if it answered.
    pub status: Option<ClusterStatus>,
    /// Why it did not answer.
    pub error: Option<String>,
    /// Milliseconds since a member that answered last heard from it (the
    /// most recent of their accounts); `None` if none has.
    pub last_contact_ms: Option<u64>,
}

/// Every member's account, and what they add up to.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// The member whose record of the membership was used.
    pub asked: NodeId,
    /// The members, by id.
    pub members: Vec<MemberReport>,
}

impl ClusterReport {
    /// Every group any member that answered hosts, `_cluster` first.
    #[must_use]
    pub fn groups(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self
            .statuses()
            .flat_map(|s| s.groups.iter().map(|(n, _)| n))
            .collect();
        let mut names: Vec<String> = names.into_iter().cloned().collect();
        names.sort_by(|a, b| (!a.starts_with('_'), a).cmp(&(!b.starts_with('_'), b)));
        names
    }

    /// The member that leads `group` by its own account, if one does.
    #[must_use]
    pub fn leader(&self, group: &str) -> Option<NodeId> {
        self.members.iter().find_map(|m| {
            let g = m.status.as_ref()?.groups.iter().find(|(n, _)| n == group)?;
            (g.1.role == Role::Leader).then_some(m.id)
        })
    }

    /// How many versions member `id` has applied fewer of `group` than
    /// its leader; `None` if either did not answer or does not host it.
    #[must_use]
    pub fn lag(&self, id: NodeId, group: &str) -> Option<u64> {
        let applied = |id: NodeId| {
            let m = self.members.iter().find(|m| m.id == id)?;
            let g = m.status.as_ref()?.groups.iter().find(|(n, _)| n == group)?;
            Some(g.1.applied)
        };
        Some(applied(self.leader(group)?)?.saturating_sub(applied(id)?))
    }

    /// How many mirrors follow `group`, from every member that answered.
    #[must_use]
    pub fn mirrors(&self, group: &str) -> u64 {
        self.statuses().filter_map(|s| s.mirrors.get(group)).sum()
    }

    /// `group`'s status on the member that leads it.
    #[must_use]
    pub fn leader_status(&self, group: &str) -> Option<&GroupStatus> {
        let leader = self.leader(group)?;
        let m = self.members.iter().find(|m| m.id == leader)?;
        let g = m.status.as_ref()?.groups.iter().find(|(n, _)| n == group)?;
        Some(&g.1)
    }

    /// What is wrong, in words: members that did not answer, collections
    /// a member cannot host, groups without a leader or whose leader
    /// reaches no quorum. Empty when the cluster is healthy.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.reachable)
            .map(|m| {
                format!(
                    "node {} at {} did not answer: {}",
                    m.id,
                    m.address,
                    m.error.as_deref().unwrap_or("no answer")
                )
            })
            .collect();
        for m in &self.members {
            for (name, why) in m.status.iter().flat_map(|s| &s.unhosted) {
                out.push(format!("node {} cannot host {name:?}: {why}", m.id));
            }
        }
        for g in self.groups() {
            match (self.leader(&g), self.leader_status(&g)) {
                (None, _) => out.push(format!("{g:?} has no leader")),
                (Some(leader), Some(s)) => {
                    if let Some((reachable, voters)) = s.no_quorum {
                        out.push(format!(
                            "{g:?} has no quorum: its leader, node {leader}, reaches {reachable} \
                             of {voters} voters"
                        ));
                    }
                }
                (Some(_), None) => {}
            }
        }
        out
    }

    fn statuses(&self) -> impl Iterator<Item = &ClusterStatus> {
        self.members.iter().filter_map(|m| m.status.as_ref())
    }
}

impl Client {
    /// Asks every member the cluster records for its own status, each
    /// directly and within two seconds, and gathers the answers (and why a
    /// member did not answer).
    ///
    /// # Errors
    ///
    /// As [`Client::status`], if no member answers for the membership.
    pub async fn report(&self) -> Result<ClusterReport, ClientError> {
        let first = self.status().await?;
        let asked = first.node;
        let request = postcard::to_allocvec(&ClientRequest::Status)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut asks = tokio::task::JoinSet::new();
        for (&id, member) in &first.members {
            if id == asked {
                continue;
            }
            let (dial, request) = (self.dial(&member.address), request.clone());
            asks.spawn(async move {
                let answer = tokio::time::timeout(ASK_TIME, async {
                    let c = dial.await.map_err(|e| e.to_string())?;
                    if c.node != id {
                        return Err(format!("node {} answers at its address", c.node));
                    }
                    let reply = c
                        .call(call_bytes(millis(ASK_TIME), &request))
                        .await
                        .map_err(|_| "the connection closed".to_owned())?;
                    match statemesh_core::decode::from_bytes::<Response>(&reply) {
                        Ok(Ok(ClientReply::Status(s))) => Ok(s),
                        Ok(Err(refusal)) => Err(refusal.to_string()),
                        Ok(Ok(_)) | Err(_) => Err("an answer that is not a status".to_owned()),
                    }
                })
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {ASK_TIME:?}")));
                (id, answer)
            });
        }
        let mut answers = std::collections::HashMap::new();
        while let Some(joined) = asks.join_next().await {
            if let Ok((id, answer)) = joined {
                answers.insert(id, answer);
            }
        }
        let mut members: Vec<MemberReport> = first
            .members
            .iter()
            .map(|(&id, m)| {
                let answer = if id == asked {
                    Ok(first.clone())
                } else {
                    answers
                        .remove(&id)
                        .unwrap_or_else(|| Err("not asked".into()))
                };
                let (status, error) = match answer {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(e)),
                };
                MemberReport {
                    id,
                    address: m.address.clone(),
                    role: m.role,
                    reachable: status.is_some(),
                    status,
                    error,
                    last_contact_ms: None,
                }
            })
            .collect();
        let contacts: Vec<(NodeId, u64)> = members
            .iter()
            .filter_map(|m| m.status.as_ref())
            .flat_map(|s| s.last_contact_ms.iter().map(|(k, v)| (*k, *v)))
            .collect();
        for m in &mut members {
            m.last_contact_ms = contacts
                .iter()
                .filter(|(id, _)| *id == m.id)
                .map(|(_, ms)| *ms)
                .min();
        }
        Ok(ClusterReport { asked, members })
    }
}
