//! `Large` values in replicated collections: past the threshold they live
//! in the node's cache under a memory budget, snapshots refer to them by
//! key, a learner receives them inside a snapshot, and a damaged snapshot
//! or a missing value is a typed error.

mod common;

use common::memory::open_node;
use statemesh::{GroupError, Large, LargeValues, Map, MapReader, MemoryNetwork, NodeOptions};
use statemesh_test_support::eventually_async;
use std::path::{Path, PathBuf};
use std::time::Duration;

const THRESHOLD: usize = 1 << 10;
const BUDGET: usize = 512 << 10;
const VALUE: usize = 16 << 10;

type Blobs = Map<u32, Large<Vec<u8>>>;

fn options() -> NodeOptions {
    NodeOptions {
        snapshot_every: 50,
        keep_after_snapshot: 10,
        large_values: Some(LargeValues {
            threshold: THRESHOLD,
            memory_budget: BUDGET,
        }),
        ..NodeOptions::default()
    }
}

/// A value of `len` bytes that says which key and generation it is.
fn value(key: u32, generation: u8, len: usize) -> Vec<u8> {
    let mut v = vec![generation; len];
    v[..4].copy_from_slice(&key.to_le_bytes());
    v
}

fn large(v: &[u8]) -> Large<Vec<u8>> {
    Large::new(&v.to_vec()).unwrap()
}

/// Every `*.blob` file under `dir`.
fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "blob") {
                found.push(p);
            }
        }
    }
    found
}

