//! No deadlock when every blocking thread is busy loading, and every async
//! call is cancel-safe.

mod common;

use common::{files_under, object};
use statemesh_cache::{FsStore, Handle, Location, Pool, Raw};
use std::sync::Arc;
use std::time::Duration;

const OBJ: usize = 4096;
const OBJECTS: u64 = 64;

type Handles = Arc<Vec<Handle<Vec<u8>>>>;

fn evicted_pool(root: &std::path::Path) -> (Pool<Vec<u8>>, Handles) {
    let pool = Pool::new(FsStore::open(root).unwrap(), Raw, 4 * OBJ, Vec::len).unwrap();
    let handles: Vec<_> = (0..OBJECTS)
        .map(|i| pool.insert(object(i, OBJ)).unwrap())
        .collect();
    pool.wait_idle();
    (pool, Arc::new(handles))
}

#[test]
fn a_saturated_blocking_pool_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, handles) = evicted_pool(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let finished = runtime.block_on(async {
        let mut tasks = Vec::new();
        // Eight blocking loaders for two blocking threads: the blocking pool
        // stays full, and the async loads' jobs queue behind them.
        for t in 0..8u64 {
            let handles = handles.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                for round in 0..3u64 {
                    for j in 0..OBJECTS {
                        let i = ((j * 7 + t * 13 + round) % OBJECTS) as usize;
                        let g = handles[i].blocking_load().unwrap();
                        assert_eq!(g[..8], object(i as u64, OBJ)[..8]);
                    }
                }
            }));
        }
        for t in 0..8u64 {
            let handles = handles.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..3u64 {
                    for j in 0..OBJECTS {
                        let i = ((j * 11 + t * 5 + round) % OBJECTS) as usize;
                        let g = handles[i].load().await.unwrap();
                        assert_eq!(g[..8], object(i as u64, OBJ)[..8]);
                    }
                }
            }));
        }
        let all = async {
            for t in tasks {
                t.await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(120), all).await
    });
    // Dropping the runtime would wait for its blocking threads forever if
    // they were deadlocked: give up on them instead, then fail.
    runtime.shutdown_timeout(Duration::from_secs(1));
    assert!(finished.is_ok(), "loads deadlocked");
    pool.wait_idle();
    assert!(pool.stats().resident_bytes <= 4 * OBJ, "{:?}", pool.stats());
}

#[test]
fn the_blocking_api_needs_no_runtime_and_loads_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, handles) = evicted_pool(dir.path());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let handles = &handles;
            s.spawn(move || {
                for j in 0..OBJECTS * 4 {
                    let i = ((j * 13 + t) % OBJECTS) as usize;
                    assert_eq!(*handles[i].blocking_load().unwrap(), object(i as u64, OBJ));
                }
            });
        }
    });
    pool.wait_idle();
    assert!(pool.stats().resident_bytes <= 4 * OBJ);
}

/// Futures of every async call dropped at random points, thousands of
/// times: afterwards no pin or waiter is left behind (the pool gets back
/// within budget), every object reads back intact and dropping everything leaves no
/// blob in the spill area.
#[test]
fn dropped_futures_leave_the_pool_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, handles) = evicted_pool(dir.path());
    let handles = Arc::try_unwrap(handles).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let docs = Location::new("docs").unwrap();
    let handles = runtime.block_on(async {
        let mut tasks = Vec::new();
        // Each task owns some handles, so it may write them.
        let mut owned: Vec<Vec<(u64, Handle<Vec<u8>>)>> = (0..4).map(|_| Vec::new()).collect();
        for (i, h) in handles.into_iter().enumerate() {
            owned[i % 4].push((i as u64, h));
        }
        for (t, mut mine) in owned.into_iter().enumerate() {
            let docs = docs.clone();
            tasks.push(tokio::spawn(async move {
                let mut x = t as u64 + 1;
                for step in 0..400u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let n = mine.len();
                    let (i, h) = &mut mine[(x % n as u64) as usize];
                    let deadline = Duration::from_micros(x % 300);
                    match step % 4 {
                        0 | 1 => {
                            if let Ok(Ok(g)) = tokio::time::timeout(deadline, h.load()).await {
                                assert_eq!(*g, object(*i, OBJ));
                            }
                        }
                        2 => {
                            // A write that changes nothing but the key.
                            let _ = tokio::time::timeout(deadline, async {
                                let mut g = h.load_mut().await.unwrap();
                                g[0] = object(*i, OBJ)[0];
                            })
                            .await;
                        }
                        _ => {
                            let _ = tokio::time::timeout(deadline, h.persist(&docs)).await;
                        }
                    }
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    drop(runtime);
    pool.wait_idle();
    // No pin and no waiter of a dropped load is left behind.
    assert!(pool.stats().resident_bytes <= 4 * OBJ, "{:?}", pool.stats());
    for (i, h) in &handles {
        assert_eq!(*h.blocking_load().unwrap(), object(*i, OBJ), "object {i}");
    }
    // No pin left: everything over budget can go.
    pool.wait_idle();
    assert!(pool.stats().resident_bytes <= 4 * OBJ, "{:?}", pool.stats());
    for key in pool.list(&docs).unwrap().keys {
        pool.check(&docs, key).unwrap();
    }
    drop(handles);
    pool.wait_finished();
    assert_eq!(pool.stats().objects, 0);
    assert_eq!(pool.stats().resident_bytes, 0);
    assert!(files_under(&dir.path().join("spill")).is_empty());
}
