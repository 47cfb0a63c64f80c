//! Linearizable reads stay linearizable across leader changes: clients on
//! every replica write, compare-exchange and read one `Cell` while the
//! leader is cut off or paused again and again; the recorded history is
//! then checked for linearizability against a register (Wing and Gong's
//! search with Lowe's memoization).

mod common;

use common::memory::open_nodes;
use statemesh::{Cell, MemoryNetwork};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an operation did, as its client saw it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Write(u64),
    Read(Option<u64>),
    /// `result: None` when the outcome is unknown.
    CompareExchange {
        expected: Option<u64>,
        new: Option<u64>,
        result: Option<Result<Option<u64>, Option<u64>>>,
    },
}

/// One operation: invoked at `call`, answered at `ret` on a clock shared by
/// all clients. An operation whose answer never came (a write that timed
/// out) has `ret == u64::MAX`: it may have taken effect at any moment after
/// `call`, or never.
#[derive(Debug, Clone, Copy)]
struct Op {
    call: u64,
    ret: u64,
    kind: Kind,
}

/// The register after `op`, if `op` can take effect when it holds `state`.
fn step(op: &Op, state: Option<u64>) -> Option<Option<u64>> {
    match op.kind {
        Kind::Write(v) => Some(Some(v)),
        Kind::Read(seen) => (seen == state).then_some(state),
        Kind::CompareExchange {
            expected,
            new,
            result,
        } => match result {
            Some(Ok(previous)) => (state == expected && previous == state).then_some(new),
            Some(Err(current)) => (state != expected && current == state).then_some(state),
            None => Some(if state == expected { new } else { state }),
        },
    }
}

/// Whether `history` is linearizable for a register that starts empty.
fn linearizable(history: &[Op]) -> bool {
    let words = history.len().div_ceil(64);
    let mut done = vec![0u64; words];
    let mut seen = HashSet::new();
    search(history, &mut done, None, &mut seen)
}

fn search(
    history: &[Op],
    done: &mut [u64],
    state: Option<u64>,
    seen: &mut HashSet<(Vec<u64>, Option<u64>)>,
) -> bool {
    let is_done = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) != 0;
    let pending = || (0..history.len()).filter(|&i| !is_done(done, i));
    // Finished once every answered operation has taken effect; unanswered
    // ones may never have.
    if pending().all(|i| history[i].ret == u64::MAX) {
        return true;
    }
    // Only an operation invoked before every pending one was answered can
    // take effect next.
    let horizon = pending().map(|i| history[i].ret).min().unwrap_or(u64::MAX);
    let candidates: Vec<usize> = pending().filter(|&i| history[i].call < horizon).collect();
    for i in candidates {
        if let Some(next) = step(&history[i], state) {
            done[i / 64] |= 1 << (i % 64);
            if seen.insert((done.to_vec(), next)) && search(history, done, next, seen) {
                return true;
            }
            done[i / 64] &= !(1 << (i % 64));
        }
    }
    false
}

#[test]
fn the_checker_refuses_a_stale_read_and_accepts_overlap() {
    let op = |call, ret, kind| Op { call, ret, kind };
    // A read that starts after a write was acknowledged must see it.
    let stale = [
        op(0, 1, Kind::Write(1)),
        op(2, 3, Kind::Write(2)),
        op(4, 5, Kind::Read(Some(1))),
    ];
    assert!(!linearizable(&stale));
    // Overlapping the second write, either value is fine.
    let overlapping = [
        op(0, 1, Kind::Write(1)),
        op(2, 5, Kind::Write(2)),
        op(3, 4, Kind::Read(Some(1))),
    ];
    assert!(linearizable(&overlapping));
    // A write whose answer was lost may have happened...
    let lost = [
        op(0, u64::MAX, Kind::Write(7)),
        op(1, 2, Kind::Read(Some(7))),
    ];
    assert!(linearizable(&lost));
    // ...but not before it was sent.
    let early = [
        op(0, 1, Kind::Read(Some(7))),
        op(2, u64::MAX, Kind::Write(7)),
    ];
    assert!(!linearizable(&early));
    // A failed compare-exchange reports the value it saw.
    let cas = [
        op(0, 1, Kind::Write(3)),
        op(
            2,
            3,
            Kind::CompareExchange {
                expected: Some(4),
                new: Some(5),
                result: Some(Err(Some(4))),
            },
        ),
    ];
    assert!(!linearizable(&cas));
}

