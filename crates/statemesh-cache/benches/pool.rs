//! statemesh-cache against file_backed and foyer, in one run, on the same
//! disk.
//!
//! - `hit/1 thread`, `hit/2 threads`: a read guard of an object in memory,
//!   taken and dropped (64 objects, round robin). foyer's hit is its
//!   in-memory `get` (synchronous, its fastest path to an object in
//!   memory).
//! - `miss-load 1 MiB`: an evicted 1 MiB object read back from the disk
//!   (its file dropped from the page cache first), against `std::fs::read`
//!   of a cold 1 MiB file: the disk's own read rate for the same bytes.
//! - `sustained-write 4 KiB`: 4 threads replacing objects of a 2,000-object
//!   working set (8 MiB) held to a budget of a fiftieth of it, as fast as
//!   they can, each write a new value in place of an old one (statemesh: a
//!   new object for the handle, the old one dropped; foyer: an insert under
//!   the key). The time is per
//!   write across the threads; a thread samples each one's own count of
//!   bytes in memory every millisecond, and the summary prints the
//!   largest sample beside the budget.
//! - hit ratio on a Zipf (s = 1) trace over 1,000 objects at budgets of 10%
//!   and 50% of the working set, for statemesh (S3-FIFO), file_backed
//!   (two-segment LRU), foyer (its S3-FIFO, one shard) and exact LRU;
//!   printed at the end with the ratios of criterion's point estimates.
//!
//! file_backed stores `serde_bytes::ByteBuf` (bincode reads it in one call;
//! a `Vec<u8>` would be decoded element by element). foyer is a hybrid
//! cache configured as a spill store: objects are written to its block
//! engine when evicted from memory (`WriteOnEviction`), on a device large
//! enough never to drop one.

// The tests' helpers: the Zipf trace and exact LRU, file listing.
#[path = "../tests/common/mod.rs"]
mod common;

use common::files_under;
use common::trace::{lru_hit_ratio, zipf_trace};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use file_backed::fbstore::{BinCodec, FBStore, PreparedPath};
use file_backed::{BackingStore, FBPool};
use foyer::{
    BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy, S3FifoConfig,
};
use serde_bytes::ByteBuf;
use statemesh_cache::{FsStore, Handle, Pool, Raw};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type FbPool = Arc<FBPool<ByteBuf, FBStore<BinCodec>>>;
type Foyer = HybridCache<u64, Vec<u8>>;

const HOT: usize = 64;
const SMALL: usize = 4096;
const MIB: usize = 1 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn ours(dir: &Path, budget: usize) -> Pool<Vec<u8>> {
    Pool::new(FsStore::open(dir).unwrap(), Raw, budget, Vec::len).unwrap()
}

fn theirs(rt: &tokio::runtime::Runtime, dir: &Path, items: usize) -> FbPool {
    let _guard = rt.enter();
    let path = PreparedPath::blocking_new(dir.to_path_buf(), vec![]);
    let store = Arc::new(BackingStore::new(
        FBStore::new(BinCodec, path),
        rt.handle().clone(),
    ));
    Arc::new(FBPool::new(store, items))
}

/// foyer holding `memory` bytes (by value length) in memory, the rest in
/// its block engine on a 256 MiB device in `dir`.
fn foyer(rt: &tokio::runtime::Runtime, dir: &Path, memory: usize, shards: usize) -> Foyer {
    std::fs::create_dir_all(dir).unwrap();
    rt.block_on(async {
        let device = FsDeviceBuilder::new(dir)
            .with_capacity(256 << 20)
            .build()
            .unwrap();
        HybridCacheBuilder::new()
            .with_policy(HybridCachePolicy::WriteOnEviction)
            .memory(memory)
            .with_shards(shards)
            .with_eviction_config(S3FifoConfig::default())
            .with_weighter(|_: &u64, v: &Vec<u8>| v.len())
            .storage()
            .with_engine_config(BlockEngineConfig::new(device))
            .build()
            .await
            .unwrap()
    })
}

/// Waits until foyer has written what it evicted.
fn foyer_settle(rt: &tokio::runtime::Runtime, cache: &Foyer) {
    rt.block_on(cache.storage().wait());
}

