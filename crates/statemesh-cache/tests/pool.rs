//! The pool end to end on a real store directory: the scenarios of
//! file_backed's own test suite, written against this API, and more.

mod common;

use common::trace::{lru_hit_ratio, zipf_trace};
use common::{Gate, GatedStore, files_under, object, persisted_path, spill_path};
use statemesh_cache::{
    CacheError, FsStore, Handle, Key, Location, Pool, PoolOptions, Postcard, Raw, StoreError,
};
use statemesh_test_support::eventually;
use std::path::Path;
use std::time::Duration;

const OBJ: usize = 1000;

/// Writers here never reach the pool's limit (its slack is 64 objects),
/// so only the background thread evicts: these tests look at what it does.
/// The limit itself is tested in `tests/budget.rs`.
fn pool(root: &Path, budget_objects: usize) -> Pool<Vec<u8>> {
    Pool::with_options(
        FsStore::open(root).unwrap(),
        Raw,
        Vec::len,
        PoolOptions::new(budget_objects * OBJ).slack(64 * OBJ),
    )
    .unwrap()
}

/// A pool of one object's budget whose spill writes wait at a closed gate.
fn gated_pool(root: &Path) -> (Pool<Vec<u8>>, std::sync::Arc<Gate>) {
    let gate = Gate::closed();
    let store = GatedStore {
        inner: FsStore::open(root).unwrap(),
        gate: gate.clone(),
    };
    let options = PoolOptions::new(OBJ).slack(64 * OBJ);
    (
        Pool::with_options(store, Raw, Vec::len, options).unwrap(),
        gate,
    )
}

fn loc(name: &str) -> Location {
    Location::new(name).unwrap()
}

#[test]
fn evicted_objects_are_stored_once_and_reload_intact() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 3);
    let handles: Vec<_> = (0..10)
        .map(|i| pool.insert(object(i, OBJ)).unwrap())
        .collect();
    pool.wait_finished();
    let stats = pool.stats();
    assert!(stats.resident_bytes <= 3 * OBJ, "{stats:?}");
    assert_eq!(stats.spills, 7, "{stats:?}");
    assert_eq!(stats.loads, 0);
    assert_eq!(files_under(&dir.path().join("spill")).len(), 7);
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(*h.blocking_load().unwrap(), object(i as u64, OBJ));
    }
    pool.wait_finished();
    let stats = pool.stats();
    assert!(stats.loads >= 7, "{stats:?}");
    // Each object is written at most once: the reloaded ones not again
    // (their blob is there), so there is one spill per blob.
    assert!(stats.spills <= 10, "{stats:?}");
    assert_eq!(
        stats.spills as usize,
        files_under(&dir.path().join("spill")).len(),
        "{stats:?}"
    );
    assert!(stats.resident_bytes <= 3 * OBJ, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_loads_share_one_read_and_work_on_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let a = pool.insert(object(1, OBJ)).unwrap();
    let _b = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    assert!(!a.is_resident());
    let loads: Vec<_> = (0..8)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.load().await.map(|g| g.clone()) })
        })
        .collect();
    for l in loads {
        assert_eq!(l.await.unwrap().unwrap(), object(1, OBJ));
    }
    assert_eq!(pool.stats().loads, 1, "{:?}", pool.stats());
}

/// The evictor runs as soon as a load makes the pool go over budget; the
/// object just read must still reach the callers waiting for it rather
/// than be dropped before they take it (and read again).
#[test]
fn a_loaded_object_reaches_its_caller_before_any_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let handles: Vec<_> = (0..4)
        .map(|i| pool.insert(object(i, OBJ)).unwrap())
        .collect();
    pool.wait_finished();
    for n in 0..300 {
        let i = n % 4;
        let reads = if handles[i].is_resident() { 0 } else { 1 };
        let before = pool.stats().loads;
        assert_eq!(*handles[i].blocking_load().unwrap(), object(i as u64, OBJ));
        assert_eq!(pool.stats().loads - before, reads, "round {n}");
        pool.wait_finished();
    }
}

