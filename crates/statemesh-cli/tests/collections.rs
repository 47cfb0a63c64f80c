//! Collections are created on purpose: reading one that does not exist is
//! an error that creates nothing on any node.

mod common;

use common::{Cluster, stderr, three};
use std::path::Path;
use std::time::Duration;

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
    let status = common::stdout(&c.command(&a, &["status"]));
    assert!(!status.contains("nosuch"), "{status}");
}
