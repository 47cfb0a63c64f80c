//! Commit-to-mirror latency: how long after a write is committed it is
//! visible in 1, 100 and 1,000 mirrors.
//!
//! A 3-node cluster runs in this process on loopback (plaintext, fsync on
//! every commit), and so do the mirrors, 100 to a client process (one
//! connection each, the processes connecting to each node in turn). Each
//! node, the writer and each client process has a tokio runtime of its
//! own, as separate processes would; all share this machine's cores. One
//! writer puts 8-byte keys with 256-byte values, one at a time, a pause
//! between writes. A write's commit is the first moment a node's own copy
//! or the writer's acknowledgement showed it (both follow the commit); a
//! consumer task per mirror notes when the mirror has its version. Each
//! round gives p50 and p99 over all (write, mirror) pairs; the table shows
//! the median of the rounds and their range.
//!
//! Last, the same for a local reader: the first node publishes the map to
//! shared memory, and a thread reading it (as another process on the host
//! would) notes when each version appears.
//!
//! Run: `cargo bench -p statemesh --bench mirrors` (`-- --quick` for one
//! short round each, `-- --mirrors 1000` for one count,
//! `-- --one-client-runtime` for every mirror in one process of two worker
//! threads, `-- --cpu` for the CPU time per write of each part,
//! `-- --writes` for when each round's slowest writes reached their last
//! mirror).

use statemesh::collections::MapState;
use statemesh::local::{self, LocalOptions};
use statemesh::network::{Authenticator, Secret};
use statemesh::{
    Client, ClientOptions, Kinds, Map, Mirror, Remote, Security, Server, ServerOptions, TcpOptions,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};

