//! statemesh-shm against mmap-sync 2.0.4, in the same run, on the same values
//! and the same tmpfs: read (validated and not), write and write_raw, for a
//! 36-byte struct and a 1 MiB value; reads from 2 threads at once; and a
//! plain 1 MiB `memcpy` as the floor for publishing 1 MiB.
//!
//! ```text
//! cargo bench -p statemesh-shm --bench shm
//! ```
//!
//! Function names are `statemesh` and `mmap-sync` inside each group, so
//! criterion's report lines up the two.

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use mmap_sync::synchronizer::Synchronizer;
use statemesh_shm::{Reader, ReaderOptions, Writer, WriterOptions};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// The 36-byte value for statemesh (rkyv 0.8).
#[derive(rkyv::Archive, rkyv::Serialize, Clone)]
struct Small {
    version: u32,
    values: [u32; 8],
}

/// The 1 MiB value for statemesh.
#[derive(rkyv::Archive, rkyv::Serialize, Clone)]
struct Large {
    bytes: Vec<u8>,
}

/// The same values for mmap-sync, with rkyv 0.7. bytecheck 0.6's derive
/// predates edition 2024's unsafe-in-unsafe-fn rule, hence the allow.
#[allow(unsafe_op_in_unsafe_fn)]
mod v07 {
    /// The 36-byte value.
    #[derive(rkyv07::Archive, rkyv07::Serialize, Clone)]
    #[archive(crate = "rkyv07")]
    #[archive_attr(derive(bytecheck06::CheckBytes), check_bytes(crate = "bytecheck06"))]
    pub(crate) struct Small07 {
        pub(crate) version: u32,
        pub(crate) values: [u32; 8],
    }

    /// The 1 MiB value.
    #[derive(rkyv07::Archive, rkyv07::Serialize, Clone)]
    #[archive(crate = "rkyv07")]
    #[archive_attr(derive(bytecheck06::CheckBytes), check_bytes(crate = "bytecheck06"))]
    pub(crate) struct Large07 {
        pub(crate) bytes: Vec<u8>,
    }
}
use v07::{Large07, Small07};

const GRACE: Duration = Duration::from_secs(1);

fn small() -> (Small, Small07) {
    let values = [1, 2, 3, 4, 5, 6, 7, 8];
    (Small { version: 7, values }, Small07 { version: 7, values })
}

fn large() -> (Large, Large07) {
    let bytes: Vec<u8> = (0..1 << 20).map(|i| (i * 31) as u8).collect();
    (
        Large {
            bytes: bytes.clone(),
        },
        Large07 { bytes },
    )
}

fn shm_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir in /dev/shm")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}

fn mmap_sync(dir: &Path, name: &str) -> Synchronizer {
    Synchronizer::new(dir.join(name).as_os_str())
}

fn ours<T>(dir: &Path, name: &str) -> (Writer<T>, Reader<T>) {
    let w = Writer::with_options(name, WriterOptions::new().dir(dir)).expect("writer");
    let r = Reader::with_options(name, ReaderOptions::new().dir(dir)).expect("reader");
    (w, r)
}

/// 1 s warm-up and 3 s of measurement per function; 30 samples for the
/// 1 MiB value (a typed mmap-sync write of it takes ~0.6 ms), criterion's
/// default 100 for the small one.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, large: bool) {
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(if large { 30 } else { 100 });
}

/// mmap-sync's write waits out the grace period (and then resets the reader
/// count) if readers still hold the buffer it is about to reuse. No reader
/// guard outlives a read here, so that must never happen: a reset would mean
/// a 1 s sleep inside the measurement.
fn no_reset((_, reset): (usize, bool)) {
    assert!(!reset, "mmap-sync waited out its grace period");
}