fn bytes(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

fn hits(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let pool = ours(&dir.path().join("ours"), HOT * SMALL * 4);
    let mine: Vec<_> = (0..HOT)
        .map(|i| pool.insert(bytes(i, SMALL)).unwrap())
        .collect();
    let fb = theirs(&rt, &dir.path().join("theirs"), HOT * 4);
    let their: Vec<_> = (0..HOT)
        .map(|i| fb.insert(ByteBuf::from(bytes(i, SMALL))))
        .collect();
    let fo = foyer(&rt, &dir.path().join("foyer"), HOT * SMALL * 4, 8);
    for i in 0..HOT {
        fo.insert(i as u64, bytes(i, SMALL));
    }
    let mut g = c.benchmark_group("hit");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("statemesh", "1 thread"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % HOT;
            mine[i].blocking_load().unwrap()[0]
        });
    });
    g.bench_function(BenchmarkId::new("file_backed", "1 thread"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % HOT;
            their[i].blocking_load()[0]
        });
    });
    g.bench_function(BenchmarkId::new("foyer", "1 thread"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % HOT;
            fo.memory().get(&(i as u64)).unwrap().value()[0]
        });
    });
    // Two threads at once; the time is per load of each thread.
    g.bench_function(BenchmarkId::new("statemesh", "2 threads"), |b| {
        b.iter_custom(|iters| two_threads(iters, |i| mine[i % HOT].blocking_load().unwrap()[0]));
    });
    g.bench_function(BenchmarkId::new("file_backed", "2 threads"), |b| {
        b.iter_custom(|iters| two_threads(iters, |i| their[i % HOT].blocking_load()[0]));
    });
    g.bench_function(BenchmarkId::new("foyer", "2 threads"), |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |i| {
                fo.memory().get(&((i % HOT) as u64)).unwrap().value()[0]
            })
        });
    });
    g.finish();
}

fn two_threads(iters: u64, load: impl Fn(usize) -> u8 + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2 {
            let load = &load;
            s.spawn(move || {
                let mut x = 0u8;
                for i in 0..iters as usize {
                    x ^= load(i * 7 + t * 32);
                }
                std::hint::black_box(x);
            });
        }
    });
    start.elapsed()
}

