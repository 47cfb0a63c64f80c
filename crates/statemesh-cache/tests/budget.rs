//! The budget is a bound: resident bytes stay within the budget and its
//! slack whatever the write rate, a pool whose memory is all pinned
//! refuses new objects with a typed error instead of growing, and a
//! backlog of deletions never holds up eviction.

mod common;

use common::{Gate, files_under, object};
use statemesh_cache::{
    CacheError, FsStore, Handle, Key, Listing, Location, Place, Pool, PoolOptions, Raw, Store,
    StoreError,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const OBJ: usize = 4096;
/// 2,000 objects of 4 KiB: 8 MiB of live data.
const OBJECTS: usize = 2_000;
const WRITERS: usize = 8;
const RUN: Duration = Duration::from_secs(30);

/// A pool whose budget is a fiftieth of the live data.
fn pool(root: &std::path::Path, admit_timeout: Duration) -> Pool<Vec<u8>> {
    let options = PoolOptions::new(OBJECTS * OBJ / 50).admit_timeout(admit_timeout);
    Pool::with_options(FsStore::open(root).unwrap(), Raw, Vec::len, options).unwrap()
}

/// Samples the pool's resident bytes every millisecond until `stop`; the
/// largest sample and how many were taken.
fn sample(pool: &Pool<Vec<u8>>, stop: &AtomicBool) -> (usize, u64) {
    let (mut max, mut samples) = (0, 0);
    while !stop.load(Ordering::Acquire) {
        max = max.max(pool.stats().resident_bytes);
        samples += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    (max, samples)
}

/// Runs `work(thread, stop)` on [`WRITERS`] threads for [`RUN`] while
/// sampling the pool; each `work` loops until `stop` is set. The largest
/// sample and how many were taken.
fn run_writers(pool: &Pool<Vec<u8>>, work: impl Fn(usize, &AtomicBool) + Sync) -> (usize, u64) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| sample(pool, &stop));
        let workers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (work, stop) = (&work, &stop);
                s.spawn(move || work(w, stop))
            })
            .collect();
        std::thread::sleep(RUN);
        stop.store(true, Ordering::Release);
        for w in workers {
            w.join().unwrap();
        }
        sampler.join().unwrap()
    })
}

/// A cheap random number from a thread's own state.
fn next(state: &mut u64) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 16) as usize
}

#[test]
fn sustained_writers_stay_within_the_budget_and_its_slack() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), Duration::from_secs(5));
    let limit = pool.stats().limit_bytes;
    assert_eq!(limit, pool.stats().budget_bytes * 9 / 8);
    // Each writer owns its share of the objects: `load_mut` needs the only
    // handle. A shared set gives `make_mut` copies to make.
    let per = OBJECTS / WRITERS;
    let shared: Vec<Handle<Vec<u8>>> = (0..per)
        .map(|i| pool.insert(object(i as u64, OBJ)).unwrap())
        .collect();
    let writes = AtomicU64::new(0);
    let (max, samples) = run_writers(&pool, |w, stop| {
        let mut mine: Vec<Handle<Vec<u8>>> = (0..per)
            .map(|i| pool.insert(object((w * per + i) as u64, OBJ)).unwrap())
            .collect();
        let mut rng = 0x9E37_79B9_7F4A_7C15 ^ w as u64;
        let mut n = 0u64;
        while !stop.load(Ordering::Acquire) {
            let i = next(&mut rng) % per;
            match next(&mut rng) % 4 {
                // Write in place: same size, new key.
                0 => {
                    let mut g = mine[i].blocking_load_mut().unwrap();
                    g[0] = g[0].wrapping_add(1);
                }
                // Copy on write of a shared object.
                1 => {
                    let mut copy = shared[i].clone();
                    let mut g = copy.blocking_make_mut().unwrap();
                    g[1] = g[1].wrapping_add(1);
                    drop(g);
                    mine[i] = copy;
                }
                // Read.
                2 => {
                    let g = mine[i].blocking_load().unwrap();
                    assert_eq!(g.len(), OBJ);
                }
                // Replace with a new object.
                _ => mine[i] = pool.insert(object(n, OBJ)).unwrap(),
            }
            n += 1;
        }
        writes.fetch_add(n, Ordering::Relaxed);
    });
    let writes = writes.into_inner();
    eprintln!(
        "{writes} operations in {RUN:?}; resident at most {max} bytes of a {limit}-byte limit \
         ({samples} samples)"
    );
    assert!(samples > 1_000, "the sampler ran {samples} times");
    assert!(writes > 1_000, "{writes} operations");
    assert!(max <= limit, "{max} bytes resident, limit {limit}");
    assert!(
        max > pool.stats().budget_bytes / 2,
        "the budget was not used: {max}"
    );
    pool.wait_idle();
    assert!(pool.stats().resident_bytes <= pool.stats().budget_bytes);
}

