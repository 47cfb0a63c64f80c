//! Whether a leader still leads: check-quorum, kept beside openraft.
//!
//! openraft 0.9 keeps a leader in office until it hears of a higher term.
//! Cut off from the others (a partition, or paused and resumed), it goes
//! on taking writes, which it can never commit, and read-index requests,
//! which it can never confirm, while the majority has long elected another
//! leader: its clients wait for the whole fault. Here each group notes
//! when its peers last acknowledged this node's leadership (an
//! `AppendEntries` reply that does not name a higher term, or a granted
//! vote), timed from when the request was *sent*; a leader that has not
//! been acknowledged by a quorum within an election timeout refuses writes
//! and reads at once with [`Standing::Lost`], which sends the writer to
//! another member. It does not step down in openraft (0.9 has no call for
//! that); it is deposed as usual when it hears of the new term. The lease
//! only decides when to refuse, never when to answer without a quorum, so
//! clock drift cannot make it unsafe.

use crate::types::{NodeId, Raft};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one group on this node last heard from its peers.
#[derive(Default)]
pub(crate) struct Contacts {
    peers: Mutex<HashMap<NodeId, Heard>>,
}

#[derive(Default, Clone, Copy)]
struct Heard {
    /// When a request to it last got any answer.
    answered: Option<Instant>,
    /// The term it last acknowledged this node as leader in, and when the
    /// acknowledged request was sent.
    acknowledged: Option<(u64, Instant)>,
}

impl Contacts {
    fn update(&self, peer: NodeId, change: impl FnOnce(&mut Heard)) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        change(peers.entry(peer).or_default());
    }

    /// `peer` answered a request.
    pub(crate) fn answered(&self, peer: NodeId) {
        self.update(peer, |h| h.answered = Some(Instant::now()));
    }

    /// `peer` acknowledged this node as leader of `term`, answering a
    /// request sent at `sent`.
    pub(crate) fn acknowledged(&self, peer: NodeId, term: u64, sent: Instant) {
        self.update(peer, |h| {
            h.answered = Some(Instant::now());
            if h.acknowledged.is_none_or(|(t, at)| (t, at) < (term, sent)) {
                h.acknowledged = Some((term, sent));
            }
        });
    }

    /// The latest time by which a majority of `voters` (this node, `me`,
    /// counting as now) had acknowledged this node's leadership of `term`.
    fn quorum_acknowledged(
        &self,
        me: NodeId,
        term: u64,
        voters: &BTreeSet<NodeId>,
    ) -> Option<Instant> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut times: Vec<Instant> = voters
            .iter()
            .filter_map(|v| {
                if *v == me {
                    return Some(now);
                }
                match peers.get(v)?.acknowledged? {
                    (t, at) if t == term => Some(at),
                    _ => None,
                }
            })
            .collect();
        let majority = voters.len() / 2 + 1;
        if times.len() < majority {
            return None;
        }
        times.sort_unstable_by(|a, b| b.cmp(a));
        Some(times[majority - 1])
    }

    /// How many of `voters` answered this node within `window` (this node
    /// counts if it is one).
    pub(crate) fn reachable(
        &self,
        me: NodeId,
        voters: &BTreeSet<NodeId>,
        window: Duration,
    ) -> usize {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        voters
            .iter()
            .filter(|v| {
                **v == me
                    || peers
                        .get(v)
                        .and_then(|h| h.answered)
                        .is_some_and(|t| t.elapsed() <= window)
            })
            .count()
    }
}

/// Where this node stands in its group, for a write or a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// It leads, and a quorum acknowledged it within the lease.
    Leads,
    /// It does not lead; the leader it knows of, if any.
    Follows(Option<NodeId>),
    /// It leads in openraft's eyes, but no quorum acknowledged it within
    /// the lease: another node may lead by now.
    Lost {
        /// Voters that answered it within the lease (itself included).
        reachable: usize,
        /// The group's voters.
        voters: usize,
    },
}

/// Answers "does this node still lead?" for one group.
pub(crate) struct Lease {
    pub(crate) node: NodeId,
    pub(crate) raft: Raft,
    pub(crate) contacts: std::sync::Arc<Contacts>,
    /// An election timeout: a follower that heard nothing for this long
    /// may have started an election.
    pub(crate) length: Duration,
}

impl Lease {
    /// Where this node stands now.
    pub(crate) fn standing(&self) -> Standing {
        let m = self.raft.metrics().borrow().clone();
        if m.state != openraft::ServerState::Leader {
            return Standing::Follows(m.current_leader.filter(|&l| l != self.node));
        }
        let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        let held = self
            .contacts
            .quorum_acknowledged(self.node, m.current_term, &voters)
            .is_some_and(|t| t.elapsed() <= self.length);
        if held {
            Standing::Leads
        } else {
            Standing::Lost {
                reachable: self.contacts.reachable(self.node, &voters, self.length),
                voters: voters.len(),
            }
        }
    }

    /// Resolves once this node leads in openraft's eyes but has lost its
    /// lease: a write waiting on it then will not commit here soon.
    pub(crate) async fn lapsed(&self) {
        loop {
            if let Standing::Lost { .. } = self.standing() {
                return;
            }
            tokio::time::sleep(self.length / 4).await;
        }
    }

    /// How many voters answered within the lease, and how many there are
    /// (for a "no quorum" error).
    pub(crate) fn reachability(&self) -> (usize, usize) {
        let voters: BTreeSet<NodeId> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        // Followers hear from peers less often than a leader (votes only
        // while electing): a longer window.
        let window = self.length * 4;
        (
            self.contacts.reachable(self.node, &voters, window),
            voters.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_of_recent_acknowledgements_holds_the_lease() {
        let c = Contacts::default();
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        assert_eq!(c.quorum_acknowledged(1, 5, &voters), None);
        let sent = Instant::now();
        c.acknowledged(2, 5, sent);
        assert_eq!(c.quorum_acknowledged(1, 5, &voters), Some(sent));
        // An acknowledgement of an older term does not count.
        assert_eq!(c.quorum_acknowledged(1, 6, &voters), None);
        let voters5: BTreeSet<NodeId> = [1, 2, 3, 4, 5].into();
        assert_eq!(c.quorum_acknowledged(1, 5, &voters5), None);
        let later = Instant::now();
        c.acknowledged(3, 5, later);
        // The quorum's time is the oldest of the majority's newest.
        assert_eq!(c.quorum_acknowledged(1, 5, &voters5), Some(sent));
        assert_eq!(c.reachable(1, &voters5, Duration::from_secs(60)), 3);
    }
}