/// On a skewed trace the pool keeps the objects used again and lets the
/// ones used once pass through: a clearly higher hit ratio than exact LRU
/// with the same budget (S3-FIFO gets close to keeping the most popular
/// objects; LRU keeps the most recent).
#[test]
fn eviction_beats_lru_on_a_zipf_trace() {
    const N: usize = 1000;
    let trace = zipf_trace(N, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), N / 10);
    let handles: Vec<_> = (0..N)
        .map(|i| pool.insert(object(i as u64, OBJ)).unwrap())
        .collect();
    pool.wait_finished();
    let before = pool.stats().loads;
    for &i in &trace {
        drop(handles[i].blocking_load().unwrap());
        pool.wait_finished();
    }
    let ours = 1.0 - (pool.stats().loads - before) as f64 / trace.len() as f64;
    let lru = lru_hit_ratio(&trace, N / 10);
    assert!(ours > lru + 0.03, "hit ratio {ours:.3}, exact LRU {lru:.3}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_loaded_object_reaches_its_task_before_any_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let handles: Vec<_> = (0..4)
        .map(|i| pool.insert(object(i, OBJ)).unwrap())
        .collect();
    pool.wait_finished();
    for n in 0..300 {
        let i = n % 4;
        let reads = if handles[i].is_resident() { 0 } else { 1 };
        let before = pool.stats().loads;
        assert_eq!(*handles[i].load().await.unwrap(), object(i as u64, OBJ));
        assert_eq!(pool.stats().loads - before, reads, "round {n}");
        let p = pool.clone();
        tokio::task::spawn_blocking(move || p.wait_finished())
            .await
            .unwrap();
    }
}

#[test]
fn the_last_handle_dropped_deletes_the_spilled_blob() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let a = pool.insert(object(1, OBJ)).unwrap();
    let b = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    let key = a.key();
    assert!(spill_path(dir.path(), key).exists());
    let a2 = a.clone();
    drop(a);
    pool.wait_finished();
    assert!(spill_path(dir.path(), key).exists(), "a clone still lives");
    drop(a2);
    pool.wait_finished();
    assert!(!spill_path(dir.path(), key).exists());
    drop(b);
    pool.wait_finished();
    assert_eq!(pool.stats().objects, 0);
    assert_eq!(pool.stats().resident_bytes, 0);
    assert!(files_under(&dir.path().join("spill")).is_empty());
}

#[test]
fn dropping_the_pool_finishes_its_deletions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let pool = pool(dir.path(), 1);
        let hs: Vec<_> = (0..20)
            .map(|i| pool.insert(object(i, OBJ)).unwrap())
            .collect();
        pool.wait_finished();
        drop(hs);
    }
    assert!(files_under(&dir.path().join("spill")).is_empty());
}

#[test]
fn register_adds_a_persisted_object_without_loading_it() {
    let dir = tempfile::tempdir().unwrap();
    let docs = loc("docs");
    let key = {
        let pool = pool(dir.path(), 10);
        let h = pool.insert(object(7, OBJ)).unwrap();
        h.blocking_persist(&docs).unwrap();
        h.key()
    };
    let pool = pool(dir.path(), 10);
    assert_eq!(pool.list(&docs).unwrap().keys, vec![key]);
    let h = pool.blocking_register(&docs, key).unwrap();
    assert_eq!(h.key(), key);
    assert!(!h.is_resident());
    assert_eq!(pool.stats().loads, 0);
    // Registering a key the pool holds shares the object.
    let again = pool.blocking_register(&docs, key).unwrap();
    assert_eq!(pool.stats().objects, 1);
    assert_eq!(*again.blocking_load().unwrap(), object(7, OBJ));
    assert_eq!(pool.stats().loads, 1);
    assert!(h.is_resident());
    // Dropping a registered object leaves its persisted blob.
    drop((h, again));
    pool.wait_finished();
    assert!(persisted_path(dir.path(), "docs", key).exists());
    // A key that is not there is a typed error.
    let missing = statemesh_cache::Key::random();
    assert!(matches!(
        pool.blocking_register(&docs, missing),
        Err(CacheError::Store(StoreError::NotFound { .. }))
    ));
}

