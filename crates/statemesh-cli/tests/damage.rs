//! A member whose copy of a collection is damaged on disk: it says so once
//! with the cure, `health` fails naming it, and the cure (remove the node,
//! empty its data directory, join again) brings the copy back from the
//! other members.

mod common;

use common::{Cluster, on_three_voters, stderr, stdout, three, until};
use statemesh::Json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The segment of the group log under `dir` that holds `needle`.
fn segment_holding(dir: &Path, needle: &[u8]) -> PathBuf {
    for group in std::fs::read_dir(dir.join("groups")).unwrap() {
        for file in std::fs::read_dir(group.unwrap().path().join("log")).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "wal") {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return path;
                }
            }
        }
    }
    panic!("no segment under {} holds {needle:?}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_is_reported_once_and_cured_by_joining_again() {
    let c = Cluster::new();
    let mut nodes = three(&c).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let client = c.client(&addresses).await;
    let map = client.map::<String, Json>("cfg").await.unwrap();
    for i in 0..20 {
        map.insert(format!("key-{i:02}"), Json(serde_json::json!(i)))
            .await
            .unwrap();
    }
    let leader = on_three_voters(&client, "cfg").await;
    until("the third copy caught up", async || {
        let s = client.status().await.ok()?;
        let g = common::group(&s, "cfg")?;
        (g.applied >= leader.applied).then_some(())
    })
    .await;
    let a = addresses[0].clone();
    // Let the third node apply everything before it is stopped.
    until("n3 holds every key", async || {
        let out = c.command(&nodes[2].address, &["status", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).ok()?;
        let lag = v["members"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == nodes[2].id)?["groups"]["cfg"]["lag"]
            .as_u64()?;
        (lag == 0).then_some(())
    })
    .await;

    // A byte of a record in the middle of n3's log of "cfg" flipped.
    let damaged = nodes[2].id;
    nodes[2].kill();
    let segment = segment_holding(&c.path().join("n3"), b"key-10");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(6).position(|w| w == b"key-10").unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    let mut restarted = c.start("n3", "127.0.0.1:0", &[]);
    let cure = format!("statemesh members remove {damaged}");
    let problem = until("health to name the damaged copy", async || {
        let out = c.command(&a, &["health"]);
        let text = stdout(&out);
        (out.status.code() == Some(1) && text.contains("cannot host \"cfg\"")).then_some(text)
    })
    .await;
    assert!(problem.contains("corrupt record"), "{problem}");
    assert!(problem.contains(&cure), "{problem}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = std::fs::read_to_string(c.path().join("n3.log")).unwrap();
    assert_eq!(log.matches("cannot host").count(), 1, "{log}");
    assert!(log.contains(&cure), "{log}");

    // The cure: remove the node (it exits), empty its directory, join.
    let out = c.command(&a, &["members", "remove", &damaged.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut child = restarted.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the removed node did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(c.path().join("n3")).unwrap();
    let fresh = c.start("n3", "127.0.0.1:0", &["--join", &a]);
    until("health after the cure", async || {
        c.command(&a, &["health"]).status.success().then_some(())
    })
    .await;
    until("the fresh copy to catch up", async || {
        let out = c.command(&a, &["status", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).ok()?;
        let copy = v["members"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == fresh.id)?["groups"]["cfg"]
            .clone();
        (copy["applied"].as_u64()? >= leader.applied && copy["lag"] == 0).then_some(())
    })
    .await;
    assert_eq!(keys_on(&c, &fresh.address).len(), 20);
}

/// The keys of "cfg" as the node at `address` holds them.
fn keys_on(c: &Cluster, address: &str) -> Vec<String> {
    let out = c.command(address, &["list", "cfg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}