fn bench_small(c: &mut Criterion) {
    let dir = shm_dir();
    let (value, value07) = small();
    let (mut w, mut r) = ours::<Small>(dir.path(), "small");
    let mut ms_w = mmap_sync(dir.path(), "small07");
    let mut ms_r = mmap_sync(dir.path(), "small07");
    w.write(&value).unwrap();
    ms_w.write(&value07, GRACE).unwrap();
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&value).unwrap();
    let bytes07 = rkyv07::to_bytes::<_, 1024>(&value07).unwrap();
    eprintln!(
        "small value: {} bytes archived (rkyv 0.8), {} bytes (rkyv 0.7)",
        bytes.len(),
        bytes07.len()
    );

    let mut g = c.benchmark_group("small/read_validated");
    configure(&mut g, false);
    g.bench_function("statemesh", |b| {
        b.iter(|| black_box(r.read().unwrap().version))
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            // SAFETY: only the matching writer publishes to this region, with valid
            // archives, and each guard is dropped at once (inside mmap-sync's grace).
            let v = unsafe { ms_r.read::<Small07>(true) }.unwrap();
            black_box(v.version)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("small/read_unvalidated");
    configure(&mut g, false);
    g.bench_function("statemesh", |b| {
        b.iter(|| {
            // SAFETY: only the matching writer publishes to this region, with valid
            // archives, and each guard is dropped at once (inside mmap-sync's grace).
            let v = unsafe { r.read_unchecked() }.unwrap();
            black_box(v.version)
        })
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            // SAFETY: only the matching writer publishes to this region, with valid
            // archives, and each guard is dropped at once (inside mmap-sync's grace).
            let v = unsafe { ms_r.read::<Small07>(false) }.unwrap();
            black_box(v.version)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("small/write");
    configure(&mut g, false);
    g.bench_function("statemesh", |b| {
        b.iter(|| w.write(black_box(&value)).unwrap())
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| no_reset(ms_w.write(black_box(&value07), GRACE).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("small/write_raw");
    configure(&mut g, false);
    g.bench_function("statemesh", |b| {
        b.iter(|| w.write_raw(black_box(&bytes)).unwrap())
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            no_reset(
                ms_w.write_raw::<Small07>(black_box(&bytes07), GRACE)
                    .unwrap(),
            )
        })
    });
    g.finish();

    // Publishing a new version and reading it validated: the validation a
    // reader pays once per version (statemesh caches it per version).
    let mut g = c.benchmark_group("small/publish_then_read_validated");
    configure(&mut g, false);
    g.bench_function("statemesh", |b| {
        b.iter(|| {
            w.write_raw(&bytes).unwrap();
            black_box(r.read().unwrap().version)
        })
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            no_reset(ms_w.write_raw::<Small07>(&bytes07, GRACE).unwrap());
            // SAFETY: as above.
            black_box(unsafe { ms_r.read::<Small07>(true) }.unwrap().version)
        })
    });
    g.finish();

    // Two reader threads at once, each with its own reader: time per read.
    let mut g = c.benchmark_group("small/read_2_threads");
    configure(&mut g, false);
    g.bench_function("statemesh", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut r =
                    Reader::<Small>::with_options("small", ReaderOptions::new().dir(dir.path()))
                        .unwrap();
                move || {
                    black_box(r.read().unwrap().version);
                }
            })
        })
    });
    g.bench_function("mmap-sync", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut r = mmap_sync(dir.path(), "small07");
                move || {
                    // SAFETY: as above.
                    black_box(unsafe { r.read::<Small07>(true) }.unwrap().version);
                }
            })
        })
    });
    g.finish();
}

/// Runs `iters` calls of a per-thread closure on each of two threads at once
/// and returns the longer of the two threads' times: the time per call with
/// both readers reading concurrently. Each thread times only its own loop,
/// started together at a barrier, so thread start and join are not counted.
fn two_threads<F, G>(iters: u64, make: F) -> Duration
where
    F: Fn() -> G,
    G: FnMut() + Send + 'static,
{
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut op = make();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // One untimed read: opens the buffer and validates the
                // version, which a long-lived reader pays once.
                op();
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    op();
                }
                start.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("reader thread"))
        .max()
        .unwrap_or_default()
}