fn snapshot_file(node_dir: &Path) -> PathBuf {
    let groups = node_dir.join("groups");
    let group = std::fs::read_dir(&groups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    group.join("snapshot")
}
/// Small inline writes until every replica has a snapshot at or past
/// `version`, so the files reflect everything written before it.
async fn snapshot_past(maps: &[Blobs], version: u64) {
    for key in 1_000_000..1_000_400 {
        if maps
            .iter()
            .all(|m| m.group().status().snapshot.is_some_and(|s| s >= version))
        {
            return;
        }
        maps[0].insert(key, large(b"small")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no snapshot past version {version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_larger_than_its_memory_budget_replicates_snapshots_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3];
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, options()))
        .collect();
    let mut maps = Vec::new();
    for n in &nodes {
        maps.push(Blobs::open(n, "blobs", &voters).await.unwrap());
    }

    // 300 values of 16 KiB: 4.7 MiB per replica against a 512 KiB budget.
    let mut expected = std::collections::BTreeMap::new();
    for k in 0..300u32 {
        let v = value(k, 1, VALUE);
        maps[k as usize % 3].insert(k, large(&v)).await.unwrap();
        expected.insert(k, v);
    }
    maps[0].insert(5_000, large(b"tiny")).await.unwrap();
    expected.insert(5_000, b"tiny".to_vec());

    // Overwrites answer with the previous value; removals with the removed
    // one; compare-exchange compares by content without reading the disk.
    for k in 0..50u32 {
        let v = value(k, 2, VALUE);
        let (previous, _) = maps[1].insert(k, large(&v)).await.unwrap();
        assert_eq!(previous.unwrap().load().await.unwrap(), value(k, 1, VALUE));
        expected.insert(k, v);
    }
    for k in 250..300u32 {
        let (removed, _) = maps[2].remove(k).await.unwrap();
        assert_eq!(removed.unwrap().load().await.unwrap(), value(k, 1, VALUE));
        expected.remove(&k);
    }
    let (swapped, _) = maps[0]
        .compare_exchange(
            60,
            Some(large(&value(60, 1, VALUE))),
            Some(large(&value(60, 3, VALUE))),
        )
        .await
        .unwrap();
    assert!(swapped.is_ok());
    expected.insert(60, value(60, 3, VALUE));
    let (refused, last) = maps[0]
        .compare_exchange(61, Some(large(&value(61, 9, VALUE))), None)
        .await
        .unwrap();
    assert_eq!(
        refused.unwrap_err().unwrap().load().await.unwrap(),
        value(61, 1, VALUE)
    );

    // Every replica holds the same content; large values are in the cache,
    // small ones inline, and the cache keeps to its budget by spilling.
    for (m, n) in maps.iter().zip(&nodes) {
        m.when().reaches(last).await;
        assert_eq!(m.len(), expected.len());
        for (k, v) in &expected {
            let got = m.get(k).unwrap();
            assert_eq!(got.is_cached(), v.len() > THRESHOLD, "key {k}");
            assert_eq!(&got.load().await.unwrap(), v, "key {k} on node {}", n.id());
        }
        eventually_async("the cache shrinking to its budget", async || {
            n.large_values_stats().unwrap().resident_bytes <= BUDGET
        })
        .await;
        let stats = n.large_values_stats().unwrap();
        assert!(stats.evictions > 0, "{stats:?}");
        assert!(
            stats.loads > 0,
            "reading evicted values loads them: {stats:?}"
        );
    }

    // Snapshots refer to persisted values instead of copying them: one
    // blob per live large value, none for those overwritten or removed.
    snapshot_past(&maps, last).await;
    let live_large = expected.values().filter(|v| v.len() > THRESHOLD).count();
    for id in voters {
        let node_dir = dir.path().join(format!("n{id}"));
        eventually_async("the clean-up of values no snapshot needs", async || {
            blob_files(&node_dir.join("values").join("persist")).len() == live_large
        })
        .await;
        let snapshot_len = std::fs::metadata(snapshot_file(&node_dir)).unwrap().len();
        assert!(
            snapshot_len < (live_large * VALUE / 10) as u64,
            "the snapshot copies the values: {snapshot_len} bytes"
        );
    }

    // A full restart registers the values without reading any of them.
    drop(maps);
    for n in nodes {
        n.shutdown().await;
    }
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, options()))
        .collect();
    let mut maps = Vec::new();
    for n in &nodes {
        maps.push(Blobs::open(n, "blobs", &voters).await.unwrap());
    }
    for (m, n) in maps.iter().zip(&nodes) {
        m.when().reaches(last).await;
        let stats = n.large_values_stats().unwrap();
        assert_eq!((stats.loads, stats.resident_bytes), (0, 0), "{stats:?}");
        for (k, v) in &expected {
            assert_eq!(&m.get(k).unwrap().load().await.unwrap(), v, "key {k}");
        }
    }
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_learner_receives_large_values_inside_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let voters = [1, 2, 3];
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| open_node(&net, dir.path(), id, options()))
        .collect();
    let mut maps = Vec::new();
    for n in &nodes {
        maps.push(Blobs::open(n, "blobs", &voters).await.unwrap());
    }
    let mut last = 0;
    for k in 0..200u32 {
        last = maps[0]
            .insert(k, large(&value(k, 1, VALUE)))
            .await
            .unwrap()
            .1;
    }
    snapshot_past(&maps, last).await;
    for m in &maps {
        assert!(m.group().status().purged.is_some());
    }

    let learner = open_node(&net, dir.path(), 4, options());
    let reader = MapReader::<u32, Large<Vec<u8>>>::open(&learner, "blobs", &voters)
        .await
        .unwrap();
    reader.when().reaches(maps[0].version()).await;
    // The leader's log is purged, so only a snapshot can have brought it
    // here; openraft reports the snapshot just after the state is restored.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reader.group().status().snapshot.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot installed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for k in 0..200u32 {
        let got = reader.get(&k).unwrap();
        assert!(got.is_cached());
        assert_eq!(got.load().await.unwrap(), value(k, 1, VALUE), "key {k}");
    }
    // The installed snapshot's values are persisted on the learner too.
    assert_eq!(
        blob_files(&dir.path().join("n4").join("values").join("persist")).len(),
        200
    );
    learner.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_or_a_missing_value_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let node = open_node(&net, dir.path(), 1, options());
    let map = Blobs::open(&node, "blobs", &[1]).await.unwrap();
    let mut last = 0;
    for k in 0..30u32 {
        last = map.insert(k, large(&value(k, 1, VALUE))).await.unwrap().1;
    }
    snapshot_past(std::slice::from_ref(&map), last).await;
    let version = map.version();
    drop(map);
    node.shutdown().await;

    let node_dir = dir.path().join("n1");
    let path = snapshot_file(&node_dir);
    let good = std::fs::read(&path).unwrap();
    let reopen = || async {
        let node = open_node(&net, dir.path(), 1, options());
        let r = Blobs::open(&node, "blobs", &[1]).await;
        (node, r)
    };

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let truncated = good[..good.len() - 7].to_vec();
    let mut wrong_magic = good.clone();
    wrong_magic[7] = 0x7f;
    for (what, bytes) in [
        ("a flipped bit", flipped),
        ("a truncated file", truncated),
        ("another format version", wrong_magic),
        ("an empty file", Vec::new()),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let (node, r) = reopen().await;
        match r {
            Err(GroupError::CorruptSnapshot { path: p, reason }) => {
                assert_eq!(p, path, "{what}");
                assert!(!reason.is_empty());
            }
            other => panic!("{what}: {other:?}"),
        }
        node.shutdown().await;
    }

    // A value the snapshot refers to has gone from the cache's store.
    std::fs::write(&path, &good).unwrap();
    let blobs = blob_files(&node_dir.join("values").join("persist"));
    assert_eq!(blobs.len(), 30);
    let kept = std::fs::read(&blobs[0]).unwrap();
    std::fs::remove_file(&blobs[0]).unwrap();
    let (node, r) = reopen().await;
    match r {
        Err(GroupError::CorruptSnapshot { reason, .. }) => {
            assert!(reason.contains("no blob"), "{reason}");
        }
        other => panic!("a missing value: {other:?}"),
    }
    node.shutdown().await;
    // Nothing was lost by the failed opens: put the blob back and all is there.
    std::fs::write(&blobs[0], kept).unwrap();
    let (node, r) = reopen().await;
    let map = r.unwrap();
    map.when().reaches(version).await;
    for k in 0..30u32 {
        assert_eq!(
            map.get(&k).unwrap().load().await.unwrap(),
            value(k, 1, VALUE)
        );
    }
    drop(map);
    node.shutdown().await;
}