#[test]
fn persisting_is_idempotent_from_memory_and_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (a_loc, b_loc) = (loc("a"), loc("b"));
    let pool = pool(dir.path(), 1);
    let h = pool.insert(object(1, OBJ)).unwrap();
    h.blocking_persist(&a_loc).unwrap();
    let path = persisted_path(dir.path(), "a", h.key());
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    h.blocking_persist(&a_loc).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        written
    );
    // Evicted (its persisted blob is its copy: no spill written), then
    // persisted elsewhere from disk.
    let _other = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    assert!(!h.is_resident());
    assert!(!spill_path(dir.path(), h.key()).exists());
    h.blocking_persist(&b_loc).unwrap();
    pool.check(&b_loc, h.key()).unwrap();
    assert!(!h.is_resident(), "persisting from disk does not load");
    assert_eq!(*h.blocking_load().unwrap(), object(1, OBJ));
}

#[test]
fn writing_changes_the_key_and_keeps_old_blobs_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let docs = loc("docs");
    let pool = pool(dir.path(), 1);
    let mut h = pool.insert(object(1, OBJ)).unwrap();
    h.blocking_persist(&docs).unwrap();
    let _push = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    let old = h.key();
    {
        let mut g = h.blocking_load_mut().unwrap();
        g[0] ^= 0xff;
        g.extend_from_slice(b"more");
    }
    assert_ne!(h.key(), old);
    let mut changed = object(1, OBJ);
    changed[0] ^= 0xff;
    changed.extend_from_slice(b"more");
    assert_eq!(*h.blocking_load().unwrap(), changed);
    // The persisted blob of the old key still holds the old bytes.
    let old_h = pool.blocking_register(&docs, old).unwrap();
    assert_eq!(*old_h.blocking_load().unwrap(), object(1, OBJ));
    // The new key is not persisted until asked.
    assert!(!pool.list(&docs).unwrap().keys.contains(&h.key()));
    h.blocking_persist(&docs).unwrap();
    assert!(pool.list(&docs).unwrap().keys.contains(&h.key()));
}

#[test]
fn writing_an_evicted_object_deletes_its_old_spill() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let mut h = pool.insert(object(1, OBJ)).unwrap();
    let _push = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    let old = h.key();
    assert!(spill_path(dir.path(), old).exists());
    h.blocking_load_mut().unwrap().push(1);
    pool.wait_finished();
    assert!(!spill_path(dir.path(), old).exists());
}

#[test]
fn exclusive_access_is_refused_to_a_shared_handle_and_make_mut_copies() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 10);
    let original = pool.insert(object(1, OBJ)).unwrap();
    let mut copy = original.clone();
    let key = original.key();
    assert!(matches!(
        copy.blocking_load_mut(),
        Err(CacheError::Shared { key: k }) if k == key
    ));
    copy.blocking_make_mut().unwrap()[0] ^= 1;
    assert_ne!(copy.key(), key);
    assert_eq!(original.key(), key);
    assert_eq!(*original.blocking_load().unwrap(), object(1, OBJ));
    assert_eq!(copy.blocking_load().unwrap()[0], object(1, OBJ)[0] ^ 1);
    assert_eq!(pool.stats().objects, 2);
    // Unshared now: make_mut writes in place (under a new key).
    let before = copy.key();
    copy.blocking_make_mut().unwrap()[1] ^= 1;
    assert_ne!(copy.key(), before);
    assert_eq!(pool.stats().objects, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_writes_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let docs = loc("docs");
    let pool = pool(dir.path(), 1);
    let mut h = pool.insert(object(1, OBJ)).unwrap();
    let shared = h.clone();
    h.make_mut().await.unwrap().push(9);
    drop(shared);
    h.load_mut().await.unwrap().push(10);
    h.persist(&docs).await.unwrap();
    let key = h.key();
    let _push = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    let mut expected = object(1, OBJ);
    expected.extend([9, 10]);
    assert_eq!(*h.load().await.unwrap(), expected);
    pool.check(&docs, key).unwrap();
}

