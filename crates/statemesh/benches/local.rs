//! Reads of a locally published map against GETs of the same key from a
//! Redis server on loopback, in the same run.
//!
//! A one-node statemesh cluster holds a `Map<Vec<u8>, Vec<u8>>` of 10,000
//! entries (8-byte keys, 256-byte values) and publishes it to shared
//! memory; a `redis-server` (Debian's package, started here on a free port
//! without persistence) holds the same entries. Measured, one at a time on
//! one thread, each read returning the value:
//!
//! * `statemesh local get`: `Local::read()` then `get(&key)`, the value
//!   decoded into a `Vec<u8>` (what a Redis client returns);
//! * `statemesh local get, in place`: the value's bytes in shared memory,
//!   not copied;
//! * `redis GET`: one GET per round trip (the `redis` crate, one
//!   connection);
//! * `redis GET, 100 pipelined`: 100 GETs per round trip, timed per GET
//!   (Redis's best case).
//!
//! Criterion gives the time per read with its confidence interval; the
//! table at the end turns it into reads per second and ratios.
//!
//! Run: `bench/local-vs-redis.sh` (installs `redis-server`), or
//! `cargo bench -p statemesh --bench local` with `redis-server` on the PATH.

#[path = "shared/estimate.rs"]
mod shared;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statemesh::local::{self, LocalOptions};
use statemesh::{Map, MemoryNetwork, Node, NodeOptions};
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: u64 = 10_000;
const VALUE: usize = 256;
const PIPELINE: usize = 100;
const GROUP: &str = "local_vs_redis";
type Bytes = Map<Vec<u8>, Vec<u8>>;

fn key(i: u64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// A `redis-server` child on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (bench/local-vs-redis.sh installs it)");
        Self { child, port }
    }

    fn connect(&self) -> redis::Connection {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("redis url");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.get_connection() {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("redis-server did not start: {e}"),
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench_reads(c: &mut Criterion) {
    let data = tempfile::tempdir().expect("temp dir");
    // Shared memory proper when there is a /dev/shm.
    let shm = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir");
    let options = LocalOptions::new().dir(shm.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (node, _publication) = rt.block_on(async {
        let node =
            Node::open(1, data.path(), MemoryNetwork::new(), NodeOptions::default()).expect("node");
        let map = Bytes::open(&node, "bench", &[1]).await.expect("map");
        let publication = map.publish_local_with("bench", &options).expect("publish");
        let mut version = 0;
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            let entries = chunk.iter().map(|&i| (key(i), vec![7u8; VALUE])).collect();
            version = map.extend(entries).await.expect("extend").1;
        }
        let mut local = local::open_with::<Bytes>("bench", &options).expect("open");
        local
            .wait_for(version, Duration::from_secs(30))
            .expect("published");
        (node, publication)
    });

    let redis = Redis::start();
    let mut con = redis.connect();
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.set(key(i), vec![7u8; VALUE]).ignore();
    }
    pipe.query::<()>(&mut con).expect("load redis");

    let probe = key(KEYS / 2);
    let mut local = local::open_with::<Bytes>("bench", &options).expect("open");
    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Elements(1));
    g.bench_function("statemesh local get", |b| {
        b.iter(|| {
            let read = local.read().expect("read");
            black_box(read.get(black_box(&probe)).expect("get").expect("present"))
        });
    });
    let encoded = postcard_key(&probe);
    g.bench_function("statemesh local get, in place", |b| {
        b.iter(|| {
            let read = local.read().expect("read");
            black_box(
                read.get_encoded(black_box(&encoded))
                    .expect("present")
                    .len(),
            )
        });
    });
    g.bench_function("redis GET", |b| {
        b.iter(|| {
            let v: Vec<u8> = redis::cmd("GET")
                .arg(black_box(&probe))
                .query(&mut con)
                .expect("GET");
            black_box(v)
        });
    });
    g.bench_function("redis GET, 100 pipelined", |b| {
        let mut pipe = redis::pipe();
        for _ in 0..PIPELINE {
            pipe.cmd("GET").arg(&probe);
        }
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut done = 0;
            while done < iters {
                let v: Vec<Vec<u8>> = pipe.query(&mut con).expect("pipelined GET");
                black_box(v);
                done += PIPELINE as u64;
            }
            start.elapsed() * u32::try_from(iters).unwrap_or(u32::MAX)
                / u32::try_from(done).unwrap_or(u32::MAX)
        });
    });
    g.finish();
    drop(local);
    rt.block_on(node.shutdown());
}

/// The key as the map stores it (its postcard encoding).
fn postcard_key(k: &[u8]) -> Vec<u8> {
    // A byte string: its length as a varint, then the bytes.
    let mut out = vec![u8::try_from(k.len()).expect("short key")];
    out.extend_from_slice(k);
    out
}

/// Criterion's estimate of benchmark `name` of this group.
fn estimate(name: &str) -> Option<(f64, f64, f64)> {
    shared::estimate(&format!("{GROUP}/{name}"))
}

fn print_summary(_: &mut Criterion) {
    let names = [
        "statemesh local get",
        "statemesh local get, in place",
        "redis GET",
        "redis GET, 100 pipelined",
    ];
    let redis = estimate("redis GET").map(|e| e.0);
    let pipelined = estimate("redis GET, 100 pipelined").map(|e| e.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Reads of one key: local shared memory against Redis on loopback (criterion, 95 % CI)\n"
    );
    let _ = writeln!(
        out,
        "| read | ns per read [95 % CI] | reads/s | vs redis GET | vs redis pipelined |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for name in names {
        let Some((p, lo, hi)) = estimate(name) else {
            continue;
        };
        let ratio = |theirs: Option<f64>| match theirs {
            Some(t) if !name.starts_with("redis") => format!("{:.0}×", t / p),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {name} | {p:.1} [{lo:.1} – {hi:.1}] | {:.0} | {} | {} |",
            1e9 / p,
            ratio(redis),
            ratio(pipelined)
        );
    }
    println!("{out}");
}

criterion_group!(benches, bench_reads, print_summary);
criterion_main!(benches);
