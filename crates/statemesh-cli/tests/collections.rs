//! Collections are created on purpose: reading one that does not exist is
//! an error that creates nothing on any node; `create`, `collections` and
//! `drop` make, list and remove them (files and all) on every node.

mod common;

use common::{Cluster, stderr, stdout, three};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes under `dir`, every file counted.
fn bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_an_unknown_collection_creates_nothing() {
    let c = Cluster::new();
    let nodes = three(&c).await;
    let a = nodes[1].address.clone();
    let dirs: Vec<_> = ["n1", "n2", "n3"].map(|n| c.path().join(n)).into();
    let before: Vec<u64> = dirs.iter().map(|d| bytes(d)).collect();

    for args in [
        &["get", "nosuch", "k"][..],
        &["list", "nosuch"],
        &["cell", "get", "nosuch"],
    ] {
        let out = c.command(&a, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no collection named \"nosuch\""),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Long enough for every node to have opened a collection the cluster
    // had recorded.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<u64> = dirs.iter().map(|d| bytes(d)).collect();
    assert_eq!(before, after, "the data directories changed size");
    let status = stdout(&c.command(&a, &["status"]));
    assert!(!status.contains("nosuch"), "{status}");
}

/// The group directories of node `dir`.
fn groups(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("groups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_are_created_listed_and_dropped_from_every_node() {
    let c = Cluster::new();
    let mut nodes = three(&c).await;
    let a = nodes[0].address.clone();
    let dirs: Vec<_> = ["n1", "n2", "n3"].map(|n| c.path().join(n)).into();
    let before: Vec<_> = dirs.iter().map(|d| groups(d)).collect();

    let out = c.command(&a, &["create", "map", "m1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("created \"m1\""), "{}", stdout(&out));
    let out = c.command(&a, &["create", "map", "m1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"m1\" already exists (a map (string → JSON))"),
        "{}",
        stderr(&out)
    );
    let out = c.command(&a, &["create", "map", "m1", "--if-not-exists"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = c.command(&a, &["create", "cell", "m1", "--if-not-exists"]);
    assert_eq!(out.status.code(), Some(1), "another kind is no excuse");

    // An empty collection is cheap on every node.
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let client = c.client(&addresses).await;
    common::on_three_voters(&client, "m1").await;
    let mut made = Vec::new();
    for (dir, before) in dirs.iter().zip(&before) {
        let new: Vec<_> = groups(dir).difference(before).cloned().collect();
        assert_eq!(new.len(), 1, "{new:?}");
        let group = dir.join("groups").join(&new[0]);
        let spent = bytes(&group);
        assert!(spent <= 1 << 20, "an empty collection takes {spent} bytes");
        made.push(group);
    }

    let out = c.command(&a, &["put", "m1", "k", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = c.command(&a, &["collections", "--output", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m1 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "m1")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(m1["kind"], "a map (string → JSON)");
    assert_eq!(m1["entries"], 1);
    assert!(m1["version"].as_u64().unwrap() >= 1, "{m1}");
    assert!(m1["disk_bytes"].as_u64().unwrap() > 0, "{m1}");
    let table = stdout(&c.command(&a, &["collections"]));
    assert!(
        table.contains("m1") && table.contains("map (string → JSON)"),
        "{table}"
    );

    // A mirror follows it; a node is down while it is dropped.
    let certs = c.certs();
    let mut mirror = Command::new(common::BIN)
        .args(["mirror", "m1", "--addr", &a, "--certs"])
        .arg(&certs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(mirror.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"key\":\"k\""), "{first}");
    let n3 = nodes[2].address.clone();
    nodes[2].kill();

    let out = c.command(&a, &["drop", "m1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stopped = wait_exit(&mut mirror, Duration::from_secs(10));
    assert_eq!(stopped.code(), Some(1));
    let mut why = String::new();
    mirror
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut why)
        .unwrap();
    assert!(why.contains("\"m1\" was dropped"), "{why}");
    for group in &made[..2] {
        common::until("the files deleted", async || {
            (!group.exists()).then_some(())
        })
        .await;
    }
    let out = c.command(&a, &["get", "m1", "k"]);
    assert!(
        stderr(&out).contains("no collection named \"m1\""),
        "{}",
        stderr(&out)
    );
    let out = c.command(&a, &["drop", "m1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no collection named \"m1\""),
        "{}",
        stderr(&out)
    );

    // The node that was down deletes its copy when it comes back.
    assert!(made[2].exists());
    nodes[2] = c.start("n3", &n3, &[]);
    common::until("the files deleted on the node that was down", async || {
        (!made[2].exists()).then_some(())
    })
    .await;
    // Made again, it starts empty.
    let out = c.command(&a, &["create", "map", "m1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = c.command(&a, &["list", "m1"]);
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
}

/// Waits for `child` to exit (killing it after `limit`).
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
