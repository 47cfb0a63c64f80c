//! A command sent again is applied once: after its leader was deposed with
//! the entry on another node, and after a snapshot and a restart; and a
//! leader cut off lets go of the commands it holds when its lease lapses,
//! so they can be sent again elsewhere.

use super::rpc::{Refused, Stamped};
use super::{Group, Redirect, Role};
use crate::error::ExecuteError;
use crate::network::{MemoryNetwork, Network};
use crate::node::{Node, NodeOptions};
use statemesh_core::StateMachine;
use statemesh_core::session::Stamp;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Adds to a total and answers the new total: applied twice, it shows.
#[derive(Default)]
struct Counter {
    total: u64,
}

impl StateMachine for Counter {
    type Command = u64;
    type Response = u64;
    type Snapshot = u64;

    fn apply(&mut self, add: u64, _version: u64) -> u64 {
        self.total += add;
        self.total
    }

    fn snapshot(&self) -> u64 {
        self.total
    }

    fn restore(&mut self, total: u64) {
        self.total = total;
    }
}

fn add(session: u128, seq: u64, amount: u64) -> Stamped {
    Stamped {
        stamp: Stamp {
            session,
            seq,
            acked: seq,
            age_ms: 0,
        },
        command: postcard::to_allocvec(&amount).unwrap(),
    }
}

