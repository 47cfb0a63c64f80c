//! Commit-to-mirror latency: how long after a write is acknowledged (the
//! leader has committed and applied it) it is visible in 1, 100 and 1,000
//! mirrors.
//!
//! A 3-node cluster runs in this process on loopback (plaintext, fsync on
//! every commit), and so do the mirrors, 100 to a client connection, their
//! connections spread over the three nodes. One writer puts 8-byte keys
//! with 256-byte values, one at a time, a pause between writes; for each
//! write every mirror's wait for the write's version is timed. Each round
//! gives p50 and p99 over all (write, mirror) pairs; the table shows the
//! median of the rounds and their range. Everything shares this machine's
//! cores: the nodes, the mirrors and the writer.
//!
//! Last, the same for a local reader: the first node publishes the map to
//! shared memory, and a thread reading it (as another process on the host
//! would) notes when each version appears.
//!
//! Run: `cargo bench -p statemesh --bench mirrors` (`-- --quick` for one
//! short round each, `-- --mirrors 1000` for one count).

use statemesh::collections::MapState;
use statemesh::local::{self, LocalOptions};
use statemesh::network::{Authenticator, Secret};
use statemesh::{
    Client, ClientOptions, Kinds, Map, Mirror, Remote, Security, Server, ServerOptions, TcpOptions,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let shm = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let servers = cluster(dir.path(), shm.path()).await;
        let addresses: Vec<String> = servers.iter().map(|s| s.address().to_owned()).collect();
        let writer = client(&addresses).await;
        let map = writer
            .open::<Bytes>("bench")
            .await
            .expect("open the benchmark map");
        println!(
            "| mirrors | writes | p50 ms, median (min–max of rounds) | p99 ms, median (min–max) |"
        );
        println!("|---:|---:|---:|---:|");
        for count in [1usize, 100, 1000] {
            if only.is_some_and(|n| n != count) {
                continue;
            }
            let mirrors = mirrors(&addresses, count).await;
            // One watcher per mirror, as a consumer of it would have: it
            // notes when each version became visible.
            let seen: Vec<Seen> = (0..count).map(|_| Arc::default()).collect();
            let watchers: Vec<_> = mirrors
                .iter()
                .zip(&seen)
                .map(|(m, log)| {
                    let mut when = m.when();
                    let view: statemesh::View<Bytes> = (**m).clone();
                    let log = Arc::clone(log);
                    tokio::spawn(async move {
                        loop {
                            when.updated().await;
                            let now = Instant::now();
                            log.lock().expect("log").push((view.version(), now));
                        }
                    })
                })
                .collect();
            let (mut p50s, mut p99s) = measure(&map, &seen, rounds, writes).await;
            for w in watchers {
                w.abort();
            }
            println!(
                "| {count} | {} | {} | {} |",
                rounds * writes,
                summary(&mut p50s),
                summary(&mut p99s)
            );
            drop(mirrors);
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
            let (mut p50s, mut p99s) = measure(&map, &[log], rounds, writes).await;
            stop.store(true, Ordering::Relaxed);
            reader.join().expect("reader thread");
            println!(
                "| local shared-memory reader | {} | {} | {} |",
                rounds * writes,
                summary(&mut p50s),
                summary(&mut p99s)
            );
        }
        for s in servers {
            s.shutdown().await;
        }
    });
}

/// Writes `writes` entries one at a time, `rounds` times after a warm-up
/// round, and returns each round's p50 and p99 of the time from a write's
/// acknowledgement to its version in each log of `seen`.
async fn measure(
    map: &Remote<Bytes>,
    seen: &[Seen],
    rounds: usize,
    writes: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for round in 0..rounds + 1 {
        for log in seen {
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
            while !log.lock().expect("log").iter().any(|(v, _)| *v >= last) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        // The first round warms up connections and caches.
        if round == 0 {
            continue;
        }
        let mut samples = Vec::with_capacity(writes * seen.len());
        for log in seen {
            let log = log.lock().expect("log");
            for &(version, acked) in &acks {
                // The first moment the copy had the version; a push that
                // beat the writer's acknowledgement counts as zero.
                let visible = log
                    .iter()
                    .find(|(v, _)| *v >= version)
                    .map(|&(_, at)| at.saturating_duration_since(acked));
                samples.push(visible.expect("every version seen"));
            }
        }
        samples.sort_unstable();
        p50s.push(quantile(&samples, 0.50));
        p99s.push(quantile(&samples, 0.99));
    }
    (p50s, p99s)
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

/// Three nodes; the first publishes the benchmark map to `shm`.
async fn cluster(dir: &std::path::Path, shm: &std::path::Path) -> Vec<Server> {
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
    let first = Server::start(first, Kinds::standard())
        .await
        .expect("first node");
    let seed = vec![first.address().to_owned()];
    let second = Server::start(options("b", seed.clone()), Kinds::standard())
        .await
        .expect("second node");
    let third = Server::start(options("c", seed), Kinds::standard())
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

/// `count` mirrors of the benchmark map, 100 to a connection, the
/// connections starting at each node in turn.
async fn mirrors(addresses: &[String], count: usize) -> Vec<Mirror<Bytes>> {
    let mut out = Vec::with_capacity(count);
    let mut client_of = None;
    for i in 0..count {
        if i % 100 == 0 {
            let mut rotated = addresses.to_vec();
            rotated.rotate_left((i / 100) % addresses.len());
            client_of = Some(client(&rotated).await);
        }
        let c = client_of.as_ref().expect("a client");
        out.push(Mirror::open(c, "bench").await.expect("mirror"));
    }
    out
}
