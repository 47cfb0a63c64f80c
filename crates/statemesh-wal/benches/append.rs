//! statemesh-wal against hiqlite-wal 0.15.1 and against the disk itself, in
//! one run on the same disk.
//!
//! ```text
//! cargo bench -p statemesh-wal --features openraft --bench append
//! ```
//!
//! * Appends of 256 B and 4 KiB entries with 1, 16 and 64 concurrent
//!   appenders, each appender waiting until its entry is durable before it
//!   issues the next: statemesh-wal under `SyncPolicy::Always`, hiqlite-wal
//!   under `LogSync::Immediate` (its strictest level: `msync(MS_SYNC)` after
//!   every append call). Each crate is driven two ways:
//!   - its most direct API: statemesh-wal's `Wal::append` + `Append::wait`
//!     from OS threads (and `.await` from tokio tasks); hiqlite-wal's public
//!     writer channel (`Action::Append` with a flush callback), which is
//!     the exact call its own openraft `append` makes;
//!   - openraft's `RaftLogStorage::append` with a real `LogFlushed`. That
//!     callback has no public constructor in openraft 0.9.25 (`new` is
//!     `pub(crate)`); the only public way to get one is
//!     `RaftLogStorageExt::blocking_append`, which builds it, calls `append`
//!     and awaits the callback, holding `&mut self` throughout. So: N tokio
//!     tasks share the store behind a `tokio::sync::Mutex`, each appending
//!     one entry and awaiting its flush under the lock (`*_raft_mutex`, both
//!     crates); and, for statemesh-wal only (its `RaftLog` is `Clone`,
//!     hiqlite's `LogStore` is not), each task has its own clone and holds a
//!     sequencing lock only until `append` has returned, then awaits the
//!     flush without it, as openraft's core issues appends
//!     (`statemesh_raft`).
//! * The disk's own limit: one `pwrite` + `fdatasync` per entry into a
//!   zero-filled (and, for contrast, a merely `fallocate`d) file, and one
//!   `pwrite` of 16 or 64 entries + one `fdatasync` (the ceiling of any
//!   group commit of that size).
//! * Sequential (1000 consecutive entries per call) and random (1000
//!   single-entry reads at spread indices) reads of 100,000 entries of 256 B
//!   and 20,000 of 4 KiB, through openraft's `RaftLogReader` for both crates
//!   and through `Wal::iter`/`Wal::get` for statemesh-wal.
//!
//! Criterion times a fixed number of appends per call (`iter_custom`), so
//! it reports time per append with its confidence interval. After each
//! append configuration a separate pass of about one second (on the same
//! log) records every append's latency (p50/p99), the process's CPU time
//! and context switches, and the block device's flush requests and bytes
//! written. A summary table is printed at
//! the end (criterion's estimates are read back from its JSON files).

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use statemesh_wal::{RaftLog, SyncPolicy, Wal, WalOptions};
use std::fmt::Write as _;
use std::future::Future;
use std::io::Cursor;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

openraft::declare_raft_types!(
    /// Entries are opaque bytes.
    pub TypeConfig: D = Vec<u8>, R = ()
);

const SIZES: [usize; 2] = [256, 4096];
const APPENDERS: [usize; 3] = [1, 16, 64];
/// hiqlite-wal's default WAL file size (2 MiB).
const HIQLITE_WAL_SIZE: u32 = 2 * 1024 * 1024;

/// Where every log of this benchmark lives: the workspace's target
/// directory, on the work disk (not tmpfs: syncs must reach the device).
fn bench_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp/statemesh-wal-append")
}