fn bench_large(c: &mut Criterion) {
    let dir = shm_dir();
    let (value, value07) = large();
    let (mut w, mut r) = ours::<Large>(dir.path(), "large");
    let mut ms_w = mmap_sync(dir.path(), "large07");
    let mut ms_r = mmap_sync(dir.path(), "large07");
    w.write(&value).unwrap();
    ms_w.write(&value07, GRACE).unwrap();
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&value).unwrap();
    let bytes07 = rkyv07::to_bytes::<_, 1024>(&value07).unwrap();
    eprintln!(
        "large value: {} bytes archived (rkyv 0.8), {} bytes (rkyv 0.7)",
        bytes.len(),
        bytes07.len()
    );

    let mut g = c.benchmark_group("large/read_validated");
    configure(&mut g, true);
    g.bench_function("statemesh", |b| {
        b.iter(|| black_box(r.read().unwrap().bytes.len()))
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            // SAFETY: only the matching writer publishes to this region, with valid
            // archives, and each guard is dropped at once (inside mmap-sync's grace).
            let v = unsafe { ms_r.read::<Large07>(true) }.unwrap();
            black_box(v.bytes.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("large/read_unvalidated");
    configure(&mut g, true);
    g.bench_function("statemesh", |b| {
        b.iter(|| {
            // SAFETY: only the matching writer publishes to this region, with valid
            // archives, and each guard is dropped at once (inside mmap-sync's grace).
            let v = unsafe { r.read_unchecked() }.unwrap();
            black_box(v.bytes.len())
        })
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            // SAFETY: only the matching writer publishes to this region, with valid
            // archives, and each guard is dropped at once (inside mmap-sync's grace).
            let v = unsafe { ms_r.read::<Large07>(false) }.unwrap();
            black_box(v.bytes.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("large/write");
    configure(&mut g, true);
    g.bench_function("statemesh", |b| {
        b.iter(|| w.write(black_box(&value)).unwrap())
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| no_reset(ms_w.write(black_box(&value07), GRACE).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("large/write_raw");
    configure(&mut g, true);
    g.bench_function("statemesh", |b| {
        b.iter(|| w.write_raw(black_box(&bytes)).unwrap())
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            no_reset(
                ms_w.write_raw::<Large07>(black_box(&bytes07), GRACE)
                    .unwrap(),
            )
        })
    });
    // The floor: one memcpy of the same bytes into a preallocated buffer.
    let mut target = vec![0u8; bytes.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            target.copy_from_slice(black_box(&bytes));
            black_box(&target);
        })
    });
    // Both crates never overwrite the buffer readers may be on, so back-to-back
    // publishes alternate between two buffers: 1 MiB source + 2 MiB of
    // destinations, more than one core's L2. The same memcpy alternating
    // between two targets shows what that alone costs.
    let mut targets = [vec![0u8; bytes.len()], vec![0u8; bytes.len()]];
    let mut next = 0;
    g.bench_function("memcpy_2_buffers", |b| {
        b.iter(|| {
            next ^= 1;
            let target = &mut targets[next];
            target.copy_from_slice(black_box(&bytes));
            black_box(target);
        })
    });
    g.finish();

    // As for the small value: every read is of a new version, so both sides
    // validate it (for a `Vec<u8>` that is a bounds check; the copy dominates).
    let mut g = c.benchmark_group("large/publish_then_read_validated");
    configure(&mut g, true);
    g.bench_function("statemesh", |b| {
        b.iter(|| {
            w.write_raw(&bytes).unwrap();
            black_box(r.read().unwrap().bytes.len())
        })
    });
    g.bench_function("mmap-sync", |b| {
        b.iter(|| {
            no_reset(ms_w.write_raw::<Large07>(&bytes07, GRACE).unwrap());
            // SAFETY: as above.
            black_box(unsafe { ms_r.read::<Large07>(true) }.unwrap().bytes.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("large/read_2_threads");
    configure(&mut g, true);
    g.bench_function("statemesh", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut r =
                    Reader::<Large>::with_options("large", ReaderOptions::new().dir(dir.path()))
                        .unwrap();
                move || {
                    black_box(r.read().unwrap().bytes.len());
                }
            })
        })
    });
    g.bench_function("mmap-sync", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut r = mmap_sync(dir.path(), "large07");
                move || {
                    // SAFETY: as above.
                    black_box(unsafe { r.read::<Large07>(true) }.unwrap().bytes.len());
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench_small, bench_large);
criterion_main!(benches);
