//! Failover with real node processes: a leader paused with SIGSTOP under a
//! write load is replaced within an election, and does not act as leader
//! when it resumes; with two of three voters stopped, a write and a
//! linearizable read fail with the no-quorum error within their deadline.

mod common;

use common::{Cluster, Node, group, keys, on_three_voters, stderr, stdout, three, until};
use statemesh::{Client, Json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest writes may stop after a fault on the leader.
const FAILOVER: Duration = Duration::from_secs(2);

fn signal(node: &Node, signal: &str) {
    let pid = node.child.as_ref().expect("the node runs").id().to_string();
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Writes keys of its own through `client` until `stop`, noting when each
/// write was acknowledged.
fn writer(
    client: Client,
    name: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, Instant)>> {
    tokio::spawn(async move {
        let m = client.map::<String, Json>("load").await.unwrap();
        let mut acked = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let key = format!("{name}-{i:05}");
            if m.insert(key.clone(), Json(serde_json::json!(i)))
                .await
                .is_ok()
            {
                acked.push((key, Instant::now()));
            }
        }
        acked
    })
}

/// The longest the writer went without an acknowledgement after `fault`
/// (until `end`): a write in flight when the fault came may still be
/// acknowledged just after it, so the first acknowledgement says nothing;
/// the longest silence is the outage. `None` if nothing was acknowledged
/// after the fault.
fn longest_stall(acked: &[(String, Instant)], fault: Instant, end: Instant) -> Option<Duration> {
    let times: Vec<Instant> = acked.iter().map(|(_, at)| *at).collect();
    let last = *times.last()?;
    if last <= fault {
        return None;
    }
    let gaps = times
        .windows(2)
        .filter(|w| w[1] > fault)
        .map(|w| w[1] - w[0].max(fault));
    Some(
        gaps.chain([end.saturating_duration_since(last)])
            .max()
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_replaced_within_an_election_and_does_not_lead_when_it_resumes() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let admin = cluster.client(&addresses).await;
    admin.map::<String, Json>("load").await.unwrap();
    let leader = until("a leader of the map", async || {
        on_three_voters(&admin, "load").await.leader
    })
    .await;
    let old = nodes.iter().find(|n| n.id == leader).unwrap();
    let followers: Vec<String> = nodes
        .iter()
        .filter(|n| n.id != leader)
        .map(|n| n.address.clone())
        .collect();

    // One writer talks to the leader first (it knows the others too), one
    // only to the followers.
    let mut leader_first = vec![old.address.clone()];
    leader_first.extend(followers.iter().cloned());
    let stop = Arc::new(AtomicBool::new(false));
    let through_leader = writer(
        cluster.client(&leader_first).await,
        "leader",
        Arc::clone(&stop),
    );
    let through_followers = writer(
        cluster.client(&followers).await,
        "followers",
        Arc::clone(&stop),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let fault = Instant::now();
    signal(old, "-STOP");
    tokio::time::sleep(FAILOVER).await;

    // A new client listing the paused node first does not wait out its
    // handshake (2 s) before it tries the others.
    let dialed = Instant::now();
    let fresh = cluster.client(&leader_first).await;
    let took = dialed.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "connecting with a paused member first took {took:?}"
    );
    fresh.status().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(took)).await;

    // Resumed, it hears of the new term and follows; a write sent through
    // it alone is forwarded to the new leader and applied once.
    let resumed = Instant::now();
    signal(old, "-CONT");
    let alone = cluster.client(std::slice::from_ref(&old.address)).await;
    let m = alone.map::<String, Json>("load").await.unwrap();
    let (_, version) = m
        .insert("after".into(), Json(serde_json::json!(0)))
        .await
        .unwrap();
    let s = alone.status().await.unwrap();
    assert_eq!(s.node, leader);
    assert_ne!(
        group(&s, "load").unwrap().leader,
        Some(leader),
        "the resumed node still leads"
    );
    until("the resumed node to apply the write", async || {
        let s = alone.status().await.ok()?;
        (group(&s, "load")?.applied >= version).then_some(())
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    let mut acked = through_leader.await.unwrap();
    let followers_acked = through_followers.await.unwrap();
    let stalls = [
        (
            "through the old leader",
            longest_stall(&acked, fault, resumed),
        ),
        (
            "through the followers",
            longest_stall(&followers_acked, fault, resumed),
        ),
    ];
    for (path, stall) in stalls {
        let stall =
            stall.unwrap_or_else(|| panic!("no write {path} was acknowledged after the pause"));
        eprintln!("writes {path} stopped for {stall:?} after the leader was paused");
        assert!(
            stall <= FAILOVER,
            "writes {path} stopped for {stall:?} after the leader was paused"
        );
    }

    // Nothing acknowledged is missing.
    acked.extend(followers_acked);
    let present = keys(&m).await;
    let lost: Vec<&String> = acked
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !present.contains(*k))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_of_three_voters_stopped_writes_and_reads_fail_with_no_quorum_in_time() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let admin = cluster.client(&addresses).await;
    let m = admin.map::<String, Json>("m").await.unwrap();
    m.insert("k".into(), Json(serde_json::json!(1)))
        .await
        .unwrap();
    on_three_voters(&admin, "m").await;
    let local_k = || cluster.command(&addresses[0], &["get", "m", "k", "--local"]);
    until("the first member to apply k", async || {
        (stdout(&local_k()).trim() == "1").then_some(())
    })
    .await;
    signal(&nodes[1], "-STOP");
    signal(&nodes[2], "-STOP");
    // Past an election timeout: a write sent at the very moment of the
    // fault may have reached a leader that still held its lease, and is
    // then rightly reported as maybe applied.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The stopped members first: dialing them must not hold the command.
    let all = format!("{},{},{}", addresses[1], addresses[2], addresses[0]);
    let timeout = Duration::from_secs(2);
    for args in [
        ["put", "m", "k", "2"].as_slice(),
        ["get", "m", "k"].as_slice(),
    ] {
        for at in [addresses[0].as_str(), all.as_str()] {
            let started = Instant::now();
            let mut command = args.to_vec();
            command.extend(["--timeout", "2s"]);
            let out = cluster.command(at, &command);
            let took = started.elapsed();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(4), "{args:?} at {at}: {err}");
            assert!(err.contains("no quorum: 1 of 3 voters"), "{err}");
            if args[0] == "get" {
                // A read that needs the leader says what reads without.
                assert!(err.contains("--local reads"), "{err}");
            }
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                took <= timeout + Duration::from_secs(1),
                "{args:?} at {at} took {took:?}"
            );
        }
    }
    // And that read works, from the member's own copy.
    let out = local_k();
    assert_eq!(stdout(&out).trim(), "1", "{}", stderr(&out));
    // Listing collections reads the record: without a leader to ask, the
    // node answers with its own copy, in time.
    let out = cluster.command(&addresses[0], &["collections", "--timeout", "2s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("m ")),
        "{}",
        stdout(&out)
    );
    // health names the collection that cannot take writes, whether its
    // leader kept leading alone or there is none.
    let out = cluster.command(&addresses[0], &["health"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("\"m\" has no quorum: its leader") || text.contains("\"m\" has no leader"),
        "{text}"
    );
    signal(&nodes[1], "-CONT");
    signal(&nodes[2], "-CONT");
}