fn miss_loads(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    const N: usize = COLD_OBJECTS;
    let pool = ours(&dir.path().join("ours"), MIB);
    let mine: Vec<Handle<Vec<u8>>> = (0..N)
        .map(|i| pool.insert(bytes(i, MIB)).unwrap())
        .collect();
    pool.wait_idle();
    let fb = theirs(&rt, &dir.path().join("theirs"), 1);
    let their: Vec<_> = (0..N)
        .map(|i| fb.insert(ByteBuf::from(bytes(i, MIB))))
        .collect();
    rt.block_on(fb.store().finished());
    let fo_dir = dir.path().join("foyer");
    let fo = foyer(&rt, &fo_dir, MIB, 1);
    // One at a time: foyer drops what its write buffers cannot take, and
    // every object must reach its disk.
    for i in 0..N {
        fo.insert(i as u64, bytes(i, MIB));
        foyer_settle(&rt, &fo);
    }
    let fo_load = |i: usize| {
        let e = rt.block_on(fo.get(&(i as u64))).unwrap();
        e.expect("foyer kept every object").value()[MIB - 1]
    };
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    for i in 0..N {
        std::fs::write(plain.join(i.to_string()), bytes(i, MIB)).unwrap();
    }
    // One round of loads first, so every object has been evicted once and
    // has its file (the last ones inserted were still in memory).
    for i in 0..N {
        drop(mine[i].blocking_load().unwrap());
        pool.wait_idle();
        drop(their[i].blocking_load());
        rt.block_on(fb.store().finished());
        fo_load(i);
        foyer_settle(&rt, &fo);
    }
    drop(mine[0].blocking_load().unwrap());
    drop(their[0].blocking_load());
    fo_load(0);
    pool.wait_idle();
    rt.block_on(fb.store().finished());
    foyer_settle(&rt, &fo);
    let mut ours_files = Vec::new();
    for h in &mine {
        let k = h.key().to_string();
        ours_files.push(
            dir.path()
                .join("ours/spill")
                .join(&k[..2])
                .join(format!("{k}.blob")),
        );
    }
    let theirs_files: Vec<_> = their
        .iter()
        .map(|h| file_backed::fbstore::key_path(&dir.path().join("theirs"), h.key()))
        .collect();
    let plain_files: Vec<_> = (0..N).map(|i| plain.join(i.to_string())).collect();
    // Clean pages only, so dropping them from the page cache works.
    for f in ours_files.iter().chain(&theirs_files).chain(&plain_files) {
        std::fs::File::open(f).unwrap().sync_all().unwrap();
    }
    let fo_files = || files_under(&fo_dir);
    let mut g = c.benchmark_group("miss-load 1 MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.sample_size(20);
    // Each load reads a file dropped from the page cache first (clean
    // pages: the files were synced), so it comes from the disk; only the
    // load is timed.
    g.bench_function("statemesh", |b| {
        b.iter_custom(|iters| {
            cold(
                iters,
                |i| uncache(&ours_files[i]),
                |i| mine[i].blocking_load().unwrap()[MIB - 1],
                || pool.wait_idle(),
            )
        });
    });
    g.bench_function("file_backed", |b| {
        b.iter_custom(|iters| {
            cold(
                iters,
                |i| uncache(&theirs_files[i]),
                |i| their[i].blocking_load()[MIB - 1],
                || rt.block_on(fb.store().finished()),
            )
        });
    });
    g.bench_function("foyer", |b| {
        b.iter_custom(|iters| {
            cold(
                iters,
                // One device for all objects: all of it leaves the cache.
                |_| fo_files().iter().for_each(|f| uncache(f)),
                fo_load,
                || {
                    foyer_settle(&rt, &fo);
                    for f in fo_files() {
                        std::fs::File::open(f).unwrap().sync_all().unwrap();
                    }
                },
            )
        });
    });
    g.bench_function("fs::read", |b| {
        b.iter_custom(|iters| {
            cold(
                iters,
                |i| uncache(&plain_files[i]),
                |i| std::fs::read(&plain_files[i]).unwrap()[MIB - 1],
                || (),
            )
        });
    });
    g.finish();
}

const WRITERS: usize = 4;
const WORKING_SET: usize = 2_000;
const WRITE_BUDGET: usize = WORKING_SET * SMALL / 50;

/// The largest resident-bytes sample of each system during its
/// sustained-write runs, for the summary.
static MAX_RESIDENT: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// How many of the working set's objects each could still read after its
/// sustained-write runs.
static KEPT: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Runs `write(thread, n)` `iters` times split over [`WRITERS`] threads
/// while sampling `resident()` into `MAX_RESIDENT[slot]`; the wall time.
fn sustained(
    iters: u64,
    slot: usize,
    resident: impl Fn() -> usize + Sync,
    write: impl Fn(usize, u64) + Sync,
) -> Duration {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                MAX_RESIDENT[slot].fetch_max(resident(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let start = Instant::now();
        let per = iters.div_ceil(WRITERS as u64);
        let workers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let write = &write;
                s.spawn(move || (0..per).for_each(|n| write(t, n)))
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let took = start.elapsed();
        stop.store(true, Ordering::Release);
        took
    })
}

fn sustained_writes(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let pool = ours(&dir.path().join("ours"), WRITE_BUDGET);
    // Each thread replaces its own share of the objects.
    let per = WORKING_SET / WRITERS;
    let mine: Vec<Mutex<Vec<Handle<Vec<u8>>>>> = (0..WRITERS)
        .map(|t| {
            let hs = (0..per)
                .map(|i| pool.insert(bytes(t * per + i, SMALL)).unwrap())
                .collect();
            Mutex::new(hs)
        })
        .collect();
    let fo = foyer(&rt, &dir.path().join("foyer"), WRITE_BUDGET, 8);
    for i in 0..WORKING_SET {
        fo.insert(i as u64, bytes(i, SMALL));
    }
    foyer_settle(&rt, &fo);
    let mut g = c.benchmark_group("sustained-write 4 KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("statemesh", |b| {
        b.iter_custom(|iters| {
            sustained(
                iters,
                0,
                || pool.stats().resident_bytes,
                |t, n| {
                    let mut hs = mine[t].lock().unwrap();
                    let i = (n as usize * 7919) % per;
                    let value = vec![(i as u64 + n) as u8; SMALL];
                    hs[i] = pool.insert(value).unwrap();
                },
            )
        });
    });
    g.bench_function("foyer", |b| {
        b.iter_custom(|iters| {
            let took = sustained(
                iters,
                1,
                || fo.memory().usage(),
                |t, n| {
                    let i = t * per + (n as usize * 7919) % per;
                    let _guard = rt.enter();
                    fo.insert(i as u64, vec![(i as u64 + n) as u8; SMALL]);
                },
            );
            // Its writes of what it evicted, outside the timing.
            foyer_settle(&rt, &fo);
            took
        });
    });
    g.finish();
    let ours_kept = mine
        .iter()
        .flat_map(|hs| {
            hs.lock()
                .unwrap()
                .iter()
                .map(|h| h.blocking_load().is_ok())
                .collect::<Vec<_>>()
        })
        .filter(|&ok| ok)
        .count();
    let foyer_kept = (0..WORKING_SET)
        .filter(|&i| matches!(rt.block_on(fo.get(&(i as u64))), Ok(Some(_))))
        .count();
    KEPT[0].store(ours_kept, Ordering::Relaxed);
    KEPT[1].store(foyer_kept, Ordering::Relaxed);
}