#[test]
fn load_in_place_makes_an_object_resident_without_pinning_it() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let a = pool.insert(object(1, OBJ)).unwrap();
    a.blocking_write_now().unwrap();
    let _b = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    assert!(!a.is_resident());
    a.blocking_load_in_place().unwrap();
    assert!(a.is_resident());
    // Nothing pins it: a pinned object that comes after it pushes it out.
    // (Loaded again after an eviction, `a` is in S3-FIFO's main queue, where
    // objects used once never reach it; one in use is requeued behind it,
    // so `a` is the next victim, unless it is pinned too.)
    let c = pool.insert(object(3, OBJ)).unwrap();
    let pinned = c.blocking_load().unwrap();
    pool.wait_finished();
    assert!(!a.is_resident());
    drop(pinned);
    assert_eq!(*a.blocking_load().unwrap(), object(1, OBJ));
}

#[test]
fn try_load_mut_gives_a_guard_only_when_it_can_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let mut a = pool.insert(object(1, OBJ)).unwrap();
    let key = a.key();
    let other = a.clone();
    assert!(a.try_load_mut().is_none(), "shared");
    assert_eq!(a.key(), key, "a refused write keeps the key");
    drop(other);
    a.try_load_mut().unwrap().push(7);
    assert_ne!(a.key(), key, "a write gets a new key");
    // On disk: no guard without a load.
    let _b = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    assert!(!a.is_resident());
    let key = a.key();
    assert!(a.try_load_mut().is_none());
    assert_eq!(a.key(), key);
    let mut expected = object(1, OBJ);
    expected.push(7);
    assert_eq!(*a.blocking_load().unwrap(), expected);
}

#[test]
fn write_now_spills_once_and_keeps_the_object_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 4);
    let a = pool.insert(object(1, OBJ)).unwrap();
    a.blocking_write_now().unwrap();
    assert!(a.is_resident());
    assert!(spill_path(dir.path(), a.key()).exists());
    assert_eq!(pool.stats().spills, 0, "not an eviction");
    // Evicting it now writes nothing more, and it reads back intact.
    let written = std::fs::metadata(spill_path(dir.path(), a.key()))
        .unwrap()
        .modified()
        .unwrap();
    a.blocking_write_now().unwrap();
    let _rest: Vec<_> = (2..8)
        .map(|i| pool.insert(object(i, OBJ)).unwrap())
        .collect();
    pool.wait_finished();
    let again = std::fs::metadata(spill_path(dir.path(), a.key()))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(written, again);
    assert_eq!(*a.blocking_load().unwrap(), object(1, OBJ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_register_write_now_and_finished() {
    let dir = tempfile::tempdir().unwrap();
    let docs = loc("docs");
    let pool = pool(dir.path(), 1);
    let a = pool.insert(object(1, OBJ)).unwrap();
    a.write_now().await.unwrap();
    a.persist(&docs).await.unwrap();
    let key = a.key();
    let again = pool.register(&docs, key).await.unwrap();
    assert_eq!(again.key(), key, "registered while live: shares the object");
    a.load_in_place().await.unwrap();
    let missing = Key::from_u128(42);
    assert!(matches!(
        pool.register(&docs, missing).await,
        Err(CacheError::Store(StoreError::NotFound { .. }))
    ));
    drop((a, again));
    pool.finished().await;
    assert!(files_under(&dir.path().join("spill")).is_empty());
    assert_eq!(pool.stats().objects, 0);
}

#[test]
fn try_load_fails_while_evicting_and_load_takes_the_object_back() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, gate) = gated_pool(dir.path());
    let a = pool.insert(object(1, OBJ)).unwrap();
    let _b = pool.insert(object(2, OBJ)).unwrap();
    gate.wait_for_writers(1);
    // `a` is being written out: not offered by try_load, but in memory.
    assert!(a.try_load().is_none());
    assert!(a.is_resident());
    let g = a.blocking_load().unwrap();
    assert_eq!(*g, object(1, OBJ));
    gate.open();
    pool.wait_finished();
    // The guard kept it; its blob was kept too, so evicting it later is
    // free.
    assert!(a.is_resident());
    assert!(spill_path(dir.path(), a.key()).exists());
    drop(g);
    pool.wait_finished();
    assert!(pool.stats().resident_bytes <= OBJ);
}

