//! Fuzz targets, one per decoder that reads bytes the log did not write:
//! an item (record or marker), a segment header, a whole segment as
//! recovery reads it, a segment file name, the `META` file, and a whole
//! directory with one damaged file, opened for real.
//!
//! Each hands edited copies of valid encodings to the decoder for
//! `STATEMESH_FUZZ_SECS` seconds (default 1; see `statemesh_test_support::
//! fuzz`), which must return without panicking and keep the invariants
//! checked below. A failure prints the input: keep it in the regression
//! tests at the end of this file.

use statemesh_test_support::fuzz;
use statemesh_wal::fuzzing::{self, Item};
use statemesh_wal::{MemoryStorage, OpenError, Storage, Wal, WalOptions};
use std::collections::BTreeMap;
use std::path::Path;

const SALT: u64 = 0x5eed_cafe;

fn record_seeds() -> Vec<Vec<u8>> {
    vec![
        fuzzing::encode_record(SALT, 1, b""),
        fuzzing::encode_record(SALT, 7, b"an entry"),
        fuzzing::encode_record(SALT, u64::MAX - 1, &[0xAB; 300]),
        fuzzing::encode_marker(SALT, 8, 64, false),
        fuzzing::encode_marker(SALT, 8, 4000, true),
    ]
}

fn decode_item(bytes: &[u8]) {
    match fuzzing::decode_item(SALT, bytes) {
        Some(Item::Record { index, len }) => {
            assert!((16..=bytes.len()).contains(&len), "{len}");
            let payload = fuzzing::record_payload(SALT, bytes, index).expect("the same record");
            assert_eq!(payload.len(), len - 16);
            assert_eq!(payload[..], bytes[16..len]);
            assert_eq!(fuzzing::record_payload(SALT, bytes, index ^ 1), None);
        }
        Some(Item::Marker { .. }) => {
            assert!(bytes.len() >= 32);
            assert_eq!(fuzzing::record_payload(SALT, bytes, 0), None);
        }
        None => {}
    }
}

#[test]
fn fuzz_record() {
    let runs = fuzz::run_resealed(
        "record",
        &record_seeds(),
        |b| fuzzing::reseal_item(SALT, b),
        decode_item,
    );
    assert!(runs > 0);
}

fn header_seeds() -> Vec<Vec<u8>> {
    vec![
        fuzzing::encode_segment_header(1, 4096, SALT),
        fuzzing::encode_segment_header(42, 64 << 20, 1),
        fuzzing::encode_segment_header(u64::MAX, u64::MAX, u64::MAX),
    ]
}

fn decode_header(bytes: &[u8]) {
    // Named after 42: the other seeds check the name against the header.
    if let Ok((first, capacity, salt)) = fuzzing::parse_segment_header(bytes, 42) {
        assert_eq!(first, 42);
        assert_eq!(
            fuzzing::encode_segment_header(first, capacity, salt)[..],
            bytes[..64]
        );
    }
}

#[test]
fn fuzz_segment_header() {
    let runs = fuzz::run_resealed(
        "segment header",
        &header_seeds(),
        |b| fuzzing::reseal_segment_header(b),
        decode_header,
    );
    assert!(runs > 0);
}