fn bench_dir(name: &str) -> PathBuf {
    let dir = bench_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One durable append, as a blocking call (run on OS threads) or as a
/// future (run on tokio tasks).
#[derive(Clone)]
enum Op {
    Blocking(Arc<dyn Fn() + Send + Sync>),
    Async(Arc<dyn Fn() -> BoxFuture + Send + Sync>),
}

/// A store under test and how to shut it down cleanly.
struct Target {
    op: Op,
    close: Box<dyn FnOnce()>,
    dir: PathBuf,
}

impl Target {
    fn close(self) {
        drop(self.op);
        (self.close)();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs about `total` appends spread evenly over `appenders` concurrent
/// appenders (each does `ceil(total / appenders)`); returns the wall time
/// scaled to `total` appends and, if asked, every append's latency.
fn run(
    rt: &tokio::runtime::Runtime,
    op: &Op,
    appenders: usize,
    total: u64,
    latencies: bool,
) -> (Duration, Vec<Duration>) {
    let per = total.div_ceil(appenders as u64).max(1);
    let done = per * appenders as u64;
    let (wall, lat) = match op {
        Op::Blocking(f) => {
            let barrier = Arc::new(std::sync::Barrier::new(appenders + 1));
            let handles: Vec<_> = (0..appenders)
                .map(|_| {
                    let (f, barrier) = (Arc::clone(f), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        let mut lat = Vec::with_capacity(if latencies { per as usize } else { 0 });
                        barrier.wait();
                        for _ in 0..per {
                            let t = Instant::now();
                            f();
                            if latencies {
                                lat.push(t.elapsed());
                            }
                        }
                        lat
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let lat: Vec<Duration> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            (start.elapsed(), lat)
        }
        Op::Async(f) => rt.block_on(async {
            let barrier = Arc::new(tokio::sync::Barrier::new(appenders + 1));
            let handles: Vec<_> = (0..appenders)
                .map(|_| {
                    let (f, barrier) = (Arc::clone(f), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(if latencies { per as usize } else { 0 });
                        barrier.wait().await;
                        for _ in 0..per {
                            let t = Instant::now();
                            f().await;
                            if latencies {
                                lat.push(t.elapsed());
                            }
                        }
                        lat
                    })
                })
                .collect();
            barrier.wait().await;
            let start = Instant::now();
            let mut lat = Vec::new();
            for h in handles {
                lat.extend(h.await.unwrap());
            }
            (start.elapsed(), lat)
        }),
    };
    (wall.mul_f64(total as f64 / done as f64), lat)
}

fn payload(size: usize) -> Vec<u8> {
    vec![0xA5; size]
}

fn entry(index: u64, size: usize) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
        payload: EntryPayload::Normal(vec![(index % 251) as u8; size]),
    }
}

fn open_statemesh(dir: &Path) -> Wal {
    Wal::open(dir, WalOptions::new().sync(SyncPolicy::Always)).unwrap()
}

fn open_hiqlite(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
) -> (hiqlite_wal::LogStore<TypeConfig>, Box<dyn FnOnce()>) {
    let store = rt
        .block_on(hiqlite_wal::LogStore::<TypeConfig>::start(
            dir.to_string_lossy().into_owned(),
            hiqlite_wal::LogSync::Immediate,
            HIQLITE_WAL_SIZE,
        ))
        .unwrap();
    let handle = store.shutdown_handle();
    let rt = rt.handle().clone();
    let close = Box::new(move || rt.block_on(handle.shutdown()).unwrap());
    (store, close)
}

/// statemesh-wal, `Wal::append(..)?.wait()` from OS threads.
fn statemesh_wait(_: &tokio::runtime::Runtime, size: usize, dir: PathBuf) -> Target {
    let wal = Arc::new(open_statemesh(&dir));
    let w = Arc::clone(&wal);
    Target {
        op: Op::Blocking(Arc::new(move || {
            w.append(payload(size)).unwrap().wait().unwrap();
        })),
        close: Box::new(move || drop(wal)),
        dir,
    }
}

/// statemesh-wal, `Wal::append(..)?.await` from tokio tasks.
fn statemesh_await(_: &tokio::runtime::Runtime, size: usize, dir: PathBuf) -> Target {
    let wal = Arc::new(open_statemesh(&dir));
    let w = Arc::clone(&wal);
    Target {
        op: Op::Async(Arc::new(move || {
            let append = w.append(payload(size)).unwrap();
            Box::pin(async move { append.await.unwrap() })
        })),
        close: Box::new(move || drop(wal)),
        dir,
    }
}

/// statemesh-wal through openraft's `RaftLogStorage::append` with a real
/// `LogFlushed`: each task owns a clone of the `RaftLog`; a sequencing lock
/// (handing out the next index) is held until `append` has returned (the
/// entry is written), then released while the task awaits the flush. That
/// is how openraft's core drives `append`: one call at a time, callbacks
/// outstanding.
fn statemesh_raft(_: &tokio::runtime::Runtime, size: usize, dir: PathBuf) -> Target {
    let log = RaftLog::<TypeConfig>::new(open_statemesh(&dir));
    let seq = Arc::new(tokio::sync::Mutex::new(1u64));
    let keep = log.clone();
    Target {
        op: Op::Async(Arc::new(move || {
            let (mut log, probe, seq) = (log.clone(), log.clone(), Arc::clone(&seq));
            Box::pin(async move {
                let mut guard = Some(seq.lock_owned().await);
                let index = guard.as_deref().copied().unwrap_or_default();
                if let Some(g) = guard.as_deref_mut() {
                    *g += 1;
                }
                let fut = log.blocking_append(std::iter::once(entry(index, size)));
                let mut fut = std::pin::pin!(fut);
                std::future::poll_fn(|cx| {
                    let r = fut.as_mut().poll(cx);
                    if r.is_ready() || probe.wal().next_index() > index {
                        guard = None;
                    }
                    r
                })
                .await
                .unwrap();
            })
        })),
        close: Box::new(move || drop(keep)),
        dir,
    }
}

/// Any openraft log store behind a `tokio::sync::Mutex`: each task takes the
/// lock, appends one entry with `blocking_append` (a real `LogFlushed`) and
/// awaits its flush before it lets go.
fn raft_mutex<S>(store: S, size: usize) -> Op
where
    S: RaftLogStorage<TypeConfig> + Send + 'static,
{
    let store = Arc::new(tokio::sync::Mutex::new((store, 1u64)));
    Op::Async(Arc::new(move || {
        let store = Arc::clone(&store);
        Box::pin(async move {
            let mut guard = store.lock().await;
            let (store, next) = &mut *guard;
            let index = *next;
            *next += 1;
            store
                .blocking_append(std::iter::once(entry(index, size)))
                .await
                .unwrap();
        })
    }))
}

fn statemesh_raft_mutex(_: &tokio::runtime::Runtime, size: usize, dir: PathBuf) -> Target {
    let log = RaftLog::<TypeConfig>::new(open_statemesh(&dir));
    let keep = log.clone();
    Target {
        op: raft_mutex(log, size),
        close: Box::new(move || drop(keep)),
        dir,
    }
}

fn hiqlite_raft_mutex(rt: &tokio::runtime::Runtime, size: usize, dir: PathBuf) -> Target {
    let (store, close) = open_hiqlite(rt, &dir);
    Target {
        op: raft_mutex(store, size),
        close,
        dir,
    }
}

/// hiqlite-wal through its public writer channel, exactly as its own
/// `RaftLogStorage::append` does it (send `Action::Append`, stream the
/// entries, await the write ack; the callback fires after the flush), but
/// with a plain callback instead of openraft's `LogFlushed`, so that several
/// appends can be in flight. The next index is handed out under a lock so
/// that entries reach its writer thread in index order. The bytes stored
/// are the raw payload, as for `Wal::append`.
fn hiqlite_channel(rt: &tokio::runtime::Runtime, size: usize, dir: PathBuf) -> Target {
    let (store, close) = open_hiqlite(rt, &dir);
    let writer = store.writer.clone();
    let next = Arc::new(Mutex::new(1u64));
    Target {
        op: Op::Blocking(Arc::new(move || {
            let (tx, rx) = flume::bounded(2);
            let (ack, ack_rx) = tokio::sync::oneshot::channel();
            let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
            let callback = Box::new(move |r: Result<(), std::io::Error>| {
                let _ = done_tx.send(r.is_ok());
            });
            {
                let mut next = next.lock().unwrap();
                writer
                    .send(hiqlite_wal::Action::Append { rx, callback, ack })
                    .unwrap();
                tx.send(Some((*next, payload(size)))).unwrap();
                tx.send(None).unwrap();
                *next += 1;
            }
            ack_rx.blocking_recv().unwrap().unwrap();
            assert!(done_rx.recv().unwrap(), "hiqlite flush failed");
        })),
        close: Box::new(move || {
            close();
            drop(store);
        }),
        dir,
    }
}

const RAW_FILE: u64 = 64 << 20;

/// A 64 MiB file for the disk's own limit: zero-filled and synced (so each
/// `fdatasync` carries only data, as in statemesh-wal's segments), or only
/// `fallocate`d (unwritten extents: the first write into each block also
/// changes metadata, as in a sparse or fallocated log file).
fn raw_file(dir: &Path, zero_filled: bool) -> std::fs::File {
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("raw"))
        .unwrap();
    if zero_filled {
        let zeros = vec![0u8; 1 << 20];
        for mib in 0..RAW_FILE >> 20 {
            file.write_all_at(&zeros, mib << 20).unwrap();
        }
    } else {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor owned by `file`; no memory is passed.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, RAW_FILE as libc::off_t) };
        assert_eq!(r, 0, "fallocate: {}", std::io::Error::last_os_error());
    }
    file.sync_all().unwrap();
    file
}

