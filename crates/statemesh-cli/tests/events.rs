//! `statemesh event` processes sending JSON events to a 3-node cluster of
//! node processes: applied in one order on every replica, each sender
//! getting its own answer, a refusal reaching its sender and changing
//! nothing.

mod common;

use common::{BIN, Cluster, stderr, stdout, three, until};
use statemesh::collections::{MapAnswer, MapQuery};
use statemesh::hooks::Hooked;
use statemesh::{Consistency, Json};
use statemesh_cli::kinds::JsonEvents;
use std::process::Command;

const SENDERS: i64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_several_processes_apply_in_one_order_everywhere() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let certs = cluster.certs();
    let send = |address: &str, event: &str| {
        Command::new(BIN)
            .args(["event", "counter", event, "--addr", address])
            .arg("--certs")
            .arg(&certs)
            .output()
            .unwrap()
    };
    // The collection exists before the concurrent senders race to make it.
    let first = send(
        &nodes[0].address,
        r#"{"op":"put","key":"note","value":"start"}"#,
    );
    assert!(first.status.success(), "{}", stderr(&first));

    let children: Vec<_> = (0..SENDERS)
        .map(|i| {
            Command::new(BIN)
                .args([
                    "event",
                    "counter",
                    r#"{"op":"add","key":"n","by":1}"#,
                    "--addr",
                ])
                .arg(&nodes[i as usize % 3].address)
                .arg("--certs")
                .arg(&certs)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut answers: Vec<(u64, i64)> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
            (
                v["version"].as_u64().unwrap(),
                v["output"].as_i64().unwrap(),
            )
        })
        .collect();
    // One order: sorted by version, the sums each sender saw count up by
    // one; so every sender got its own result.
    answers.sort_unstable();
    let sums: Vec<i64> = answers.iter().map(|&(_, n)| n).collect();
    assert_eq!(sums, (1..=SENDERS).collect::<Vec<_>>(), "{answers:?}");

    // A refused event reaches its sender and changes nothing.
    let refused = send(
        &nodes[1].address,
        r#"{"op":"move","from":"n","to":"m","amount":100}"#,
    );
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains(&format!("holds {SENDERS}, less than 100")),
        "{err}"
    );
    let bad = send(&nodes[2].address, "{not json");
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("is not JSON"), "{}", stderr(&bad));

    // A mirror process prints the state the events made.
    let mirror = Command::new(BIN)
        .args([
            "mirror", "counter", "--kind", "events", "--count", "0", "--addr",
        ])
        .arg(&nodes[2].address)
        .arg("--certs")
        .arg(&certs)
        .output()
        .unwrap();
    assert!(mirror.status.success(), "{}", stderr(&mirror));
    let printed = stdout(&mirror);
    assert!(
        printed.contains(&format!(r#""key":"n","value":{SENDERS}}}"#)),
        "{printed}"
    );
    assert!(
        printed.contains(r#""key":"note","value":"start""#),
        "{printed}"
    );

    // Every replica holds the same counter, and no "m".
    let hooked = Hooked::new(JsonEvents).unwrap();
    for node in &nodes {
        let client = cluster.client(std::slice::from_ref(&node.address)).await;
        let counter = client
            .open_with("counter", &hooked)
            .await
            .unwrap()
            .with_consistency(Consistency::Local);
        until(&format!("{} to apply every event", node.name), async || {
            let (MapAnswer::Value(n), _) = counter.query(MapQuery::Get("n".into())).await.ok()?
            else {
                return None;
            };
            let (MapAnswer::Value(m), _) = counter.query(MapQuery::Get("m".into())).await.ok()?
            else {
                return None;
            };
            (n == Some(Json(SENDERS.into())) && m.is_none()).then_some(())
        })
        .await;
    }
}
