//! Damage sweeps: every single-bit flip of every file, and every truncation
//! of every file, of a small log with several segments, an entry larger
//! than a segment, votes, a committed index, a truncation and a purge; for
//! two batch sizes; as a cleanly closed log and as a process crash leaves
//! one (copied while it is open: the page cache survives a crash).
//!
//! Each trial opens the damaged copy. It must either fail with a typed error
//! and leave every file byte-identical, or open with the newest vote, every
//! entry byte-identical to what was written, and no acknowledged entry
//! missing, except that after a crash the last write batch, which no marker
//! vouches for yet, may be cut as a torn end (`FORMAT.md`, "The torn tail").
//!
//! The logs live in `MemoryStorage`, which recovery reads and writes through
//! the same code as files on disk; `scripts/wal-damage-sweep.sh` runs a
//! larger sweep on real files (the ignored test at the end).

use statemesh_wal::{FsStorage, MemoryStorage, OpenError, Storage, StorageFile, Wal, WalOptions};
use std::collections::BTreeMap;
use std::path::Path;

type Files = BTreeMap<String, Vec<u8>>;

/// A log as written, and what any successful open of a damaged copy of it
/// must show.
struct Log {
    files: Files,
    options: WalOptions,
    entries: BTreeMap<u64, Vec<u8>>,
    vote: Vec<u8>,
    committed: u64,
    purged: u64,
    /// The first index of the batch a crash left without a vouching marker:
    /// a damaged copy may lose it (and only it). `None` for a closed log.
    torn_from: Option<u64>,
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 31 + k * 7) as u8).collect()
}

/// Writes the log. `entries` scales its length; every append is waited for,
/// so each is its own write batch and every batch but the last is vouched
/// for by the marker of the next. `crash`, if given, copies the files while
/// the log is still open after its last append: what a process crash then
/// leaves.
fn build<S: Storage>(
    storage: S,
    options: &WalOptions,
    entries: u64,
    crash: Option<&dyn Fn() -> Files>,
) -> Log {
    let wal = Wal::open_with(storage, options.clone()).unwrap();
    let mut held = BTreeMap::new();
    let append = |held: &mut BTreeMap<u64, Vec<u8>>, p: Vec<u8>| {
        let a = wal.append(p.clone()).unwrap();
        a.wait().unwrap();
        held.insert(a.index(), p);
    };
    wal.save_vote(b"vote: term 1".to_vec()).unwrap();
    for i in 1..=entries {
        append(&mut held, payload(i, 20 + (i as usize * 37) % 150));
    }
    // Several records in one batch.
    let batch: Vec<_> = (0..5).map(|k| payload(100 + k, 40)).collect();
    let a = wal.append_batch(batch.clone()).unwrap();
    a.wait().unwrap();
    for (k, p) in batch.into_iter().enumerate() {
        held.insert(a.index() + k as u64, p);
    }
    // A truncation leaves an End marker, and new entries overwrite it.
    let cut = wal.last_index().unwrap() - 3;
    wal.truncate(cut).unwrap();
    held.split_off(&cut);
    for i in 0..entries / 4 {
        append(&mut held, payload(cut + i, 60));
    }
    // Larger than a segment: one of its own.
    let last = wal.last_index().unwrap();
    append(&mut held, payload(last + 1, 5000));
    // The purge removes the first segment and reaches into the second.
    let mut firsts: Vec<u64> = wal_segments(&wal);
    firsts.sort_unstable();
    let purged = firsts[1] + 2;
    wal.purge(purged, b"purged id".to_vec()).unwrap();
    held = held.split_off(&(purged + 1));
    wal.save_vote(b"vote: term 2".to_vec()).unwrap();
    let committed = wal.last_index().unwrap();
    wal.save_committed(committed, b"committed id".to_vec())
        .unwrap();
    for i in 0..entries / 3 {
        append(&mut held, payload(1000 + i, 10 + (i as usize * 13) % 90));
    }
    wal.note_committed(wal.last_index().unwrap() - 1, b"hint".to_vec())
        .unwrap();
    append(&mut held, payload(2000, 50));
    let last = wal.last_index().unwrap();
    assert_eq!(held.keys().next_back(), Some(&last));
    let crashed = crash.map(|copy| copy());
    drop(wal);
    Log {
        files: crashed.clone().unwrap_or_default(),
        options: options.clone(),
        entries: held,
        vote: b"vote: term 2".to_vec(),
        committed: last - 1,
        purged,
        torn_from: crashed.map(|_| last),
    }
}