#[test]
fn pins_beyond_the_budget_get_a_typed_error_instead_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path(), Duration::from_millis(100));
    let limit = pool.stats().limit_bytes;
    let handles: Vec<Handle<Vec<u8>>> = (0..OBJECTS)
        .map(|i| pool.insert(object(i as u64, OBJ)).unwrap())
        .collect();
    let refused = AtomicUsize::new(0);
    let (max, _) = run_writers(&pool, |w, stop| {
        let mut rng = 0x2545_F491_4F6C_DD1D ^ w as u64;
        while !stop.load(Ordering::Acquire) {
            // Pin up to twice the limit between them, then let go.
            let mut guards = Vec::new();
            for _ in 0..2 * limit / OBJ / WRITERS + 1 {
                let i = next(&mut rng) % OBJECTS;
                match handles[i].blocking_load() {
                    Ok(g) => guards.push(g),
                    Err(CacheError::OverBudget {
                        needed, limit: l, ..
                    }) => {
                        assert_eq!((needed, l), (OBJ, limit));
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("unexpected: {e}"),
                }
            }
            match pool.insert(object(0, OBJ)) {
                Ok(_) => {}
                Err(r) => {
                    assert!(matches!(r.error, CacheError::OverBudget { .. }), "{r}");
                    assert_eq!(r.value, object(0, OBJ), "the value is given back");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(guards);
        }
    });
    let refused = refused.into_inner();
    eprintln!("{refused} loads and inserts refused; resident at most {max} of {limit}");
    assert!(refused > 0, "pins never filled the pool");
    assert!(max <= limit, "{max} bytes resident, limit {limit}");
    // With the pins gone, everything loads again.
    for h in handles.iter().take(100) {
        assert_eq!(h.blocking_load().unwrap().len(), OBJ);
    }
}

/// A file store whose spill removals wait at a gate.
struct SlowRemovals {
    inner: FsStore,
    gate: Arc<Gate>,
    removed: AtomicUsize,
}

impl Store for SlowRemovals {
    fn write(&self, place: Place<'_>, key: Key, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.write(place, key, bytes)
    }
    fn read(&self, place: Place<'_>, key: Key) -> Result<Vec<u8>, StoreError> {
        self.inner.read(place, key)
    }
    fn contains(&self, place: Place<'_>, key: Key) -> Result<bool, StoreError> {
        self.inner.contains(place, key)
    }
    fn remove(&self, place: Place<'_>, key: Key) -> Result<bool, StoreError> {
        self.gate.pass();
        self.removed.fetch_add(1, Ordering::Relaxed);
        self.inner.remove(place, key)
    }
    fn list(&self, location: &Location) -> Result<Listing, StoreError> {
        self.inner.list(location)
    }
}

#[test]
fn a_backlog_of_deletions_never_holds_up_eviction() {
    const SMALL: usize = 64;
    const DELETIONS: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::closed();
    let store = SlowRemovals {
        inner: FsStore::open(dir.path()).unwrap(),
        gate: gate.clone(),
        removed: AtomicUsize::new(0),
    };
    let options = PoolOptions::new(16 * SMALL).slack(usize::MAX / 2);
    let pool = Pool::with_options(store, Raw, Vec::len, options).unwrap();
    // Tens of thousands of objects spilled, then dropped: each leaves a
    // blob to delete, and the deleter is stuck at the gate.
    let spilled: Vec<_> = (0..DELETIONS)
        .map(|i| {
            let h = pool.insert(object(i as u64, SMALL)).unwrap();
            h.blocking_write_now().unwrap();
            h
        })
        .collect();
    drop(spilled);
    gate.wait_for_writers(1);
    // Eviction goes on: a thousand more objects, and the pool comes back
    // to its budget while every deletion waits.
    let kept: Vec<_> = (0..1_000)
        .map(|i| pool.insert(object(i, SMALL)).unwrap())
        .collect();
    let (done, idle) = std::sync::mpsc::channel();
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            pool.wait_idle();
            let _ = done.send(pool.stats());
        })
    };
    let stats = idle
        .recv_timeout(Duration::from_secs(60))
        .expect("wait_idle waited for the deletions");
    waiter.join().unwrap();
    assert!(
        stats.resident_bytes <= stats.budget_bytes,
        "{} resident, budget {}",
        stats.resident_bytes,
        stats.budget_bytes
    );
    assert!(stats.spills >= 1_000 - 16, "{stats:?}");
    assert!(!files_under(&dir.path().join("spill")).is_empty());
    // Once the gate opens, the backlog goes, and `finished` says so.
    gate.open();
    drop(kept);
    let started = Instant::now();
    pool.wait_finished();
    eprintln!("{DELETIONS} deletions done in {:?}", started.elapsed());
    assert!(files_under(&dir.path().join("spill")).is_empty());
}