/// Leaders cut off or paused in one run, alternately.
const FAULTS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_linearizable_across_leader_changes() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3];
    let nodes = open_nodes(&net, dir.path(), &voters);
    let mut cells = Vec::new();
    for n in &nodes {
        cells.push(Cell::<u64>::open(n, "register", &voters).await.unwrap());
    }

    let first_term = cells[0].group().status().term;
    // Clients run until the nemesis has cut off three leaders.
    let running = Arc::new(AtomicBool::new(true));
    let clock = Arc::new(AtomicU64::new(0));
    let history = Arc::new(Mutex::new(Vec::new()));
    let next_value = Arc::new(AtomicU64::new(1));
    let mut clients = Vec::new();
    for c in 0..6u64 {
        let cell = cells[c as usize % 3].clone();
        let (clock, history, next_value) = (clock.clone(), history.clone(), next_value.clone());
        let running = running.clone();
        clients.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(c);
            let mut last_seen = None;
            // Paced, so the history stays small enough to check quickly.
            for _ in 0..400 {
                if !running.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                let call = clock.fetch_add(1, Ordering::SeqCst);
                let limit = Duration::from_secs(2);
                let kind = match rng.u8(0..10) {
                    0..4 => {
                        let v = next_value.fetch_add(1, Ordering::SeqCst);
                        match tokio::time::timeout(limit, cell.write(v)).await {
                            Ok(Ok(_)) => Some((Kind::Write(v), true)),
                            _ => Some((Kind::Write(v), false)),
                        }
                    }
                    4..8 => match tokio::time::timeout(limit, cell.read_linearizable()).await {
                        Ok(Ok(seen)) => {
                            last_seen = seen;
                            Some((Kind::Read(seen), true))
                        }
                        // A read that failed had no effect: leave it out.
                        _ => None,
                    },
                    _ => {
                        let new = Some(next_value.fetch_add(1, Ordering::SeqCst));
                        let expected = last_seen;
                        let r =
                            tokio::time::timeout(limit, cell.compare_exchange(expected, new)).await;
                        let result = match r {
                            Ok(Ok((r, _))) => Some(r),
                            _ => None,
                        };
                        Some((
                            Kind::CompareExchange {
                                expected,
                                new,
                                result,
                            },
                            result.is_some(),
                        ))
                    }
                };
                let ret = clock.fetch_add(1, Ordering::SeqCst);
                if let Some((kind, answered)) = kind {
                    let ret = if answered { ret } else { u64::MAX };
                    history.lock().unwrap().push(Op { call, ret, kind });
                }
            }
        }));
    }

    // The nemesis: cut the leader off (a partition) or pause it (what a
    // SIGSTOP looks like: its messages wait instead of failing, and go
    // through, stale, when it resumes), let the others elect a new one,
    // heal, four times over.
    let nemesis = {
        let (net, cells) = (net.clone(), cells.clone());
        tokio::spawn(async move {
            let mut changes = 0;
            while changes < FAULTS {
                tokio::time::sleep(Duration::from_millis(300)).await;
                // The leader of the newest term any replica knows of: one
                // replica's view may still name a deposed leader.
                let newest = cells
                    .iter()
                    .map(|c| c.group().status())
                    .max_by_key(|s| s.term);
                let Some((leader, term)) = newest.and_then(|s| Some((s.leader?, s.term))) else {
                    continue;
                };
                if changes % 2 == 0 {
                    net.isolate(leader);
                } else {
                    net.pause(leader);
                }
                // The fault lasts until the others have elected (on a busy
                // machine that can take longer than usual), then a little
                // more, so clients meet the new leader while the old one
                // is still away.
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline
                    && !cells
                        .iter()
                        .map(|c| c.group().status())
                        .any(|s| s.node != leader && s.term > term && s.leader.is_some())
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                net.heal();
                net.resume(leader);
                changes += 1;
            }
            changes
        })
    };
    let cuts = nemesis.await.unwrap();
    running.store(false, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }

    let history = history.lock().unwrap().clone();
    let answered_reads = history
        .iter()
        .filter(|o| matches!(o.kind, Kind::Read(_)))
        .count();
    assert_eq!(cuts, FAULTS);
    let elections = (0..3)
        .map(|i| cells[i].group().status().term)
        .max()
        .unwrap()
        - first_term;
    assert!(
        elections >= FAULTS,
        "only {elections} elections in {FAULTS} faults"
    );
    assert!(answered_reads >= 20, "only {answered_reads} reads answered");
    assert!(linearizable(&history), "not linearizable: {history:#?}");
    for n in nodes {
        n.shutdown().await;
    }
}
