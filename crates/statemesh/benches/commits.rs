//! Commits per second and latency of an in-process 3-node cluster.
//!
//! ```text
//! cargo bench -p statemesh --bench commits
//! ```
//!
//! * `Cell<u64>` writes and `Map<u64, 256-byte value>` inserts (10,000
//!   keys, overwritten round-robin, so the map and its snapshots stay the
//!   same size however long criterion runs), sent to the leader by 1, 64
//!   and 256 concurrent writers, each waiting for its write's outcome
//!   before it sends the next.
//! * Two logs: statemesh-wal on disk under `SyncPolicy::Always` (every
//!   node `fdatasync`s before it acknowledges; the three nodes share this
//!   machine's one disk), and the same log code over memory, for
//!   comparison with openraft's published in-process figures (in-memory
//!   store, 3 nodes: 70k writes/s with 1 client, 730k with 64, 1M with 256,
//!   on an M1 Max).
//!
//! Criterion times a fixed number of writes per call (`iter_custom`), so it
//! reports time per commit with its confidence interval. After each
//! configuration a separate pass of about two seconds records every write's
//! latency (p50/p99). A summary table is printed at the end (criterion's
//! estimates are read back from its JSON files).

#[path = "shared/estimate.rs"]
mod estimate;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use estimate::estimate;
use statemesh::{Cell, LogStorage, Map, MemoryNetwork, Network, Node, NodeOptions, SyncPolicy};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WRITERS: [usize; 3] = [1, 64, 256];
const MAP_KEYS: u64 = 10_000;
const VALUE: usize = 256;

/// The clusters live under the workspace's target directory, on the work
/// disk (not tmpfs: syncs must reach the device).
fn bench_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp/statemesh-commits")
}

/// One write: returns when its outcome is back.
type Write = Arc<dyn Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Cluster {
    nodes: Vec<Node>,
    write: Write,
}

impl Cluster {
    async fn start(name: &str, log: LogStorage, map: bool) -> Self {
        let dir = bench_root().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let net = MemoryNetwork::new();
        let voters = [1, 2, 3];
        let options = NodeOptions {
            log,
            ..NodeOptions::default()
        };
        let nodes: Vec<Node> = voters
            .iter()
            .map(|&id| {
                let n: Arc<dyn Network> = net.clone();
                Node::open(id, dir.join(id.to_string()), n, options.clone()).unwrap()
            })
            .collect();
        // Writers go to the leader's handle: forwarding from a follower is
        // measured by the network layer's benchmarks, not here.
        let write: Write = if map {
            let mut maps = Vec::new();
            for n in &nodes {
                maps.push(Map::<u64, Vec<u8>>::open(n, "m", &voters).await.unwrap());
            }
            maps[0].insert(0, vec![0; VALUE]).await.unwrap();
            let leader = maps[0].group().leader().unwrap();
            let m = maps.into_iter().nth(leader as usize - 1).unwrap();
            Arc::new(move |i| {
                let m = m.clone();
                Box::pin(async move {
                    m.insert(i % MAP_KEYS, vec![i as u8; VALUE]).await.unwrap();
                })
            })
        } else {
            let mut cells = Vec::new();
            for n in &nodes {
                cells.push(Cell::<u64>::open(n, "c", &voters).await.unwrap());
            }
            cells[0].write(0).await.unwrap();
            let leader = cells[0].group().leader().unwrap();
            let c = cells.into_iter().nth(leader as usize - 1).unwrap();
            Arc::new(move |i| {
                let c = c.clone();
                Box::pin(async move {
                    c.write(i).await.unwrap();
                })
            })
        };
        Self { nodes, write }
    }