#[test]
fn a_drop_racing_an_eviction_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, gate) = gated_pool(dir.path());
    let a = pool.insert(object(1, OBJ)).unwrap();
    let b = pool.insert(object(2, OBJ)).unwrap();
    gate.wait_for_writers(1);
    let key = a.key();
    drop(a);
    gate.open();
    pool.wait_finished();
    assert!(!spill_path(dir.path(), key).exists());
    assert_eq!(pool.stats().objects, 1);
    assert_eq!(pool.stats().resident_bytes, OBJ);
    drop(b);
    pool.wait_finished();
    assert!(files_under(&dir.path().join("spill")).is_empty());
}

#[test]
fn a_guard_pins_its_object_and_eviction_resumes_when_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let (a, b) = (
        pool.insert(object(1, OBJ)).unwrap(),
        pool.insert(object(2, OBJ)).unwrap(),
    );
    let (ga, gb) = (a.blocking_load().unwrap(), b.blocking_load().unwrap());
    let _rest: Vec<_> = (3..10)
        .map(|i| pool.insert(object(i, OBJ)).unwrap())
        .collect();
    pool.wait_finished();
    // Over budget with both pinned: they stay, everything else went.
    assert!(a.is_resident() && b.is_resident());
    assert_eq!(pool.stats().resident_bytes, 2 * OBJ);
    assert_eq!(*ga, object(1, OBJ));
    drop(ga);
    pool.wait_finished();
    assert!(!a.is_resident());
    assert!(b.is_resident());
    assert_eq!(*gb, object(2, OBJ));
    assert_eq!(pool.stats().resident_bytes, OBJ);
}

#[test]
fn an_object_larger_than_the_budget_is_kept_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let big = pool.insert(object(1, 10 * OBJ)).unwrap();
    pool.wait_finished();
    assert!(!big.is_resident());
    assert_eq!(*big.blocking_load().unwrap(), object(1, 10 * OBJ));
}

#[test]
fn serde_objects_round_trip_through_the_store() {
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        title: String,
        words: Vec<u32>,
    }
    let dir = tempfile::tempdir().unwrap();
    let pool: Pool<Doc> = Pool::new(
        FsStore::open(dir.path()).unwrap(),
        Postcard,
        100,
        |d: &Doc| d.title.len() + 4 * d.words.len(),
    )
    .unwrap();
    let docs: Vec<Handle<Doc>> = (0..20)
        .map(|i| {
            pool.insert(Doc {
                title: format!("doc {i}"),
                words: (0..i).collect(),
            })
            .unwrap()
        })
        .collect();
    pool.wait_finished();
    for (i, d) in docs.iter().enumerate() {
        let d = d.blocking_load().unwrap();
        assert_eq!(d.title, format!("doc {i}"));
        assert_eq!(d.words.len(), i);
    }
}

#[test]
fn a_damaged_blob_is_a_typed_error_and_the_object_stays() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), 1);
    let a = pool.insert(object(1, OBJ)).unwrap();
    let _b = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    let path = spill_path(dir.path(), a.key());
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let err = a.blocking_load().unwrap_err();
    assert!(
        matches!(err, CacheError::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    // Every waiter gets the error; a later load tries again.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(*a.blocking_load().unwrap(), object(1, OBJ));
}

#[test]
fn deleting_a_persisted_blob_keeps_live_objects_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let docs = loc("docs");
    let pool = pool(dir.path(), 1);
    let a = pool.insert(object(1, OBJ)).unwrap();
    a.blocking_persist(&docs).unwrap();
    let _b = pool.insert(object(2, OBJ)).unwrap();
    pool.wait_finished();
    assert!(!a.is_resident());
    assert!(pool.delete(&docs, a.key()).unwrap());
    assert!(!persisted_path(dir.path(), "docs", a.key()).exists());
    assert_eq!(*a.blocking_load().unwrap(), object(1, OBJ));
    assert!(!pool.delete(&docs, a.key()).unwrap());
}