/// One `pwrite` of `batch` entries + one `fdatasync` per call, at
/// consecutive offsets (wrapping inside the file).
fn disk(
    _: &tokio::runtime::Runtime,
    size: usize,
    dir: PathBuf,
    zero: bool,
    batch: usize,
) -> Target {
    let file = raw_file(&dir, zero);
    let offset = AtomicU64::new(0);
    let buf = vec![0xA5u8; size * batch];
    Target {
        op: Op::Blocking(Arc::new(move || {
            let len = buf.len() as u64;
            let mut at = offset.fetch_add(len, Ordering::Relaxed) % RAW_FILE;
            if at + len > RAW_FILE {
                at = 0;
            }
            file.write_all_at(&buf, at).unwrap();
            file.sync_data().unwrap();
        })),
        close: Box::new(|| {}),
        dir,
    }
}

/// Resource counters around a latency pass.
#[derive(Clone, Copy)]
struct Counters {
    cpu: Duration,
    voluntary: i64,
    involuntary: i64,
    flushes: u64,
    sectors_written: u64,
}

fn counters(device_stat: &Option<PathBuf>) -> Counters {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a `rusage` into the pointer it is given.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: zeroed is a valid `rusage` (plain integers), and it succeeded.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    // /sys/dev/block/M:m/stat: field 7 is sectors written, 16 flush requests.
    let (flushes, sectors_written) = device_stat
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|s| {
            let f: Vec<u64> = s
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            (
                f.get(15).copied().unwrap_or(0),
                f.get(6).copied().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    Counters {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        voluntary: usage.ru_nvcsw,
        involuntary: usage.ru_nivcsw,
        flushes,
        sectors_written,
    }
}

/// The block device holding the benchmark directory, as its sysfs stat file.
fn device_stat() -> Option<PathBuf> {
    let dev = std::fs::metadata(bench_root()).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let path = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
    path.exists().then_some(path)
}

/// One latency pass's results.
struct Pass {
    rate: f64,
    p50: Duration,
    p99: Duration,
    cpu_per: Duration,
    switches_per: f64,
    flushes_per: f64,
    bytes_per: f64,
}

/// One row of the append summary.
struct AppendRow {
    size: usize,
    name: &'static str,
    appenders: usize,
    pass: Pass,
}

static APPEND_ROWS: Mutex<Vec<AppendRow>> = Mutex::new(Vec::new());
static READ_ROWS: Mutex<Vec<(usize, &'static str, &'static str)>> = Mutex::new(Vec::new());

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs about one second of appends (as many as criterion's estimate for
/// benchmark `id` says fit, at least 2,000 entries and 50 per appender), so
/// that the pass sees what a sustained load sees (segment rollovers
/// included), recording every call's latency.
fn latency_pass(
    rt: &tokio::runtime::Runtime,
    op: &Op,
    id: &str,
    appenders: usize,
    entries_per_call: usize,
) -> Pass {
    let device = device_stat();
    let per_second = estimate(id).map_or(2000.0, |(ns, _, _)| 1e9 / ns);
    let total = (per_second.clamp(2000.0, 300_000.0) as u64 / entries_per_call as u64)
        .max(50 * appenders as u64);
    let before = counters(&device);
    let (wall, mut lat) = run(rt, op, appenders, total, true);
    let after = counters(&device);
    lat.sort();
    let n = lat.len() as f64;
    let entries = n * entries_per_call as f64;
    Pass {
        // `wall` is scaled to `total` calls.
        rate: (total * entries_per_call as u64) as f64 / wall.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        cpu_per: (after.cpu - before.cpu).div_f64(entries),
        switches_per: ((after.voluntary - before.voluntary)
            + (after.involuntary - before.involuntary)) as f64
            / entries,
        flushes_per: (after.flushes - before.flushes) as f64 / entries,
        bytes_per: (after.sectors_written - before.sectors_written) as f64 * 512.0 / entries,
    }
}

type Make = fn(&tokio::runtime::Runtime, usize, PathBuf) -> Target;

const MODES: [(&str, Make); 6] = [
    ("statemesh_wait", statemesh_wait),
    ("statemesh_await", statemesh_await),
    ("statemesh_raft", statemesh_raft),
    ("statemesh_raft_mutex", statemesh_raft_mutex),
    ("hiqlite_channel", hiqlite_channel),
    ("hiqlite_raft_mutex", hiqlite_raft_mutex),
];

fn bench_appends(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _ = std::fs::remove_dir_all(bench_root());
    for size in SIZES {
        let mut g = c.benchmark_group(format!("append_{size}B"));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));
        // The disk: one entry per fdatasync, then batches of 16 and 64.
        for (name, zero, batch) in [
            ("disk_fdatasync", true, 1),
            ("disk_fdatasync_fallocated", false, 1),
            ("disk_batch", true, 16),
            ("disk_batch", true, 64),
        ] {
            let t = disk(
                &rt,
                size,
                bench_dir(&format!("{name}-{size}-{batch}")),
                zero,
                batch,
            );
            g.bench_function(BenchmarkId::new(name, batch), |b| {
                // `iters` entries: iters / batch syncs, time per entry.
                b.iter_custom(|iters| {
                    let calls = iters.div_ceil(batch as u64);
                    run(&rt, &t.op, 1, calls, false)
                        .0
                        .mul_f64(iters as f64 / (calls * batch as u64) as f64)
                })
            });
            let id = format!("append_{size}B/{name}/{batch}");
            let pass = latency_pass(&rt, &t.op, &id, 1, batch);
            APPEND_ROWS.lock().unwrap().push(AppendRow {
                size,
                name,
                appenders: batch,
                pass,
            });
            t.close();
        }
        for appenders in APPENDERS {
            for (name, make) in MODES {
                let t = make(&rt, size, bench_dir(&format!("{name}-{size}-{appenders}")));
                g.bench_function(BenchmarkId::new(name, appenders), |b| {
                    b.iter_custom(|iters| run(&rt, &t.op, appenders, iters, false).0)
                });
                let id = format!("append_{size}B/{name}/{appenders}");
                let pass = latency_pass(&rt, &t.op, &id, appenders, 1);
                APPEND_ROWS.lock().unwrap().push(AppendRow {
                    size,
                    name,
                    appenders,
                    pass,
                });
                t.close();
            }
        }
        g.finish();
    }
}

fn bench_reads(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (size, count) in [(256usize, 100_000u64), (4096, 20_000)] {
        let ours_dir = bench_dir(&format!("read-statemesh-{size}"));
        let theirs_dir = bench_dir(&format!("read-hiqlite-{size}"));
        let mut ours = RaftLog::<TypeConfig>::new(open_statemesh(&ours_dir));
        let (mut theirs, close_theirs) = open_hiqlite(&rt, &theirs_dir);
        rt.block_on(async {
            for chunk in (1..=count).collect::<Vec<_>>().chunks(1000) {
                let entries: Vec<_> = chunk.iter().map(|&i| entry(i, size)).collect();
                ours.blocking_append(entries.clone()).await.unwrap();
                theirs.blocking_append(entries).await.unwrap();
            }
        });
        let mut ours_r = rt.block_on(ours.get_log_reader());
        let mut theirs_r = rt.block_on(theirs.get_log_reader());
        let wal = ours.wal();
        let picks: Vec<u64> = (0..1000u64).map(|i| 1 + (i * 7919 + 13) % count).collect();
        let next_chunk = |from: &mut u64| {
            let f = *from;
            *from = if f + 2000 > count { 1 } else { f + 1000 };
            f
        };
        let mut g = c.benchmark_group(format!("read_{size}B"));
        g.sample_size(10);
        g.sampling_mode(SamplingMode::Flat);
        g.warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(2));
        g.throughput(Throughput::Elements(1000));
        g.bench_function("sequential_statemesh_raft", |b| {
            let mut from = 1;
            b.iter(|| {
                let f = next_chunk(&mut from);
                let got = rt
                    .block_on(ours_r.try_get_log_entries(f..f + 1000))
                    .unwrap();
                assert_eq!(got.len(), 1000);
                got
            })
        });
        g.bench_function("sequential_hiqlite_raft", |b| {
            let mut from = 1;
            b.iter(|| {
                let f = next_chunk(&mut from);
                let got = rt
                    .block_on(theirs_r.try_get_log_entries(f..f + 1000))
                    .unwrap();
                assert_eq!(got.len(), 1000);
                got
            })
        });
        g.bench_function("sequential_statemesh_wal", |b| {
            let mut from = 1;
            b.iter(|| {
                let f = next_chunk(&mut from);
                let got: Vec<_> = wal.iter(f..f + 1000).map(|r| r.unwrap()).collect();
                assert_eq!(got.len(), 1000);
                got
            })
        });
        g.bench_function("random_statemesh_raft", |b| {
            b.iter(|| {
                for &i in &picks {
                    let got = rt.block_on(ours_r.try_get_log_entries(i..=i)).unwrap();
                    assert_eq!(got.len(), 1);
                    std::hint::black_box(got);
                }
            })
        });
        g.bench_function("random_hiqlite_raft", |b| {
            b.iter(|| {
                for &i in &picks {
                    let got = rt.block_on(theirs_r.try_get_log_entries(i..=i)).unwrap();
                    assert_eq!(got.len(), 1);
                    std::hint::black_box(got);
                }
            })
        });
        g.bench_function("random_statemesh_wal", |b| {
            b.iter(|| {
                for &i in &picks {
                    std::hint::black_box(wal.get(i).unwrap().unwrap());
                }
            })
        });
        g.finish();
        for (kind, name) in [
            ("sequential", "statemesh_raft"),
            ("sequential", "hiqlite_raft"),
            ("sequential", "statemesh_wal"),
            ("random", "statemesh_raft"),
            ("random", "hiqlite_raft"),
            ("random", "statemesh_wal"),
        ] {
            READ_ROWS.lock().unwrap().push((size, kind, name));
        }
        drop((ours_r, theirs_r));
        drop(ours);
        close_theirs();
        drop(theirs);
        let _ = std::fs::remove_dir_all(&ours_dir);
        let _ = std::fs::remove_dir_all(&theirs_dir);
    }
    let _ = std::fs::remove_dir_all(bench_root());
}