    async fn stop(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}

/// `total` writes from `writers` concurrent tasks; returns the elapsed
/// time and, if asked, every write's latency.
async fn run(write: &Write, writers: usize, total: u64, record: bool) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (write, next) = (Arc::clone(write), Arc::clone(&next));
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return lat;
                    }
                    let t = Instant::now();
                    write(i).await;
                    if record {
                        lat.push(t.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (start.elapsed(), all)
}

struct Row {
    id: String,
    collection: &'static str,
    log: &'static str,
    writers: usize,
    pass_rate: f64,
    p50: Duration,
    p99: Duration,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn bench_commits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = std::fs::remove_dir_all(bench_root());
    for (log_name, log) in [
        ("wal_always", LogStorage::Disk(SyncPolicy::Always)),
        ("memory", LogStorage::Memory),
    ] {
        for (collection, map) in [("cell_write", false), ("map_insert", true)] {
            let group_name = format!("{collection}_{log_name}");
            let mut g = c.benchmark_group(&group_name);
            g.sample_size(10);
            g.warm_up_time(Duration::from_secs(1));
            g.measurement_time(Duration::from_secs(4));
            g.throughput(Throughput::Elements(1));
            for writers in WRITERS {
                let cluster =
                    rt.block_on(Cluster::start(&format!("{group_name}-{writers}"), log, map));
                let write = Arc::clone(&cluster.write);
                let mut measured = false;
                g.bench_function(BenchmarkId::from_parameter(writers), |b| {
                    measured = true;
                    b.iter_custom(|iters| rt.block_on(run(&write, writers, iters, false)).0)
                });
                if !measured {
                    // Skipped by a criterion filter: no latency pass either.
                    rt.block_on(cluster.stop());
                    continue;
                }
                let id = format!("{group_name}/{writers}");
                // About two seconds at criterion's rate, at least 20 writes
                // per writer.
                let per_second = estimate(&id).map_or(1000.0, |(ns, _, _)| 1e9 / ns);
                let total = ((per_second * 2.0) as u64).max(20 * writers as u64);
                let (wall, mut lat) = rt.block_on(run(&write, writers, total, true));
                lat.sort();
                ROWS.lock().unwrap().push(Row {
                    id,
                    collection,
                    log: log_name,
                    writers,
                    pass_rate: total as f64 / wall.as_secs_f64(),
                    p50: percentile(&lat, 0.5),
                    p99: percentile(&lat, 0.99),
                });
                rt.block_on(cluster.stop());
            }
            g.finish();
        }
    }
    let _ = std::fs::remove_dir_all(bench_root());
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// openraft 0.9.25's published in-process writes per second (3 nodes,
/// in-memory store, M1 Max) for 1, 64 and 256 clients.
fn openraft_published(writers: usize) -> Option<f64> {
    match writers {
        1 => Some(70_000.0),
        64 => Some(730_000.0),
        256 => Some(1_000_000.0),
        _ => None,
    }
}

fn print_summary(_: &mut Criterion) {
    let rows = ROWS.lock().unwrap();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Commits on an in-process 3-node cluster (criterion: commits/s from time per commit [95 % CI]; pass: every write's latency)\n"
    );
    let _ = writeln!(
        out,
        "| workload | log | writers | commits/s [95 % CI] | pass commits/s | p50 | p99 | vs openraft published |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in rows.iter() {
        let (crit, rate) = match estimate(&r.id) {
            // A longer time per commit is a lower rate: the bounds swap.
            Some((p, lo, hi)) => (
                format!("{:.0} [{:.0} – {:.0}]", 1e9 / p, 1e9 / hi, 1e9 / lo),
                Some(1e9 / p),
            ),
            None => ("–".into(), None),
        };
        let published = match (r.log, rate, openraft_published(r.writers)) {
            ("memory", Some(rate), Some(theirs)) => format!("{:.2}×", rate / theirs),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            r.collection,
            r.log,
            r.writers,
            crit,
            r.pass_rate,
            ms(r.p50),
            ms(r.p99),
            published
        );
    }
    println!("{out}");
}

criterion_group!(benches, bench_commits, print_summary);
criterion_main!(benches);