/// A small log in memory: several segments, a truncation, a purge, votes,
/// a committed index; closed (`crash` false) or copied while open.
fn small_log(crash: bool) -> BTreeMap<String, Vec<u8>> {
    let storage = MemoryStorage::new();
    let options = WalOptions::new().segment_size(4096).max_batch_bytes(512);
    let wal = Wal::open_with(storage.clone(), options).unwrap();
    wal.save_vote(b"vote 1".to_vec()).unwrap();
    for i in 0..40u64 {
        let payload = vec![i as u8; (i as usize * 53) % 400];
        wal.append(payload).unwrap().wait().unwrap();
    }
    wal.append_batch(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        .unwrap()
        .wait()
        .unwrap();
    wal.truncate(wal.next_index() - 2).unwrap();
    wal.append(vec![7; 5000]).unwrap().wait().unwrap();
    wal.purge(12, b"purged".to_vec()).unwrap();
    wal.save_committed(20, b"committed".to_vec()).unwrap();
    wal.note_committed(30, b"hint".to_vec()).unwrap();
    wal.append(b"last".to_vec()).unwrap().wait().unwrap();
    if crash {
        return storage.contents();
    }
    drop(wal);
    storage.contents()
}

fn segments_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<Vec<u8>> {
    files
        .iter()
        .filter(|(name, _)| fuzzing::parse_segment_file_name(name).is_some())
        .map(|(_, bytes)| bytes.clone())
        .collect()
}

fn decode_segment(bytes: &[u8]) {
    // The header's own first index names the file, so edits that change it
    // (resealed) are read too.
    let first = bytes
        .get(16..24)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let Ok(s) = fuzzing::read_segment_file(bytes, first) else {
        return;
    };
    assert_eq!(s.len, bytes.len() as u64);
    assert!(s.offsets.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    assert!(s.offsets.iter().all(|&o| o >= 64 && o < s.end), "{s:?}");
    assert_eq!(s.next, first + s.offsets.len() as u64);
    assert!(64 <= s.end && s.end <= s.nonzero_end.max(s.end), "{s:?}");
    assert!(s.end <= s.len.max(64), "{s:?}");
    assert!(s.durable <= s.end, "{s:?}");
}

/// A segment made item by item: the header, `records` from `first` on,
/// then a batch marker vouching for nothing, zero-filled to 4 KiB.
fn handmade_segment(first: u64, records: &[u64]) -> Vec<u8> {
    let mut seg = fuzzing::encode_segment_header(first, 4096, SALT);
    for &index in records {
        seg.extend(fuzzing::encode_record(SALT, index, b"entry"));
    }
    let next = records.last().map_or(first, |&l| l.saturating_add(1));
    seg.extend(fuzzing::encode_marker(SALT, next, 64, false));
    seg.resize(4096, 0);
    seg
}

#[test]
fn fuzz_segment_scan() {
    let mut seeds = segments_of(&small_log(false));
    seeds.extend(segments_of(&small_log(true)));
    // At the top of the index space, where `next` has no room left.
    seeds.push(handmade_segment(
        u64::MAX - 2,
        &[u64::MAX - 2, u64::MAX - 1],
    ));
    seeds.push(handmade_segment(u64::MAX - 1, &[u64::MAX - 1, u64::MAX]));
    let runs = fuzz::run_resealed(
        "segment scan",
        &seeds,
        |b| fuzzing::reseal_segment(b),
        decode_segment,
    );
    assert!(runs > 0);
}

fn decode_name(bytes: &[u8]) {
    let name = String::from_utf8_lossy(bytes);
    if let Some(first) = fuzzing::parse_segment_file_name(&name) {
        assert_eq!(fuzzing::segment_file_name(first), name);
    }
}

#[test]
fn fuzz_segment_file_name() {
    let seeds: Vec<Vec<u8>> = [0, 1, 42, 1 << 40, u64::MAX]
        .into_iter()
        .map(|i| fuzzing::segment_file_name(i).into_bytes())
        .chain([b"META".to_vec(), b"spare-1.tmp".to_vec()])
        .collect();
    let runs = fuzz::run("segment file name", &seeds, decode_name);
    assert!(runs > 0);
}

fn meta_seeds() -> Vec<Vec<u8>> {
    let fresh = {
        let storage = MemoryStorage::new();
        drop(Wal::open_with(storage.clone(), WalOptions::new()).unwrap());
        storage.contents()["META"].clone()
    };
    vec![
        fresh,
        small_log(false)["META"].clone(),
        small_log(true)["META"].clone(),
    ]
}

#[test]
fn fuzz_meta() {
    let runs = fuzz::run_resealed(
        "meta",
        &meta_seeds(),
        |b| fuzzing::reseal_meta(b),
        |bytes| drop(fuzzing::load_meta(bytes)),
    );
    assert!(runs > 0);
}

/// Versions of a small log on disk (closed cleanly, and copied while open,
/// as a process crash leaves it; starting at 1, and near the top of the
/// index space), each as a map of its files.
struct Logs {
    variants: Vec<BTreeMap<String, Vec<u8>>>,
}

impl Logs {
    fn write() -> Self {
        let mut variants = Vec::new();
        for start in [1, u64::MAX - 40] {
            for crash in [false, true] {
                variants.push(Self::one(start, crash));
            }
        }
        Self { variants }
    }

    fn one(start: u64, crash: bool) -> BTreeMap<String, Vec<u8>> {
        let dir = scratch_dir();
        let options = WalOptions::new()
            .segment_size(4096)
            .max_batch_bytes(512)
            .first_index(start);
        let wal = Wal::open(dir.path(), options).unwrap();
        wal.save_vote(b"vote 1".to_vec()).unwrap();
        for i in 0..30u64 {
            let payload = vec![i as u8; (i as usize * 71) % 300];
            wal.append(payload).unwrap().wait().unwrap();
        }
        wal.truncate(wal.next_index() - 3).unwrap();
        wal.append(vec![9; 4500]).unwrap().wait().unwrap();
        wal.purge(start + 5, b"purged".to_vec()).unwrap();
        wal.save_committed(start + 15, b"committed".to_vec())
            .unwrap();
        wal.append(b"last".to_vec()).unwrap().wait().unwrap();
        if !crash {
            drop(wal);
        }
        let files = read_dir(dir.path());
        files.into_iter().filter(|(n, _)| n != "LOCK").collect()
    }

    /// The variant and the name of the file an input damages.
    fn target(&self, input: &[u8]) -> Option<(usize, String)> {
        let [variant, file, ..] = input else {
            return None;
        };
        let v = *variant as usize % self.variants.len();
        let files = &self.variants[v];
        let name = files.keys().nth(*file as usize % files.len())?.clone();
        Some((v, name))
    }

    /// Fixes the checksums of the damaged file, so that edits reach what
    /// recovery believes once they hold: indices, lengths, markers' claims,
    /// the purge point and the layout.
    fn reseal(&self, input: &mut [u8]) {
        let Some((_, name)) = self.target(input) else {
            return;
        };
        let Some(bytes) = input.get_mut(3..) else {
            return;
        };
        if name == "META" {
            fuzzing::reseal_meta(bytes);
        } else {
            fuzzing::reseal_segment(bytes);
        }
    }

    /// One seed per file of each variant: which variant, which file, and
    /// the options, then the file's bytes.
    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut seeds = Vec::new();
        for (v, files) in self.variants.iter().enumerate() {
            for (f, bytes) in files.values().enumerate() {
                for flags in 0..4u8 {
                    let mut seed = vec![v as u8, f as u8, flags];
                    seed.extend_from_slice(bytes);
                    seeds.push(seed);
                }
            }
        }
        seeds
    }
}

/// Real files for the directory target, on tmpfs where there is one: the
/// target exercises recovery through `FsStorage` (lock, rename, fallocate,
/// maps), and an `fdatasync` on this project's shared disk took 3 ms, so
/// a run on disk made 34 inputs a second, on tmpfs several hundred.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Writes the variant the input names, with the file it names replaced by
/// the rest of the input, into `dir`, and opens it for real. A refused
/// open must leave every file as it was; an accepted one must read back
/// every entry it claims, and take a new one.
fn open_damaged(logs: &Logs, dir: &Path, input: &[u8]) {
    let Some((variant, name)) = logs.target(input) else {
        return;
    };
    let [_, _, flags, rest @ ..] = input else {
        return;
    };
    let mut files = logs.variants[variant].clone();
    files.insert(name, rest.to_vec());
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let options = WalOptions::new().segment_size(4096).repair(flags & 1 == 1);
    match Wal::open(dir, options) {
        Err(e) => {
            assert!(!matches!(e, OpenError::Locked { .. }), "{e}");
            let mut after = read_dir(dir);
            after.remove("LOCK");
            assert!(after == files, "{e}: a refused open changed the files");
        }
        Ok(wal) => {
            let (first, next) = (wal.first_index(), wal.next_index());
            assert!(first <= next, "{first} {next}");
            for index in first..next {
                match wal.get(index) {
                    Ok(Some(_)) => {}
                    other => panic!("entry {index} of {first}..{next}: {other:?}"),
                }
            }
            // Writing after recovery, on a quarter of the inputs: threads
            // and syncs make it the slowest step.
            if flags & 2 == 2 {
                let appended = wal.append(b"after".to_vec()).map(|a| (a.index(), a.wait()));
                match appended {
                    Ok((index, Ok(()))) => {
                        assert_eq!(index, next);
                        assert_eq!(wal.get(index).unwrap().as_deref(), Some(&b"after"[..]));
                    }
                    // A damaged log may be unable to take it: a typed error.
                    Ok((_, Err(_))) | Err(_) => {}
                }
            }
        }
    }
}

#[test]
fn fuzz_open_damaged_directory() {
    let logs = Logs::write();
    let dir = scratch_dir();
    let runs = fuzz::run_resealed(
        "open damaged directory",
        &logs.seeds(),
        |input| logs.reseal(input),
        |input| open_damaged(&logs, dir.path(), input),
    );
    assert!(runs > 0);
}

/// The files of the log in memory, to show that the directory target's
/// logs have what it edits: a `META` and several segments in each variant.
#[test]
fn the_logs_the_targets_start_from_hold_several_segments() {
    for crash in [false, true] {
        let files = small_log(crash);
        assert!(files.contains_key("META"));
        assert!(segments_of(&files).len() >= 3, "{:?}", files.keys());
    }
    let logs = Logs::write();
    for files in &logs.variants {
        assert!(files.contains_key("META"));
        assert!(segments_of(files).len() >= 3, "{:?}", files.keys());
    }
    let storage = MemoryStorage::from_contents(small_log(true));
    assert!(storage.list().unwrap().iter().any(|n| n.ends_with(".wal")));
}
