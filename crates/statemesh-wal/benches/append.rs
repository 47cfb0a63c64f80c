//! statemesh-wal against hiqlite-wal 0.15.1 and against the disk itself, in
//! one run on the same disk:
//!
//! * appends per second with 1, 16 and 64 concurrent appenders of 256 B and
//!   4 KiB entries, each appender waiting until its entry is durable before
//!   it appends the next: statemesh-wal under `SyncPolicy::Always`,
//!   hiqlite-wal under `LogSync::Immediate` (its strictest level);
//! * the disk's own limit: a loop of `pwrite` + `fdatasync` of the same size;
//! * sequential and random reads through openraft's `RaftLogReader`, which
//!   is how both crates serve Raft.
//!
//! ```text
//! cargo bench -p statemesh-wal --features openraft --bench append
//! ```
//!
//! Criterion reports time per append (its confidence interval shows the
//! noise); p50/p99 latencies of each configuration are printed at the end
//! from a separate pass of 2,000 appends per appender count.
//!
//! hiqlite-wal is driven through its public writer channel (`Action::Append`),
//! the same call its openraft `append` makes, so that several appenders can
//! be in flight at once (its `RaftLogStorage` takes `&mut self`, and
//! openraft's flush callback cannot be built outside openraft).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use statemesh_wal::{RaftLog, SyncPolicy, Wal, WalOptions};
use std::io::Cursor;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

openraft::declare_raft_types!(
    /// Entries are opaque bytes.
    pub TypeConfig: D = Vec<u8>, R = ()
);

const SIZES: [usize; 2] = [256, 4096];
const APPENDERS: [usize; 3] = [1, 16, 64];