const CLUSTER: &str = "mirror-bench";
const SECRET: &str = "mirror-bench-secret";
type Bytes = MapState<Vec<u8>, Vec<u8>>;
/// When a mirror's watcher saw each version.
type Seen = Arc<Mutex<Vec<(u64, Instant)>>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--mirrors N`: only that count (for profiling one case).
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--mirrors")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let (rounds, writes) = if quick { (1, 30) } else { (3, 100) };
    // Each node, the mirrors, and the writer run on runtimes of their own,
    // as the processes they stand for would, all on this machine's cores.
    let nodes: Vec<Runtime> = ["node-a", "node-b", "node-c"]
        .into_iter()
        .map(|name| runtime(name, 2))
        .collect();
    // The mirrors: 100 to a client process, each process a runtime of one
    // worker (`--one-client-runtime`: all in one runtime of two).
    let shared_clients = args.iter().any(|a| a == "--one-client-runtime");
    // `--cpu`: where the CPU went, per write, for each count.
    let show_cpu = args.iter().any(|a| a == "--cpu");
    // `--writes`: per round, when the last mirror saw each write (a p99
    // over a thousand mirrors is set by the slowest few writes).
    let show_writes = args.iter().any(|a| a == "--writes");
    let clients: Vec<Runtime> = if shared_clients {
        vec![runtime("mirrors", 2)]
    } else {
        (0..10)
            .map(|i| runtime(&format!("mirrors-{i}"), 1))
            .collect()
    };
    let processes: Vec<Handle> = (0..10)
        .map(|i| clients[i % clients.len()].handle().clone())
        .collect();
    let node_handles: Vec<Handle> = nodes.iter().map(|n| n.handle().clone()).collect();
    runtime("writer", 1).block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let shm = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let servers = cluster(&node_handles, dir.path(), shm.path()).await;
        let addresses: Vec<String> = servers.iter().map(|s| s.address().to_owned()).collect();
        let writer = client(&addresses).await;
        let map = writer
            .open::<Bytes>("bench")
            .await
            .expect("open the benchmark map");
        // When each node applied each version: a write is committed no
        // later than the first of these and its acknowledgement.
        let mut applied: Vec<Seen> = Vec::new();
        for (server, node) in servers.iter().zip(&node_handles) {
            let log: Seen = Arc::default();
            let mut when = server.when("bench").await.expect("the node's copy");
            let noted = Arc::clone(&log);
            node.spawn(async move {
                while let Some(version) = when.updated().await {
                    noted.lock().expect("log").push((version, Instant::now()));
                }
            });
            applied.push(log);
        }
        println!(
            "| mirrors | writes | p50 ms, median (min–max of rounds) | p99 ms, median (min–max) |"
        );
        println!("|---:|---:|---:|---:|");
        for count in [1usize, 100, 1000] {
            if only.is_some_and(|n| n != count) {
                continue;
            }
            let mut groups = Vec::new();
            for (g, process) in processes.iter().enumerate().take(count.div_ceil(100)) {
                let mut rotated = addresses.clone();
                rotated.rotate_left(g % addresses.len());
                let n = (count - g * 100).min(100);
                let mirrors = process.spawn(mirrors(rotated, n)).await.expect("mirrors");
                groups.push((process.clone(), mirrors));
            }
            // One watcher per mirror, as a consumer of it would have: it
            // notes when each version became visible.
            let seen: Vec<Seen> = (0..count).map(|_| Arc::default()).collect();
            let watchers: Vec<_> = groups
                .iter()
                .flat_map(|(process, mirrors)| mirrors.iter().map(move |m| (process, m)))
                .zip(&seen)
                .map(|((process, m), log)| {
                    let mut when = m.when();
                    let log = Arc::clone(log);
                    process.spawn(async move {
                        while let Some(version) = when.updated().await {
                            let now = Instant::now();
                            log.lock().expect("log").push((version, now));
                        }
                    })
                })
                .collect();
            let before = cpu_by_thread();
            let (mut p50s, mut p99s) =
                measure(&map, &applied, &seen, rounds, writes, show_writes).await;
            let after = cpu_by_thread();
            if show_cpu {
                let per_write = |ticks: u64| ticks as f64 * 10.0 / ((rounds + 1) * writes) as f64;
                let parts: Vec<String> = after
                    .iter()
                    .map(|(part, &t)| (part, t - before.get(part).copied().unwrap_or(0)))
                    .map(|(part, t)| format!("{part} {:.2}", per_write(t)))
                    .collect();
                eprintln!("{count} mirrors, CPU ms per write: {}", parts.join(", "));
            }
            for w in watchers {
                w.abort();
            }
            println!(
                "| {count} | {} | {} | {} |",
                rounds * writes,
                summary(&mut p50s),
                summary(&mut p99s)
            );
            // Closed where they run.
            for (process, mirrors) in groups {
                process
                    .spawn(async move { drop(mirrors) })
                    .await
                    .expect("close the mirrors");
            }
        }
        if only.is_none() {
            // A process on node a's host reading the map from shared
            // memory: a thread here, waiting in the kernel for each
            // publish.
            let log: Seen = Arc::default();
            let stop = Arc::new(AtomicBool::new(false));
            let reader = {
                let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
                let options = LocalOptions::new().dir(shm.path());
                std::thread::spawn(move || {
                    let mut local =
                        local::open_with::<Map<Vec<u8>, Vec<u8>>>("bench", &options).expect("open");
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let now = local
                            .wait_for(last + 1, Duration::from_millis(50))
                            .expect("local read");
                        if now > last {
                            log.lock().expect("log").push((now, Instant::now()));
                            last = now;
                        }
                    }
                })
            };
            let (mut p50s, mut p99s) =
                measure(&map, &applied, &[log], rounds, writes, show_writes).await;
            stop.store(true, Ordering::Relaxed);
            reader.join().expect("reader thread");
            println!(
                "| local shared-memory reader | {} | {} | {} |",
                rounds * writes,
                summary(&mut p50s),
                summary(&mut p99s)
            );
        }
        for (s, node) in servers.into_iter().zip(&node_handles) {
            node.spawn(s.shutdown()).await.expect("shut down");
        }
    });
    drop(clients);
    drop(nodes);
}

fn runtime(name: &str, threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Writes `writes` entries one at a time, `rounds` times after a warm-up
/// round, and returns each round's p50 and p99 of the time from a write's
/// commit to its version in each log of `seen`. The commit is taken as the
/// first moment anything showed the write applied: a node's copy (the
/// logs of `applied`) or the writer's acknowledgement, both of which come
/// after it.
async fn measure(
    map: &Remote<Bytes>,
    applied: &[Seen],
    seen: &[Seen],
    rounds: usize,
    writes: usize,
    show_writes: bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for round in 0..rounds + 1 {
        for log in seen.iter().chain(applied) {
            log.lock().expect("log").clear();
        }
        let mut acks = Vec::with_capacity(writes);
        for i in 0..writes {
            let key = (i as u64).to_le_bytes().to_vec();
            let (_, version) = map
                .execute(statemesh::collections::MapCommand::Insert(
                    key,
                    vec![7; 256],
                ))
                .await
                .expect("write");
            acks.push((version, Instant::now()));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let last = acks.last().expect("writes").0;
        // Each watcher has noted the last write (it runs after its copy
        // applied the change).
        for log in seen {
            while first_with(log, last).is_none() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        // The first round warms up connections and caches.
        if round == 0 {
            continue;
        }
        let committed: Vec<(u64, Instant)> = acks
            .iter()
            .map(|&(version, acked)| {
                let first = applied
                    .iter()
                    .filter_map(|log| first_with(log, version))
                    .fold(acked, Instant::min);
                (version, first)
            })
            .collect();
        let mut samples = Vec::with_capacity(writes * seen.len());
        for log in seen {
            let log = log.lock().expect("log");
            for &(version, commit) in &committed {
                let visible = log
                    .iter()
                    .find(|(v, _)| *v >= version)
                    .map(|&(_, at)| at.saturating_duration_since(commit));
                samples.push(visible.expect("every version seen"));
            }
        }
        if show_writes {
            print_last_mirrors(round, committed.len(), &samples);
        }
        samples.sort_unstable();
        p50s.push(quantile(&samples, 0.50));
        p99s.push(quantile(&samples, 0.99));
    }
    (p50s, p99s)
}

/// Prints, for one round, the median and the slowest of the times at
/// which each write's last mirror saw it; `samples` holds each mirror's
/// latencies, `writes` to a mirror, unsorted.
fn print_last_mirrors(round: usize, writes: usize, samples: &[Duration]) {
    let mirrors = samples.len() / writes;
    let mut last: Vec<(Duration, usize)> = (0..writes)
        .map(|w| {
            let slowest = (0..mirrors).map(|m| samples[m * writes + w]).max();
            (slowest.unwrap_or_default(), w)
        })
        .collect();
    last.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let slowest: Vec<String> = last
        .iter()
        .rev()
        .take(5)
        .map(|&(d, w)| format!("write {w} {:.2}", ms(d)))
        .collect();
    eprintln!(
        "round {round}: last mirror, median of writes {:.2} ms; slowest: {}",
        ms(last[writes / 2].0),
        slowest.join(", ")
    );
}

/// When `log` first showed `version` or a later one.
fn first_with(log: &Seen, version: u64) -> Option<Instant> {
    let log = log.lock().expect("log");
    log.iter().find(|(v, _)| *v >= version).map(|&(_, at)| at)
}

/// CPU time so far (in ticks of 10 ms) of this process's threads, by
/// part: the mirrors' processes, the nodes, the nodes' log writers, the
/// writer, and the rest. Linux only (empty elsewhere); threads that have
/// ended are not counted.
fn cpu_by_thread() -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in threads.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ...`: the name may hold spaces, not `)`.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime: fields 14 and 15 of the line, 12 and 13 here.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let part = if name.starts_with("mirrors") {
            "mirrors"
        } else if name.starts_with("node-") {
            "nodes"
        } else if name.starts_with("statemesh-wal") {
            "log writers"
        } else if name.starts_with("writer") {
            "writer"
        } else {
            "other"
        };
        *out.entry(part).or_insert(0) += ticks(11) + ticks(12);
    }
    out
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(values: &mut [Duration]) -> String {
    values.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:.3} ({:.3}–{:.3})",
        ms(values[values.len() / 2]),
        ms(values[0]),
        ms(values[values.len() - 1])
    )
}

