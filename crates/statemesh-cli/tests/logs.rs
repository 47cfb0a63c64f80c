//! What an operator reads: a dead peer costs the survivors a line when it
//! goes and a reminder a minute, not a line per heartbeat; a misspelt
//! `STATEMESH_LOG` is refused at start.

mod common;

use common::{BIN, Cluster, on_three_voters, three};
use statemesh::Json;
use std::process::Command;
use std::time::Duration;

/// The survivors' log lines since `offsets`, per survivor.
fn new_lines(cluster: &Cluster, names: &[String], offsets: &[usize]) -> Vec<Vec<String>> {
    names
        .iter()
        .zip(offsets)
        .map(|(name, &from)| {
            let text = std::fs::read_to_string(cluster.path().join(format!("{name}.log"))).unwrap();
            text[from..].lines().map(str::to_owned).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_peer_costs_the_survivors_a_few_lines_a_minute() {
    let cluster = Cluster::new();
    let mut nodes = three(&cluster).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let client = cluster.client(&addresses).await;
    let map = client.map::<String, Json>("settings").await.unwrap();
    map.insert("a".into(), Json(serde_json::json!(1)))
        .await
        .unwrap();
    on_three_voters(&client, "settings").await;

    let dead = nodes.pop().unwrap();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let offsets: Vec<usize> = names
        .iter()
        .map(|n| {
            std::fs::read_to_string(cluster.path().join(format!("{n}.log")))
                .unwrap()
                .len()
        })
        .collect();
    drop(dead);
    // A minute without it, with writes going on (the survivors are a
    // quorum).
    for i in 0..30 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        map.insert(format!("k{i}"), Json(serde_json::json!(i)))
            .await
            .unwrap();
    }
    for (name, lines) in names.iter().zip(new_lines(&cluster, &names, &offsets)) {
        assert!(
            lines.len() <= 10,
            "{name} wrote {} lines in the minute:\n{}",
            lines.len(),
            lines.join("\n")
        );
        let reported = lines
            .iter()
            .filter(|l| l.contains("is not answering"))
            .count();
        assert_eq!(reported, 1, "{name}:\n{}", lines.join("\n"));
        assert!(
            lines.iter().all(|l| !l.contains('\x1b')),
            "colour in a log file:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn a_misspelt_log_level_is_refused_at_start() {
    let out = Command::new(BIN)
        .args([
            "status",
            "--plaintext",
            "--token",
            "t",
            "--addr",
            "127.0.0.1:1",
        ])
        .env("STATEMESH_LOG", "degub")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("\"degub\" is not a level"), "{e}");
}
