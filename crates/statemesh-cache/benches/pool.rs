//! statemesh-cache against file_backed, in one run, on the same disk.
//!
//! - `hit/1 thread`, `hit/2 threads`: a read guard of an object in memory,
//!   taken and dropped (64 objects, round robin).
//! - `miss-load 1 MiB`: an evicted 1 MiB object read back from the disk
//!   (its file dropped from the page cache first), against `std::fs::read`
//!   of a cold 1 MiB file: the disk's own read rate for the same bytes.
//! - hit ratio on a Zipf (s = 1) trace over 1,000 objects at budgets of 10%
//!   and 50% of the working set, for statemesh (S3-FIFO), file_backed
//!   (two-segment LRU) and exact LRU; printed at the end with the ratios of
//!   criterion's point estimates.
//!
//! file_backed stores `serde_bytes::ByteBuf` (bincode reads it in one call;
//! a `Vec<u8>` would be decoded element by element).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use file_backed::fbstore::{BinCodec, FBStore, PreparedPath};
use file_backed::{BackingStore, FBPool};
use serde_bytes::ByteBuf;
use statemesh_cache::{FsStore, Handle, Pool, Raw};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

type FbPool = Arc<FBPool<ByteBuf, FBStore<BinCodec>>>;

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

fn bytes(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

fn hits(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let pool = ours(&dir.path().join("ours"), HOT * SMALL * 4);
    let mine: Vec<_> = (0..HOT).map(|i| pool.insert(bytes(i, SMALL))).collect();
    let fb = theirs(&rt, &dir.path().join("theirs"), HOT * 4);
    let their: Vec<_> = (0..HOT)
        .map(|i| fb.insert(ByteBuf::from(bytes(i, SMALL))))
        .collect();
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
    // Two threads at once; the time is per load of each thread.
    g.bench_function(BenchmarkId::new("statemesh", "2 threads"), |b| {
        b.iter_custom(|iters| two_threads(iters, |i| mine[i % HOT].blocking_load().unwrap()[0]));
    });
    g.bench_function(BenchmarkId::new("file_backed", "2 threads"), |b| {
        b.iter_custom(|iters| two_threads(iters, |i| their[i % HOT].blocking_load()[0]));
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
    const N: usize = 32;
    let pool = ours(&dir.path().join("ours"), MIB);
    let mine: Vec<Handle<Vec<u8>>> = (0..N).map(|i| pool.insert(bytes(i, MIB))).collect();
    pool.wait_idle();
    let fb = theirs(&rt, &dir.path().join("theirs"), 1);
    let their: Vec<_> = (0..N)
        .map(|i| fb.insert(ByteBuf::from(bytes(i, MIB))))
        .collect();
    rt.block_on(fb.store().finished());
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
    }
    drop(mine[0].blocking_load().unwrap());
    drop(their[0].blocking_load());
    pool.wait_idle();
    rt.block_on(fb.store().finished());
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
    for f in ours_files.iter().chain(&theirs_files).chain(&plain_files) {
        // The one object in memory now has no file until it is evicted.
        if let Ok(f) = std::fs::File::open(f) {
            f.sync_all().unwrap();
        }
    }
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
                &ours_files,
                |i| mine[i].blocking_load().unwrap()[MIB - 1],
                || pool.wait_idle(),
            )
        });
    });
    g.bench_function("file_backed", |b| {
        b.iter_custom(|iters| {
            cold(
                iters,
                &theirs_files,
                |i| their[i].blocking_load()[MIB - 1],
                || rt.block_on(fb.store().finished()),
            )
        });
    });
    g.bench_function("fs::read", |b| {
        b.iter_custom(|iters| {
            cold(
                iters,
                &plain_files,
                |i| std::fs::read(&plain_files[i]).unwrap()[MIB - 1],
                || (),
            )
        });
    });
    g.finish();
}