/// The first index of each segment of `wal`'s directory.
fn wal_segments<S: Storage>(wal: &Wal<S>) -> Vec<u64> {
    wal.storage()
        .list()
        .unwrap()
        .iter()
        .filter_map(|n| n.strip_suffix(".wal")?.parse().ok())
        .collect()
}

fn build_in_memory(batch: usize, crashed: bool) -> Log {
    let storage = MemoryStorage::new();
    let options = WalOptions::new().segment_size(4096).max_batch_bytes(batch);
    let copy = || storage.contents();
    let mut log = build(storage.clone(), &options, 60, crashed.then_some(&copy as _));
    if !crashed {
        log.files = storage.contents();
    }
    log
}

/// What a successful open of a damaged copy must show.
fn check<S: Storage>(log: &Log, wal: &Wal<S>, what: &str) {
    let meta = wal.meta();
    assert_eq!(meta.vote.as_deref(), Some(&log.vote[..]), "{what}: vote");
    assert_eq!(
        meta.purged.as_ref().map(|p| p.0),
        Some(log.purged),
        "{what}"
    );
    let committed = meta.committed.as_ref().map_or(0, |c| c.0);
    assert!(committed <= log.committed, "{what}: committed {committed}");
    assert_eq!(wal.first_index(), log.purged + 1, "{what}: first index");
    let last = *log.entries.keys().next_back().unwrap();
    let got = wal.last_index().unwrap_or(0);
    let least = log.torn_from.map_or(last, |t| t - 1);
    assert!(
        (least..=last).contains(&got),
        "{what}: log ends at {got}, acknowledged up to {last}: {:?}",
        wal.recovery()
    );
    if got < last {
        let torn = wal.recovery().torn.as_ref();
        assert_eq!(torn.map(|t| t.from), Some(got + 1), "{what}: not reported");
    }
    for (&i, p) in log.entries.range(..=got) {
        let read = wal.get(i).unwrap_or_else(|e| panic!("{what}: {i}: {e}"));
        assert_eq!(read.as_ref(), Some(p), "{what}: entry {i}");
    }
}

/// Opens a damaged copy and checks the outcome.
fn trial(log: &Log, damaged: Files, what: &str) {
    let storage = MemoryStorage::from_contents(damaged.clone());
    match Wal::open_with(storage.clone(), log.options.clone()) {
        Err(e) => {
            assert!(
                !matches!(e, OpenError::Io { .. } | OpenError::InvalidOption(_)),
                "{what}: {e}"
            );
            assert!(
                storage.contents() == damaged,
                "{what}: {e}, and files changed"
            );
        }
        Ok(wal) => check(log, &wal, what),
    }
}

/// Every flip of one bit, or every shorter length, of every file, on two
/// threads.
fn sweep(log: &Log, flips: bool) {
    let mut trials = Vec::new();
    let sizes: Vec<_> = log
        .files
        .iter()
        .map(|(n, b)| format!("{n} {}", b.len()))
        .collect();
    eprintln!("sweeping {}", sizes.join(", "));
    for (name, bytes) in &log.files {
        let n = if flips { bytes.len() * 8 } else { bytes.len() };
        trials.extend((0..n).map(|k| (name.clone(), k)));
    }
    let workers = 2;
    std::thread::scope(|s| {
        for w in 0..workers {
            let trials = &trials;
            s.spawn(move || {
                for (name, k) in trials.iter().skip(w).step_by(workers) {
                    let mut damaged = log.files.clone();
                    let bytes = damaged.get_mut(name).unwrap();
                    let what = if flips {
                        bytes[k / 8] ^= 1 << (k % 8);
                        format!("{name} byte {} bit {}", k / 8, k % 8)
                    } else {
                        bytes.truncate(*k);
                        format!("{name} cut to {k} bytes")
                    };
                    trial(log, damaged, &what);
                }
            });
        }
    });
}

