//! Faults on 5-node and 3-node in-process clusters: a partitioned minority,
//! a leader lost under write load, a leader cut off or paused under write
//! load through the followers, and a learner that can only catch up by
//! snapshot while writes go on.

mod common;

use common::memory::open_node;
use statemesh::{ExecuteError, Map, MapReader, MemoryNetwork, Node, NodeOptions, Role};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn open_maps(nodes: &[Node], voters: &[u64]) -> Vec<Map<u32, u32>> {
    let mut maps = Vec::new();
    for n in nodes {
        maps.push(Map::<u32, u32>::open(n, "m", voters).await.unwrap());
    }
    maps
}

/// The leader every replica in `maps` agrees on, once they agree.
async fn agreed_leader(maps: &[Map<u32, u32>]) -> u64 {
    for _ in 0..200 {
        let leaders: Vec<_> = maps.iter().map(|m| m.group().leader()).collect();
        if let Some(Some(l)) = leaders.first()
            && leaders.iter().all(|x| *x == Some(*l))
        {
            return *l;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the replicas never agreed on a leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_cannot_commit_and_catches_up_after_healing() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3, 4, 5];
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, NodeOptions::default()))
        .collect();
    let maps = open_maps(&nodes, &voters).await;
    maps[0].insert(0, 0).await.unwrap();
    let leader = agreed_leader(&maps).await;

    // The leader and one follower on one side, three nodes on the other.
    let buddy = voters.iter().copied().find(|&v| v != leader).unwrap();
    net.partition(&[leader, buddy]);
    let on = |id: u64| &maps[voters.iter().position(|&v| v == id).unwrap()];
    let majority: Vec<_> = voters
        .iter()
        .copied()
        .filter(|v| ![leader, buddy].contains(v))
        .collect();

    // A write to the old leader cannot commit while it is cut off.
    let stuck = {
        let m = on(leader).clone();
        tokio::spawn(async move { m.insert(1, 100).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!stuck.is_finished(), "a minority committed a write");
    assert_eq!(on(buddy).get(&1), None);

    // The majority elects a leader of its own and goes on.
    let mut last = 0;
    for k in 2..20 {
        let (_, v) = on(majority[k as usize % 3]).insert(k, k).await.unwrap();
        last = v;
    }
    for &id in &majority {
        assert_ne!(on(id).group().status().leader, Some(leader));
        assert_eq!(on(id).get(&1), None, "the minority's write leaked");
    }
    assert_eq!(on(buddy).get(&19), None);

    // Healed, the minority takes the majority's log; the old leader's
    // entry is discarded and its writer retries through the new leader, so
    // the write lands at most once.
    net.heal();
    match stuck.await.unwrap() {
        Ok((previous, v)) => {
            assert_eq!(previous, None);
            assert!(v > last);
            last = v;
        }
        Err(ExecuteError::Timeout { .. } | ExecuteError::Indeterminate(_)) => {}
        Err(e) => panic!("unexpected {e}"),
    }
    let want = maps[0].snapshot_linearizable().await.unwrap();
    last = last.max(maps[0].version());
    for m in &maps {
        m.when().reaches(last).await;
        assert_eq!(m.snapshot(), want);
    }
    for k in 2..20 {
        assert_eq!(want.get(&k), Some(&k));
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_when_the_leader_dies_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3, 4, 5];
    let mut nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, NodeOptions::default()))
        .collect();
    let maps = open_maps(&nodes, &voters).await;
    maps[0].insert(u32::MAX, 0).await.unwrap();
    let leader = agreed_leader(&maps).await;

    // Eight writers, on followers only, each on keys of its own.
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    let followers: Vec<_> = maps
        .iter()
        .filter(|m| m.group().status().node != leader)
        .cloned()
        .collect();
    for w in 0..8u32 {
        let m = followers[w as usize % followers.len()].clone();
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut errors = 0;
            for i in 0u32.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = w * 1_000_000 + i;
                match m.insert(key, i).await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(key, i);
                    }
                    Err(ExecuteError::Timeout { .. } | ExecuteError::NoQuorum { .. }) => {
                        errors += 1;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            errors
        }));
    }

    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = acked.lock().unwrap().len();
    // The leader dies: cut off first so nothing more leaves it, then gone.
    net.isolate(leader);
    let at = nodes.iter().position(|n| n.id() == leader).unwrap();
    nodes.remove(at).shutdown().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(before > 0, "nothing was written before the leader died");
    assert!(
        acked.len() > before,
        "nothing was written after the leader died"
    );

    let state = followers[0].snapshot_linearizable().await.unwrap();
    for (k, v) in &acked {
        assert_eq!(state.get(k), Some(v), "acknowledged write {k} lost");
    }
    let version = followers[0].version();
    for m in &followers {
        m.when().reaches(version).await;
        assert_eq!(m.snapshot(), state);
        assert_ne!(m.group().status().leader, Some(leader));
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// Writes through `maps` (each on keys of its own) until `stop`; the time
/// of every acknowledgement.
fn timed_writers(
    maps: Vec<Map<u32, u32>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Instant>>> {
    maps.into_iter()
        .enumerate()
        .map(|(w, m)| {
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0u32.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if m.insert(w as u32 * 1_000_000 + i, i).await.is_ok() {
                        acked.push(Instant::now());
                    }
                }
                acked
            })
        })
        .collect()
}