/// Times `load(i)` of objects in turn, each file dropped from the page
/// cache before; `settle` (untimed) lets the pool evict what it loaded.
fn cold(
    iters: u64,
    files: &[std::path::PathBuf],
    load: impl Fn(usize) -> u8,
    settle: impl Fn(),
) -> Duration {
    let mut total = Duration::ZERO;
    for n in 0..iters as usize {
        let i = n % files.len();
        if let Ok(f) = std::fs::File::open(&files[i]) {
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
        let start = Instant::now();
        std::hint::black_box(load(i));
        total += start.elapsed();
        settle();
    }
    total
}

/// A Zipf(1) trace over `n` objects: rank r drawn with weight 1/r.
fn zipf_trace(n: usize, len: usize) -> Vec<usize> {
    let cdf: Vec<f64> = (1..=n)
        .scan(0.0, |acc, r| {
            *acc += 1.0 / r as f64;
            Some(*acc)
        })
        .collect();
    let total = cdf[n - 1];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    // Ranks are scattered over object ids so "hot" is not "inserted first".
    let ids: Vec<usize> = (0..n).map(|r| (r * 7919) % n).collect();
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * total;
            ids[cdf.partition_point(|&c| c < u).min(n - 1)]
        })
        .collect()
}

struct Ratios {
    statemesh: f64,
    file_backed: f64,
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
    let mine: Vec<_> = (0..N).map(|i| pool.insert(bytes(i, SIZE))).collect();
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
    Ratios {
        statemesh,
        file_backed,
        lru: lru_hit_ratio(&trace, budget_items),
    }
}

/// Exact LRU of `capacity` objects (a reference, not a cache).
fn lru_hit_ratio(trace: &[usize], capacity: usize) -> f64 {
    let mut last_use: HashMap<usize, u64> = HashMap::new();
    let mut order: VecDeque<(usize, u64)> = VecDeque::new();
    let mut hits = 0;
    for (t, &i) in trace.iter().enumerate() {
        let t = t as u64;
        if last_use.contains_key(&i) {
            hits += 1;
        }
        last_use.insert(i, t);
        order.push_back((i, t));
        while last_use.len() > capacity {
            let (old, when) = order.pop_front().unwrap();
            if last_use.get(&old) == Some(&when) {
                last_use.remove(&old);
            }
        }
    }
    hits as f64 / trace.len() as f64
}

fn estimate(group: &str, id: &str) -> Option<f64> {
    let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion");
    let text =
        std::fs::read_to_string(home.join(group).join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn summary(_: &mut Criterion) {
    let mut out = String::from(
        "\n## Summary\n\n| measure | statemesh | file_backed | ratio |\n|---|---|---|---|\n",
    );
    for (what, group, ours_id, theirs_id) in [
        (
            "hit, 1 thread (ns)",
            "hit",
            "statemesh/1 thread",
            "file_backed/1 thread",
        ),
        (
            "hit, 2 threads (ns per load)",
            "hit",
            "statemesh/2 threads",
            "file_backed/2 threads",
        ),
        (
            "miss-load 1 MiB (µs)",
            "miss-load 1 MiB",
            "statemesh",
            "file_backed",
        ),
    ] {
        let scale = if group == "hit" { 1.0 } else { 1e-3 };
        if let (Some(a), Some(b)) = (estimate(group, ours_id), estimate(group, theirs_id)) {
            out += &format!(
                "| {what} | {:.1} | {:.1} | {:.2}x faster |\n",
                a * scale,
                b * scale,
                b / a
            );
        }
    }
    if let (Some(a), Some(r)) = (
        estimate("miss-load 1 MiB", "statemesh"),
        estimate("miss-load 1 MiB", "fs::read"),
    ) {
        out += &format!(
            "| miss-load 1 MiB vs fs::read of 1 MiB ({:.1} µs) | | | {:.2}x the read time |\n",
            r * 1e-3,
            a / r
        );
    }
    out += "\n| Zipf(1) hit ratio, 1,000 objects | statemesh (S3-FIFO) | file_backed | exact LRU |\n|---|---|---|---|\n";
    for share in [0.1, 0.5] {
        let r = hit_ratios(share);
        out += &format!(
            "| budget {:.0}% | {:.3} | {:.3} | {:.3} |\n",
            share * 100.0,
            r.statemesh,
            r.file_backed,
            r.lru
        );
    }
    println!("{out}");
}

criterion_group!(benches, hits, miss_loads, summary);
criterion_main!(benches);