fn every_bit_flip(crashed: bool) {
    for batch in [256, 64 << 10] {
        let log = build_in_memory(batch, crashed);
        trial(&log, log.files.clone(), "undamaged");
        sweep(&log, true);
    }
}

#[test]
fn every_bit_flip_of_a_closed_log() {
    every_bit_flip(false);
}

#[test]
fn every_bit_flip_of_a_crashed_log() {
    every_bit_flip(true);
}

#[test]
fn every_truncation_of_every_file() {
    for crashed in [false, true] {
        for batch in [256, 64 << 10] {
            sweep(&build_in_memory(batch, crashed), false);
        }
    }
}

/// The same checks on real files and a larger log, for
/// `scripts/wal-damage-sweep.sh`: `STATEMESH_WAL_SWEEP_ENTRIES` sets the
/// log's length (default 300), `STATEMESH_WAL_SWEEP_STRIDE` tries every
/// n-th bit (default 1: all).
#[test]
#[ignore = "minutes; run by scripts/wal-damage-sweep.sh"]
fn large_sweep_on_files() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let entries = env("STATEMESH_WAL_SWEEP_ENTRIES", 300);
    let stride = env("STATEMESH_WAL_SWEEP_STRIDE", 1).max(1) as usize;
    let root = tempfile::tempdir().unwrap();
    for batch in [512, 4 << 20] {
        let options = WalOptions::new()
            .segment_size(16 << 10)
            .max_batch_bytes(batch);
        let dir = root.path().join(format!("log-{batch}"));
        let mut log = build(FsStorage::open(&dir).unwrap(), &options, entries, None);
        log.files = read_dir(&dir);
        let total: usize = log.files.values().map(Vec::len).sum();
        eprintln!(
            "batch {batch}: {} files, {total} bytes, every {stride}th bit",
            log.files.len()
        );
        let mut tried = 0;
        for (name, bytes) in &log.files {
            for k in (0..bytes.len() * 8).step_by(stride) {
                let mut damaged = log.files.clone();
                damaged.get_mut(name).unwrap()[k / 8] ^= 1 << (k % 8);
                file_trial(
                    &log,
                    &root.path().join("trial"),
                    &damaged,
                    &format!("{name} bit {k}"),
                );
                tried += 1;
            }
            for len in (0..bytes.len()).step_by(stride) {
                let mut damaged = log.files.clone();
                damaged.get_mut(name).unwrap().truncate(len);
                file_trial(
                    &log,
                    &root.path().join("trial"),
                    &damaged,
                    &format!("{name} cut to {len}"),
                );
                tried += 1;
            }
        }
        eprintln!("batch {batch}: {tried} trials passed");
    }
}

fn read_dir(dir: &Path) -> Files {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn file_trial(log: &Log, dir: &Path, damaged: &Files, what: &str) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in damaged {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    match Wal::open(dir, log.options.clone()) {
        Err(e) => {
            assert!(!matches!(e, OpenError::Io { .. }), "{what}: {e}");
            assert!(read_dir(dir) == *damaged, "{what}: {e}, and files changed");
        }
        Ok(wal) => check(log, &wal, what),
    }
}

/// The storage seam's files can also be damaged in place; a unit of the
/// sweep above, kept readable on its own.
#[test]
fn a_flip_in_place_through_the_storage_seam() {
    let log = build_in_memory(256, false);
    let storage = MemoryStorage::from_contents(log.files.clone());
    let segment = log.files.keys().find(|n| n.ends_with(".wal")).unwrap();
    let file = storage.open(segment, false).unwrap();
    let mut b = [0u8];
    file.read_at(&mut b, 100).unwrap();
    file.write_at(&[b[0] ^ 4], 100).unwrap();
    let before = storage.contents();
    let err = Wal::open_with(storage.clone(), log.options.clone()).unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(storage.contents() == before);
}