/// The longest time without an acknowledgement after `fault`.
fn longest_stall(acked: &[Instant], fault: Instant) -> Duration {
    acked
        .windows(2)
        .filter(|w| w[1] > fault)
        .map(|w| w[1] - w[0].max(fault))
        .max()
        .unwrap_or(Duration::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_followers_go_on_within_an_election_of_a_leader_cut_off_or_paused() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3];
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, NodeOptions::default()))
        .collect();
    let maps = open_maps(&nodes, &voters).await;
    for pause in [false, true] {
        // Every replica is caught up before the fault (the one cut off in
        // the first round too): the claim is about an election, not about
        // a replica that must first be sent the log it missed.
        let (_, version) = maps[0].insert(u32::MAX, u32::from(pause)).await.unwrap();
        for m in &maps {
            tokio::time::timeout(Duration::from_secs(30), m.when().reaches(version))
                .await
                .expect("a replica did not catch up within 30 s");
        }
        let leader = agreed_leader(&maps).await;
        let followers: Vec<_> = maps
            .iter()
            .filter(|m| m.group().status().node != leader)
            .cloned()
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let writers = timed_writers(followers.clone(), &stop);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fault = Instant::now();
        if pause {
            net.pause(leader);
        } else {
            net.isolate(leader);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let acked = w.await.unwrap();
            let stall = longest_stall(&acked, fault);
            let after = acked.iter().filter(|t| **t > fault).count();
            assert!(
                stall <= Duration::from_secs(2),
                "writes stopped for {stall:?} (paused: {pause}; {} acknowledged before the fault, {after} after)",
                acked.len() - after
            );
        }
        for m in &followers {
            assert_ne!(m.group().leader(), Some(leader), "paused: {pause}");
        }
        net.heal();
        net.resume(leader);
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_learner_catches_up_by_snapshot_while_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    // The voters snapshot often and keep little log behind, so a newcomer
    // cannot be sent the log from the start.
    let voter_options = NodeOptions {
        snapshot_every: 100,
        keep_after_snapshot: 10,
        ..NodeOptions::default()
    };
    let voters = [1, 2, 3];
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, voter_options.clone()))
        .collect();
    let maps = open_maps(&nodes, &voters).await;
    for k in 0..500 {
        maps[k as usize % 3].insert(k, k).await.unwrap();
    }
    for m in &maps {
        assert!(m.group().status().purged.is_some());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (m, stop) = (maps[1].clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut k = 500;
            while !stop.load(Ordering::Relaxed) {
                m.insert(k, k).await.unwrap();
                k += 1;
            }
            k
        })
    };
    // The learner never snapshots by itself: a snapshot it holds came
    // from the leader.
    let learner_options = NodeOptions {
        snapshot_every: 1_000_000,
        ..NodeOptions::default()
    };
    let learner_node = open_node(&net, dir.path(), 4, learner_options);
    let reader = MapReader::<u32, u32>::open(&learner_node, "m", &voters)
        .await
        .unwrap();
    let mut when = reader.when();
    when.reaches(600).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();

    let want = maps[0].snapshot_linearizable().await.unwrap();
    assert_eq!(want.len(), written as usize);
    reader.when().reaches(maps[0].version()).await;
    assert_eq!(reader.snapshot(), want);
    let status = reader.group().status();
    assert_eq!(status.role, Role::Learner);
    assert!(
        status.snapshot.is_some(),
        "the learner caught up without a snapshot: {status:?}"
    );
    assert!(status.learners.contains(&4) && !status.voters.contains(&4));
    learner_node.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}