const COLD_OBJECTS: usize = 32;

/// Times `load(i)` of objects in turn, each dropped from the page cache
/// by `uncache(i)` before; `settle` (untimed) lets the cache evict what it
/// loaded.
fn cold(
    iters: u64,
    uncache: impl Fn(usize),
    load: impl Fn(usize) -> u8,
    settle: impl Fn(),
) -> Duration {
    let mut total = Duration::ZERO;
    for n in 0..iters as usize {
        let i = n % COLD_OBJECTS;
        uncache(i);
        let start = Instant::now();
        std::hint::black_box(load(i));
        total += start.elapsed();
        settle();
    }
    total
}

/// Drops a file's (clean) pages from the page cache. A missing file is a
/// mistake in the benchmark, not something to skip.
fn uncache(path: &Path) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

struct Ratios {
    statemesh: f64,
    file_backed: f64,
    foyer: f64,
    lru: f64,
}

fn hit_ratios(budget_share: f64) -> Ratios {
    const N: usize = 1000;
    const SIZE: usize = 1024;
    let trace = zipf_trace(N, 60_000);
    let budget_items = (N as f64 * budget_share) as usize;
    let dir = tempfile::tempdir().unwrap();
    // statemesh: a miss is a load from the store.
    let pool = ours(&dir.path().join("ours"), budget_items * SIZE);
    let mine: Vec<_> = (0..N)
        .map(|i| pool.insert(bytes(i, SIZE)).unwrap())
        .collect();
    pool.wait_idle();
    let before = pool.stats().loads;
    for &i in &trace {
        std::hint::black_box(mine[i].blocking_load().unwrap()[0]);
        pool.wait_idle();
    }
    let statemesh = 1.0 - (pool.stats().loads - before) as f64 / trace.len() as f64;
    // file_backed: a miss is a try_load that finds nothing in memory.
    let rt = runtime();
    let fb = theirs(&rt, &dir.path().join("theirs"), budget_items);
    let their: Vec<_> = (0..N)
        .map(|i| fb.insert(ByteBuf::from(bytes(i, SIZE))))
        .collect();
    rt.block_on(fb.store().finished());
    let mut misses = 0;
    for &i in &trace {
        if their[i].try_load().is_none() {
            misses += 1;
            drop(their[i].blocking_load());
        }
        rt.block_on(fb.store().finished());
    }
    let file_backed = 1.0 - misses as f64 / trace.len() as f64;
    // foyer: a miss is a key not in its memory cache. One shard, so the
    // budget is not split into independent parts.
    let fo = foyer(&rt, &dir.path().join("foyer"), budget_items * SIZE, 1);
    for i in 0..N {
        fo.insert(i as u64, bytes(i, SIZE));
        foyer_settle(&rt, &fo);
    }
    let mut misses = 0;
    for &i in &trace {
        if !fo.memory().contains(&(i as u64)) {
            misses += 1;
        }
        let e = rt.block_on(fo.get(&(i as u64))).unwrap();
        std::hint::black_box(e.expect("foyer kept every object").value()[0]);
        foyer_settle(&rt, &fo);
    }
    let foyer = 1.0 - misses as f64 / trace.len() as f64;
    Ratios {
        statemesh,
        file_backed,
        foyer,
        lru: lru_hit_ratio(&trace, budget_items),
    }
}