/// Criterion's estimate for one benchmark (the slope for linear sampling,
/// else the mean, as criterion prints it): point, lower, upper, in ns.
fn estimate(id: &str) -> Option<(f64, f64, f64)> {
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("criterion"))
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"));
    let text = std::fs::read_to_string(home.join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let e = if v["slope"].is_object() {
        &v["slope"]
    } else {
        &v["mean"]
    };
    let ci = &e["confidence_interval"];
    Some((
        e["point_estimate"].as_f64()?,
        ci["lower_bound"].as_f64()?,
        ci["upper_bound"].as_f64()?,
    ))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn fmt_d(d: Duration) -> String {
    fmt_ns(d.as_nanos() as f64)
}

fn fmt_ci((p, l, u): (f64, f64, f64)) -> String {
    format!("{} [{} – {}]", fmt_ns(p), fmt_ns(l), fmt_ns(u))
}

fn print_summary(_: &mut Criterion) {
    let rows = APPEND_ROWS.lock().unwrap();
    let mut out = String::new();
    let crit = |size: usize, name: &str, n: usize| estimate(&format!("append_{size}B/{name}/{n}"));
    let _ = writeln!(
        out,
        "\n## Appends (criterion: time per entry [95 % CI]; pass: every append's latency)\n"
    );
    let _ = writeln!(
        out,
        "| entry | mode | appenders | criterion time/entry | appends/s | pass appends/s | p50 | p99 | CPU/append | ctx sw/append | device flushes/append | KiB written/append |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows.iter() {
        let (c, rate) = match crit(r.size, r.name, r.appenders) {
            Some(e) => (fmt_ci(e), format!("{:.0}", 1e9 / e.0)),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} B | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.2} | {:.3} | {:.2} |",
            r.size,
            r.name,
            r.appenders,
            c,
            rate,
            r.pass.rate,
            fmt_d(r.pass.p50),
            fmt_d(r.pass.p99),
            fmt_d(r.pass.cpu_per),
            r.pass.switches_per,
            r.pass.flushes_per,
            r.pass.bytes_per / 1024.0,
        );
    }
    let _ = writeln!(
        out,
        "\n## Ratios (criterion point estimates; p50 from the latency pass)\n"
    );
    let _ = writeln!(
        out,
        "| entry | appenders | statemesh_wait / hiqlite_channel (throughput) | statemesh_raft / hiqlite_raft_mutex | statemesh_raft_mutex / hiqlite_raft_mutex | statemesh_wait rate / disk_fdatasync rate | statemesh_await rate / disk rate | statemesh_wait time / disk time | statemesh_wait p50 / disk p50 |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let p50 = |size: usize, name: &str, n: usize| {
        rows.iter()
            .find(|r| r.size == size && r.name == name && r.appenders == n)
            .map(|r| r.pass.p50.as_secs_f64())
    };
    for size in SIZES {
        let disk = crit(size, "disk_fdatasync", 1).map(|e| e.0);
        for n in APPENDERS {
            let t = |name: &str| crit(size, name, n).map(|e| e.0);
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                // Throughput ratio a/b is the inverse of the time ratio.
                (Some(a), Some(b)) => format!("{:.2}", b / a),
                _ => "–".into(),
            };
            let time_ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {size} B | {n} | {} | {} | {} | {} | {} | {} | {} |",
                ratio(t("statemesh_wait"), t("hiqlite_channel")),
                ratio(t("statemesh_raft"), t("hiqlite_raft_mutex")),
                ratio(t("statemesh_raft_mutex"), t("hiqlite_raft_mutex")),
                ratio(t("statemesh_wait"), disk),
                ratio(t("statemesh_await"), disk),
                time_ratio(t("statemesh_wait"), disk),
                time_ratio(
                    p50(size, "statemesh_wait", n),
                    p50(size, "disk_fdatasync", 1)
                ),
            );
        }
    }
    let _ = writeln!(
        out,
        "\n## Reads (criterion: time per 1000 entries [95 % CI])\n"
    );
    let _ = writeln!(
        out,
        "| entry | access | path | per 1000 entries | entries/s | MB/s (payload) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for &(size, kind, name) in READ_ROWS.lock().unwrap().iter() {
        if let Some(e) = estimate(&format!("read_{size}B/{kind}_{name}")) {
            let per_s = 1000.0 * 1e9 / e.0;
            let _ = writeln!(
                out,
                "| {size} B | {kind} | {name} | {} | {:.0} | {:.1} |",
                fmt_ci(e),
                per_s,
                per_s * size as f64 / 1e6
            );
        }
    }
    println!("{out}");
}

criterion_group!(benches, bench_appends, bench_reads, print_summary);
criterion_main!(benches);
