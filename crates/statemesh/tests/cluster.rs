//! In-process clusters: replication, forwarding, leader failure, restart,
//! and refusal of a mismatched type.

mod common;

use common::memory::open_nodes;
use statemesh::{
    Cell, CellReader, GroupError, LogStorage, MemoryNetwork, Network, Node, NodeOptions,
};
use std::sync::Arc;
use std::time::Duration;

async fn open_cells(nodes: &[Node], name: &str, voters: &[u64]) -> Vec<Cell<u64>> {
    let mut cells = Vec::new();
    for n in nodes {
        cells.push(Cell::<u64>::open(n, name, voters).await.unwrap());
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_any_replica_reaches_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let nodes = open_nodes(&net, dir.path(), &[1, 2, 3]);
    let cells = open_cells(&nodes, "c", &[1, 2, 3]).await;
    let mut last = 0;
    for (i, cell) in cells.iter().enumerate() {
        // Followers forward to the leader; every write reports what it
        // replaced.
        let (prev, v) = cell.write(i as u64 + 10).await.unwrap();
        assert_eq!(prev, if i == 0 { None } else { Some(i as u64 + 9) });
        assert!(v > last, "versions grow: {v} after {last}");
        last = v;
    }
    for cell in &cells {
        cell.when().reaches(last).await;
        assert_eq!(cell.read(), Some(12));
        assert_eq!(cell.read_linearizable().await.unwrap(), Some(12));
    }
    let (r, _) = cells[1].compare_exchange(Some(5), Some(6)).await.unwrap();
    assert_eq!(r, Err(Some(12)));
    let (r, _) = cells[2].compare_exchange(Some(12), Some(13)).await.unwrap();
    assert_eq!(r, Ok(Some(12)));
    let (prev, _) = cells[0].clear().await.unwrap();
    assert_eq!(prev, Some(13));
    assert_eq!(cells[1].read_linearizable().await.unwrap(), None);
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_follows_without_voting() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let nodes = open_nodes(&net, dir.path(), &[1, 2, 3, 4]);
    let cells = open_cells(&nodes[..3], "c", &[1, 2, 3]).await;
    let (_, v) = cells[0].write(7).await.unwrap();
    let reader = CellReader::<u64>::open(&nodes[3], "c", &[1, 2, 3])
        .await
        .unwrap();
    reader.when().reaches(v).await;
    assert_eq!(reader.read(), Some(7));
    // With two of three voters gone there is no quorum, learner or not.
    net.isolate(2);
    net.isolate(3);
    let cell = cells[0].clone();
    let stalled = tokio::time::timeout(Duration::from_secs(2), cell.write(8)).await;
    assert!(
        stalled.is_err(),
        "a write committed without a quorum of voters"
    );
    net.heal();
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_leader_and_a_full_restart() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let mut nodes = open_nodes(&net, dir.path(), &[1, 2, 3]);
    let cells = open_cells(&nodes, "c", &[1, 2, 3]).await;
    let (_, acked) = cells[0].write(42).await.unwrap();
    let leader = cells[0].group().leader().expect("a leader after a commit");
    let at = nodes.iter().position(|n| n.id() == leader).unwrap();
    nodes.remove(at).shutdown().await;
    let cells: Vec<_> = cells
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| i != at)
        .map(|(_, c)| c)
        .collect();
    // The other two elect a leader and keep the acknowledged write.
    assert_eq!(cells[0].read_linearizable().await.unwrap(), Some(42));
    let (prev, v3) = cells[1].write(43).await.unwrap();
    assert_eq!(prev, Some(42));
    assert!(v3 > acked);
    drop(cells);
    for n in nodes {
        n.shutdown().await;
    }
    // Everyone restarts from disk.
    let nodes = open_nodes(&net, dir.path(), &[1, 2, 3]);
    let cells = open_cells(&nodes, "c", &[1, 2, 3]).await;
    for c in &cells {
        assert_eq!(c.read_linearizable().await.unwrap(), Some(43));
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let nodes = open_nodes(&net, dir.path(), &[1, 2, 3]);
    let cells = open_cells(&nodes[..2], "c", &[1, 2, 3]).await;
    let err = Cell::<String>::open(&nodes[2], "c", &[1, 2, 3])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GroupError::Mismatch { name, .. } if name == "c"),
        "{err}"
    );
    // The two that agree still form a quorum of three.
    let (_, v) = cells[0].write(5).await.unwrap();
    cells[1].when().reaches(v).await;
    assert_eq!(cells[1].read(), Some(5));
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_on_memory_logs_replicates_and_restarts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let options = NodeOptions {
        log: LogStorage::Memory,
        snapshot_every: 10,
        keep_after_snapshot: 2,
        ..NodeOptions::default()
    };
    let open = |options: &NodeOptions| -> Vec<Node> {
        [1, 2, 3]
            .iter()
            .map(|&id| {
                let n: Arc<dyn Network> = net.clone();
                Node::open(id, dir.path().join(format!("n{id}")), n, options.clone()).unwrap()
            })
            .collect()
    };
    let nodes = open(&options);
    let cells = open_cells(&nodes, "c", &[1, 2, 3]).await;
    let mut last = 0;
    for i in 0..30 {
        last = cells[i % 3].write(i as u64).await.unwrap().1;
    }
    for c in &cells {
        c.when().reaches(last).await;
        assert_eq!(c.read(), Some(29));
    }
    // Snapshots are files even with memory logs (built in the background)...
    let mut waited = 0;
    while !cells.iter().all(|c| c.group().status().snapshot.is_some()) {
        assert!(
            waited < 100,
            "no snapshot after 30 writes with snapshot_every 10"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    drop(cells);
    for n in nodes {
        n.shutdown().await;
    }
    // ...but without the log and votes they were built from, a restarted
    // group must not resume from them: it starts empty.
    let nodes = open(&options);
    let cells = open_cells(&nodes, "c", &[1, 2, 3]).await;
    for c in &cells {
        assert_eq!(c.read(), None);
        assert_eq!(c.group().status().snapshot, None);
    }
    let (previous, _) = cells[0].write(7).await.unwrap();
    assert_eq!(previous, None);
    for n in nodes {
        n.shutdown().await;
    }
}