fn total(reply: &[u8]) -> u64 {
    statemesh_core::decode::from_bytes::<Result<u64, String>>(reply)
        .unwrap()
        .unwrap()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_retried_after_its_leader_was_deposed_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3, 4, 5];
    let mut nodes = Vec::new();
    let mut groups: Vec<Group<Counter>> = Vec::new();
    for &id in &voters {
        let n: Arc<dyn Network> = net.clone();
        let node = Node::open(
            id,
            dir.path().join(id.to_string()),
            n,
            NodeOptions::default(),
        )
        .unwrap();
        groups.push(
            node.open_group("counter", Counter::default(), &voters)
                .await
                .unwrap(),
        );
        nodes.push(node);
    }
    groups[0].execute(1).await.unwrap();
    until("every replica to agree on a leader", || {
        let l = groups[0].leader();
        l.is_some() && groups.iter().all(|g| g.leader() == l)
    })
    .await;
    let leader_id = groups[0].leader().unwrap();
    let at = |id: u64| voters.iter().position(|&v| v == id).unwrap();
    let (leader, buddy) = (
        at(leader_id),
        at(voters.iter().copied().find(|&v| v != leader_id).unwrap()),
    );
    let others: Vec<u64> = voters
        .iter()
        .copied()
        .filter(|&v| v != leader_id && v != voters[buddy])
        .collect();

    // The leader keeps only its link to its buddy; the other three keep
    // only theirs to the buddy, so they cannot elect one of their own.
    for &o in &others {
        net.cut(leader_id, o);
        for &p in &others {
            if o < p {
                net.cut(o, p);
            }
        }
    }
    // The first try, proposed at the leader straight away (the lease check
    // in front of it may already doubt a leader with one follower left).
    let command = add(7, 1, 2);
    let before = groups[leader].status().last_log_index;
    let first = {
        let proposer = Arc::clone(&groups[leader].inner.proposer);
        let command = command.clone();
        tokio::spawn(async move { proposer.propose(command).await })
    };
    let entry = before + 1;
    until("the buddy to hold the entry", || {
        groups[buddy].status().last_log_index >= entry
    })
    .await;
    for &o in &others {
        assert!(
            groups[at(o)].status().last_log_index < entry,
            "node {o} got the entry"
        );
    }

    // The leader is deposed; the buddy, whose log is the longest, wins the
    // others' votes, commits the entry and applies it: once.
    net.isolate(leader_id);
    until("the buddy to lead", || {
        groups[buddy].status().role == Role::Leader
    })
    .await;
    until("the buddy to apply the entry", || {
        groups[buddy].version() >= entry
    })
    .await;
    assert_eq!(groups[buddy].read_local(|c| c.total), 3);

    // The writer did not hear back, so it sends the command again: it is
    // answered with its first outcome, at the entry it was applied at.
    let (reply, index) = groups[buddy]
        .execute_stamped(command.clone(), soon(), Redirect::No)
        .await
        .unwrap();
    assert_eq!((total(&reply), index), (3, entry));

    // Healed, the old leader's own try ends without applying anything, and
    // the same command sent through it is answered the same way.
    net.heal();
    match first.await.unwrap() {
        Err(Refused::NotLeader(_)) => {}
        // The entry this node appended was committed by the new leader.
        Ok((reply, index)) => assert_eq!((total(&reply), index), (3, entry)),
        Err(other) => panic!("the first try ended with {other:?}"),
    }
    let (reply, index) = groups[leader]
        .execute_stamped(command, soon(), Redirect::No)
        .await
        .unwrap();
    assert_eq!((total(&reply), index), (3, entry));
    let (last, _) = groups[leader].execute(10).await.unwrap();
    assert_eq!(last, 13);
    for g in &groups {
        g.when()
            .reaches(g.status().last_log_index.min(entry + 2))
            .await;
        until("every replica to apply the last command", || {
            g.read_local(|c| c.total) == 13
        })
        .await;
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_survive_a_snapshot_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let options = NodeOptions {
        keep_after_snapshot: 0,
        ..NodeOptions::default()
    };
    let open = || {
        let n: Arc<dyn Network> = net.clone();
        Node::open(1, dir.path(), n, options.clone()).unwrap()
    };
    let node = open();
    let group = node
        .open_group("counter", Counter::default(), &[1])
        .await
        .unwrap();
    let command = add(9, 1, 5);
    let (reply, index) = group
        .execute_stamped(command.clone(), soon(), Redirect::No)
        .await
        .unwrap();
    assert_eq!(total(&reply), 5);
    // The snapshot covers the command and the log before it is purged, so
    // after the restart only the snapshot knows the session.
    group.raft().trigger().snapshot().await.unwrap();
    until("the snapshot and the purge", || {
        let s = group.status();
        s.snapshot >= Some(index) && s.purged >= Some(index)
    })
    .await;
    drop(group);
    node.shutdown().await;

    let node = open();
    let group = node
        .open_group("counter", Counter::default(), &[1])
        .await
        .unwrap();
    assert_eq!(group.read_local(|c| c.total), 5);
    let (reply, again) = group
        .execute_stamped(command, soon(), Redirect::No)
        .await
        .unwrap();
    assert_eq!((total(&reply), again), (5, index));
    assert_eq!(group.read_local(|c| c.total), 5);
    let (reply, _) = group
        .execute_stamped(add(9, 2, 1), soon(), Redirect::No)
        .await
        .unwrap();
    assert_eq!(total(&reply), 6);
    drop(group);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_lets_go_of_a_command_it_took_when_its_lease_lapses() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3];
    let mut nodes = Vec::new();
    let mut groups: Vec<Group<Counter>> = Vec::new();
    for &id in &voters {
        let n: Arc<dyn Network> = net.clone();
        let node = Node::open(
            id,
            dir.path().join(id.to_string()),
            n,
            NodeOptions::default(),
        )
        .unwrap();
        groups.push(
            node.open_group("counter", Counter::default(), &voters)
                .await
                .unwrap(),
        );
        nodes.push(node);
    }
    groups[0].execute(1).await.unwrap();
    until("a leader", || groups[0].leader().is_some()).await;
    let leader = groups[0].leader().unwrap();
    let g = &groups[voters.iter().position(|&v| v == leader).unwrap()];

    // Cut off just after a heartbeat was acknowledged, the leader still
    // holds its lease and takes the command; it cannot commit it.
    net.isolate(leader);
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcome = g
        .execute_stamped(add(3, 1, 2), deadline, Redirect::Yes)
        .await;
    assert!(
        matches!(
            outcome,
            Err(ExecuteError::Timeout {
                maybe_applied: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    // Let go at the lease's end, not held until the deadline.
    assert!(Instant::now() + Duration::from_secs(30) < deadline);
    net.heal();
    for n in nodes {
        n.shutdown().await;
    }
}