/// A directory on the work disk (not tmpfs: syncs must reach the device).
fn bench_dir(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-tmp")
        .join(name);
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// Something that appends one entry and returns once it is durable.
trait Appender: Send + Sync {
    fn append_durable(&self, payload: Vec<u8>);
}

impl Appender for Wal {
    fn append_durable(&self, payload: Vec<u8>) {
        self.append(payload).unwrap().wait().unwrap();
    }
}

/// hiqlite-wal's writer, with the next index handed out under a lock so
/// that entries reach its writer thread in index order.
struct Hiqlite {
    store: hiqlite_wal::LogStore<TypeConfig>,
    next: Mutex<u64>,
}

impl Appender for Hiqlite {
    fn append_durable(&self, payload: Vec<u8>) {
        let (tx, rx) = flume::bounded(2);
        let (ack, ack_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let callback = Box::new(move |r: Result<(), std::io::Error>| {
            let _ = done_tx.send(r.is_ok());
        });
        {
            let mut next = self.next.lock().unwrap();
            self.store
                .writer
                .send(hiqlite_wal::Action::Append { rx, callback, ack })
                .unwrap();
            tx.send(Some((*next, payload))).unwrap();
            tx.send(None).unwrap();
            *next += 1;
        }
        ack_rx.blocking_recv().unwrap().unwrap();
        assert!(done_rx.recv().unwrap(), "hiqlite flush failed");
    }
}

/// Runs `total` appends spread over `appenders` threads; returns the wall
/// time and, if asked, every append's latency.
fn run(
    target: &Arc<dyn Appender>,
    appenders: usize,
    total: u64,
    size: usize,
    latencies: bool,
) -> (Duration, Vec<Duration>) {
    let per = (total / appenders as u64).max(1);
    let barrier = Arc::new(std::sync::Barrier::new(appenders + 1));
    let handles: Vec<_> = (0..appenders)
        .map(|_| {
            let target = Arc::clone(target);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                barrier.wait();
                for _ in 0..per {
                    let t = Instant::now();
                    target.append_durable(vec![0xA5; size]);
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
    (
        start.elapsed() * total as u32 / (per * appenders as u64) as u32,
        lat,
    )
}

fn statemesh(dir: &Path) -> Arc<dyn Appender> {
    Arc::new(Wal::open(dir, WalOptions::new().sync(SyncPolicy::Always)).unwrap())
}

fn hiqlite(rt: &tokio::runtime::Runtime, dir: &Path) -> Arc<dyn Appender> {
    let store = rt
        .block_on(hiqlite_wal::LogStore::<TypeConfig>::start(
            dir.to_string_lossy().into_owned(),
            hiqlite_wal::LogSync::Immediate,
            // Its default segment size: 2 MiB.
            2 * 1024 * 1024,
        ))
        .unwrap();
    Arc::new(Hiqlite {
        store,
        next: Mutex::new(1),
    })
}

/// The disk's own limit: one `pwrite` + `fdatasync` per entry, into a file
/// whose 64 MiB were written with zeros and synced first, so each sync
/// carries only the data (no size or extent change): the fastest a
/// `write` + `fdatasync` loop gets on this disk.
struct Raw {
    file: std::fs::File,
    offset: AtomicU64,
}

impl Appender for Raw {
    fn append_durable(&self, payload: Vec<u8>) {
        let at = self
            .offset
            .fetch_add(payload.len() as u64, Ordering::Relaxed)
            % ((64 << 20) - 4096);
        self.file.write_all_at(&payload, at).unwrap();
        self.file.sync_data().unwrap();
    }
}

fn raw(dir: &Path) -> Arc<dyn Appender> {
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("raw"))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for mib in 0..64u64 {
        file.write_all_at(&zeros, mib << 20).unwrap();
    }
    file.sync_all().unwrap();
    Arc::new(Raw {
        file,
        offset: AtomicU64::new(0),
    })
}

/// Latency summary lines, printed after the criterion run.
static SUMMARY: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summarize(name: &str, size: usize, appenders: usize, target: &Arc<dyn Appender>) {
    let total = if appenders == 1 {
        1000
    } else {
        2000 * appenders as u64 / 16
    };
    let (wall, mut lat) = run(target, appenders, total, size, true);
    lat.sort();
    let rate = lat.len() as f64 / wall.as_secs_f64();
    SUMMARY.lock().unwrap().push(format!(
        "{name:<10} {size:>5} B {appenders:>3} appenders: {rate:>9.0} appends/s  p50 {:>8.1?}  p99 {:>8.1?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    ));
}

fn bench_appends(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for size in SIZES {
        let mut g = c.benchmark_group(format!("append_{size}B"));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(4));
        let raw = raw(&bench_dir(&format!("raw-{size}")));
        g.bench_function(BenchmarkId::new("write+fdatasync", 1), |b| {
            b.iter_custom(|iters| run(&raw, 1, iters, size, false).0)
        });
        summarize("disk", size, 1, &raw);
        for appenders in APPENDERS {
            let ours = statemesh(&bench_dir(&format!("statemesh-{size}-{appenders}")));
            g.bench_function(BenchmarkId::new("statemesh", appenders), |b| {
                b.iter_custom(|iters| run(&ours, appenders, iters, size, false).0)
            });
            summarize("statemesh", size, appenders, &ours);
            let theirs = hiqlite(&rt, &bench_dir(&format!("hiqlite-{size}-{appenders}")));
            g.bench_function(BenchmarkId::new("hiqlite", appenders), |b| {
                b.iter_custom(|iters| run(&theirs, appenders, iters, size, false).0)
            });
            summarize("hiqlite", size, appenders, &theirs);
        }
        g.finish();
    }
}

fn entry(index: u64, size: usize) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
        payload: EntryPayload::Normal(vec![(index % 251) as u8; size]),
    }
}

fn bench_reads(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (size, count) in [(256usize, 100_000u64), (4096, 20_000)] {
        let mut ours = RaftLog::<TypeConfig>::new(
            Wal::open(
                bench_dir(&format!("read-statemesh-{size}")),
                WalOptions::new(),
            )
            .unwrap(),
        );
        let mut theirs = rt
            .block_on(hiqlite_wal::LogStore::<TypeConfig>::start(
                bench_dir(&format!("read-hiqlite-{size}"))
                    .to_string_lossy()
                    .into_owned(),
                hiqlite_wal::LogSync::Immediate,
                2 * 1024 * 1024,
            ))
            .unwrap();
        rt.block_on(async {
            for chunk in (1..=count).collect::<Vec<_>>().chunks(1000) {
                let entries: Vec<_> = chunk.iter().map(|&i| entry(i, size)).collect();
                ours.blocking_append(entries.clone()).await.unwrap();
                theirs.blocking_append(entries).await.unwrap();
            }
        });
        let mut ours_r = rt.block_on(ours.get_log_reader());
        let mut theirs_r = rt.block_on(theirs.get_log_reader());
        let mut g = c.benchmark_group(format!("read_{size}B"));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));
        g.throughput(criterion::Throughput::Elements(1000));
        g.bench_function("sequential_1000/statemesh", |b| {
            let mut from = 1;
            b.iter(|| {
                let got = rt
                    .block_on(ours_r.try_get_log_entries(from..from + 1000))
                    .unwrap();
                assert_eq!(got.len(), 1000);
                from = if from + 2000 > count { 1 } else { from + 1000 };
            })
        });
        g.bench_function("sequential_1000/hiqlite", |b| {
            let mut from = 1;
            b.iter(|| {
                let got = rt
                    .block_on(theirs_r.try_get_log_entries(from..from + 1000))
                    .unwrap();
                assert_eq!(got.len(), 1000);
                from = if from + 2000 > count { 1 } else { from + 1000 };
            })
        });
        let picks: Vec<u64> = (0..1000u64).map(|i| 1 + (i * 7919 + 13) % count).collect();
        g.bench_function("random_1000/statemesh", |b| {
            b.iter(|| {
                for &i in &picks {
                    let got = rt.block_on(ours_r.try_get_log_entries(i..=i)).unwrap();
                    assert_eq!(got.len(), 1);
                }
            })
        });
        g.bench_function("random_1000/hiqlite", |b| {
            b.iter(|| {
                for &i in &picks {
                    let got = rt.block_on(theirs_r.try_get_log_entries(i..=i)).unwrap();
                    assert_eq!(got.len(), 1);
                }
            })
        });
        g.finish();
    }
}

fn print_summary(_: &mut Criterion) {
    eprintln!("\nLatency per append (separate pass, each appender waits for durability):");
    for line in SUMMARY.lock().unwrap().iter() {
        eprintln!("{line}");
    }
}

criterion_group!(benches, bench_appends, bench_reads, print_summary);
criterion_main!(benches);