fn estimate(group: &str, id: &str) -> Option<f64> {
    let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion");
    // Criterion writes "fs::read" as "fs__read".
    let id = id.replace(':', "_");
    let text =
        std::fs::read_to_string(home.join(group).join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// "2.00x faster" or "0.50x (slower)", from the ratio of their time to ours.
fn speed(ratio: f64) -> String {
    if ratio >= 1.0 {
        format!("{ratio:.2}x faster")
    } else {
        format!("{ratio:.2}x (slower)")
    }
}

fn summary(_: &mut Criterion) {
    let mut out = String::from(
        "\n## Summary\n\n| measure | statemesh | file_backed | foyer | statemesh vs file_backed | vs foyer |\n|---|---|---|---|---|---|\n",
    );
    for (what, group, id) in [
        ("hit, 1 thread (ns)", "hit", "/1 thread"),
        ("hit, 2 threads (ns per load)", "hit", "/2 threads"),
        ("miss-load 1 MiB (µs)", "miss-load 1 MiB", ""),
    ] {
        let scale = if group == "hit" { 1.0 } else { 1e-3 };
        let [Some(ours), Some(fb), Some(fo)] =
            ["statemesh", "file_backed", "foyer"].map(|who| estimate(group, &format!("{who}{id}")))
        else {
            continue;
        };
        out += &format!(
            "| {what} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            ours * scale,
            fb * scale,
            fo * scale,
            speed(fb / ours),
            speed(fo / ours)
        );
    }
    if let (Some(a), Some(r)) = (
        estimate("miss-load 1 MiB", "statemesh"),
        estimate("miss-load 1 MiB", "fs::read"),
    ) {
        out += &format!(
            "| miss-load 1 MiB vs fs::read of 1 MiB ({:.1} µs) | {:.2}x the read time | | | | |\n",
            r * 1e-3,
            a / r
        );
    }
    if let [Some(ours), Some(fo)] =
        ["statemesh", "foyer"].map(|who| estimate("sustained-write 4 KiB", who))
    {
        let [mine, theirs] = MAX_RESIDENT.each_ref().map(|m| m.load(Ordering::Relaxed));
        out += &format!(
            "\n| sustained writes, 4 threads, budget {} KiB | statemesh | foyer | statemesh vs foyer |\n|---|---|---|---|\n\
             | writes per second | {:.0} | {:.0} | {} |\n\
             | most bytes in memory (sampled every ms) | {} KiB | {} KiB | |\n\
             | objects readable afterwards, of {WORKING_SET} | {} | {} | |\n",
            WRITE_BUDGET / 1024,
            1e9 / ours,
            1e9 / fo,
            speed(fo / ours),
            mine / 1024,
            theirs / 1024,
            KEPT[0].load(Ordering::Relaxed),
            KEPT[1].load(Ordering::Relaxed),
        );
    }
    out += "\n| Zipf(1) hit ratio, 1,000 objects | statemesh (S3-FIFO) | file_backed | foyer (S3-FIFO) | exact LRU |\n|---|---|---|---|---|\n";
    for share in [0.1, 0.5] {
        let r = hit_ratios(share);
        out += &format!(
            "| budget {:.0}% | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            share * 100.0,
            r.statemesh,
            r.file_backed,
            r.foyer,
            r.lru
        );
    }
    println!("{out}");
}

criterion_group!(benches, hits, miss_loads, sustained_writes, summary);
criterion_main!(benches);