#[test]
fn disk_full_and_refused_permission_are_typed_errors_that_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = match common::TinyFs::mount(&dir.path().join("tiny")) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let root = dir.path().join("store");
    std::fs::create_dir_all(root.join("persist")).unwrap();
    // Spills and the "full" location live on the 64 KiB file system.
    std::fs::create_dir_all(tiny.path().join("spill")).unwrap();
    std::fs::create_dir_all(tiny.path().join("full")).unwrap();
    std::os::unix::fs::symlink(tiny.path().join("spill"), root.join("spill")).unwrap();
    std::os::unix::fs::symlink(tiny.path().join("full"), root.join("persist").join("full"))
        .unwrap();
    let pool: Pool<Vec<u8>> =
        Pool::new(FsStore::open(&root).unwrap(), Raw, 100_000, Vec::len).unwrap();
    // Persisting 100 kB to a 64 KiB file system.
    let big = pool.insert(object(1, 100_000)).unwrap();
    let err = big.blocking_persist(&loc("full")).unwrap_err();
    assert!(
        matches!(err, CacheError::Store(StoreError::DiskFull { .. })),
        "{err:?}"
    );
    assert!(pool.list(&loc("full")).unwrap().keys.is_empty());
    // Spilling it fails too: it stays in memory, the failure is reported,
    // and it is still there to read.
    let _push = pool.insert(object(2, 1000)).unwrap();
    eventually("a spill failure", || pool.stats().spill_failures > 0);
    let stats = pool.stats();
    assert!(
        matches!(
            stats.last_spill_error,
            Some(CacheError::Store(StoreError::DiskFull { .. }))
        ),
        "{stats:?}"
    );
    assert!(big.is_resident());
    assert_eq!(*big.blocking_load().unwrap(), object(1, 100_000));
    // A location the process may not write to.
    let ro = loc("ro");
    let small = pool.insert(object(3, 100)).unwrap();
    let shard = persisted_path(&root, "ro", small.key());
    let shard = shard.parent().unwrap();
    std::fs::create_dir_all(shard).unwrap();
    let err = {
        let _ro = common::ReadOnly::new(shard);
        small.blocking_persist(&ro).unwrap_err()
    };
    assert!(
        matches!(err, CacheError::Store(StoreError::PermissionDenied { .. })),
        "{err:?}"
    );
    small.blocking_persist(&ro).unwrap();
    drop((big, small, _push));
    drop(pool);
}

/// Raw bytes, except that encoding an object whose first byte is 0xFF
/// panics.
struct PanickyCodec;

impl statemesh_cache::Codec<Vec<u8>> for PanickyCodec {
    fn encode(
        &self,
        value: &Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), statemesh_cache::CodecError> {
        assert_ne!(
            value.first(),
            Some(&0xFF),
            "the codec refuses to encode this"
        );
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, statemesh_cache::CodecError> {
        Ok(bytes.to_vec())
    }
}

#[test]
fn a_panicking_codec_fails_the_spill_and_leaves_the_object_usable() {
    let dir = tempfile::tempdir().unwrap();
    let options = PoolOptions::new(OBJ).admit_timeout(Duration::from_millis(200));
    let pool = Pool::with_options(
        FsStore::open(dir.path()).unwrap(),
        PanickyCodec,
        Vec::len,
        options,
    )
    .unwrap();
    let mut bad = pool.insert(vec![0xFF; OBJ]).unwrap();
    // Past the limit: this caller tries to spill `bad`, whose encoding
    // panics. It gets a typed error, not the panic, and nothing hangs.
    let refused = pool.insert(object(1, OBJ)).unwrap_err();
    assert!(
        matches!(refused.error, CacheError::OverBudget { .. }),
        "{refused}"
    );
    eventually("the failed spill counted", || {
        pool.stats().spill_failures > 0
    });
    assert!(matches!(
        pool.stats().last_spill_error,
        Some(CacheError::Codec { .. })
    ));
    // Still in memory, readable and writable.
    bad.blocking_load_mut().unwrap()[1] = 1;
    assert_eq!(bad.blocking_load().unwrap()[1], 1);
    pool.wait_idle();
}