/// Three nodes, each on its runtime in `nodes`; the first publishes the
/// benchmark map to `shm`.
async fn cluster(nodes: &[Handle], dir: &std::path::Path, shm: &std::path::Path) -> Vec<Server> {
    let options = |name: &str, join: Vec<String>| {
        let network = TcpOptions::new(
            CLUSTER,
            Security::Plaintext,
            Authenticator::new(Secret::new(SECRET), None),
        );
        let mut o = ServerOptions::new(dir.join(name), "127.0.0.1:0", network);
        o.join = join;
        o
    };
    let mut first = options("a", vec![]);
    first.publish = vec!["bench".into()];
    first.local = LocalOptions::new().dir(shm);
    let start = |node: &Handle, options: ServerOptions| {
        node.spawn(async move {
            let mut kinds = Kinds::new();
            kinds.register(Bytes::default);
            Server::start(options, kinds).await.expect("a node")
        })
    };
    let first = start(&nodes[0], first).await.expect("first node");
    let seed = vec![first.address().to_owned()];
    let second = start(&nodes[1], options("b", seed.clone()))
        .await
        .expect("second node");
    let third = start(&nodes[2], options("c", seed))
        .await
        .expect("third node");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = first.status().await;
        let voters = s
            .groups
            .iter()
            .find(|(n, _)| n == "_cluster")
            .map_or(0, |(_, g)| g.voters.len());
        if voters == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster did not form");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    vec![first, second, third]
}

async fn client(addresses: &[String]) -> Client {
    let mut o = ClientOptions::new(CLUSTER, Security::Plaintext);
    o.timeout = Duration::from_secs(30);
    Client::connect(addresses, SECRET, o).await.expect("client")
}

/// A client of `addresses` (connecting to the first) and `count` mirrors
/// of the benchmark map over it.
async fn mirrors(addresses: Vec<String>, count: usize) -> Vec<Mirror<Bytes>> {
    let client = client(&addresses).await;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(Mirror::open(&client, "bench").await.expect("mirror"));
    }
    out
}
