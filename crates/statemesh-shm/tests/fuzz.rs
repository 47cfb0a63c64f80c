//! Fuzz targets: the bytes a reader trusts in a region it did not write,
//! edited, handed to `Reader`. Each input must give `Ok` or a typed error,
//! never a panic, and nothing here may wait without a bound.
//!
//! `STATEMESH_FUZZ_SECS` sets how long each target runs (default 1 s); see
//! `statemesh_test_support::fuzz`. Inputs that once failed are kept below
//! as regression tests.

mod common;

use common::test_dir;
use statemesh_shm::{OpenError, Reader, ReaderOptions, Writer, WriterOptions, fuzzing};
use statemesh_test_support::fuzz::{self, Edit};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Slots and buffers of the seed regions: small, so that edits land in the
/// descriptors and slots as often as in the header.
const SLOTS: u32 = 3;
const BUFFERS: u32 = 3;

/// Control files written by the crate's writer, in the states a reader
/// meets: just created, published with a writer attached, with every slot
/// claimed by a live reader, and after the writer left.
fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let options = WriterOptions::new()
        .dir(dir)
        .slots(SLOTS)
        .max_buffers(BUFFERS)
        .checksum(true);
    let control = dir.join("seed");
    let mut seeds = Vec::new();
    let mut writer = Writer::<[u8]>::with_options("seed", options).unwrap();
    seeds.push(fs::read(&control).unwrap());
    for round in 0..4u8 {
        writer.write_raw(&[round; 100]).unwrap();
    }
    seeds.push(fs::read(&control).unwrap());
    let readers: Vec<Reader> = (0..SLOTS)
        .map(|_| Reader::with_options("seed", ReaderOptions::new().dir(dir)).unwrap())
        .collect();
    seeds.push(fs::read(&control).unwrap());
    drop(readers);
    drop(writer);
    seeds.push(fs::read(&control).unwrap());
    seeds
}

/// Writes `bytes` as the control file of region `fuzz` in `dir` (whose
/// buffer files are the seed region's) and uses it as a reader would.
fn open_and_read(dir: &Path, bytes: &[u8]) {
    let started = Instant::now();
    let control = dir.join("fuzz");
    // A new file each time: a reader maps the control file shared.
    let _ = fs::remove_file(&control);
    fs::write(&control, bytes).unwrap();
    let options = ReaderOptions::new().dir(dir).verify_checksum(true);
    match Reader::<[u8]>::with_options("fuzz", options) {
        Ok(mut reader) => {
            let _ = reader.version();
            let _ = reader.writer_attached();
            if let Ok(guard) = reader.read_raw() {
                let _ = guard.iter().map(|b| u64::from(*b)).sum::<u64>();
            }
            let _ = reader.wait_for_change(Duration::ZERO);
        }
        Err(OpenError::Io { source, .. }) => {
            panic!("an I/O error on a file that is there: {source}")
        }
        Err(_) => {}
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "one input took {took:?}");
}

/// The fuzz region's buffer files: the seed region's, linked.
fn link_buffers(dir: &Path) {
    for index in 0..BUFFERS {
        let seed = dir.join(format!("seed.buf{index}"));
        if seed.exists() {
            fs::hard_link(&seed, dir.join(format!("fuzz.buf{index}"))).unwrap();
        }
    }
}

#[test]
fn region_control_file() {
    let dir = test_dir();
    let seeds = seeds(dir.path());
    link_buffers(dir.path());
    let runs = fuzz::run_resealed(
        "shm-region-control",
        &seeds,
        |bytes| fuzzing::reseal_control_header(bytes),
        |bytes| open_and_read(dir.path(), bytes),
    );
    assert!(runs > 0);
}

/// A seed with the owner word at `at` naming `pid` (words are native-endian).
fn with_owner(seed: &[u8], at: usize, pid: u32) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    bytes[at..at + 8].copy_from_slice(&(u64::from(pid) << 32).to_ne_bytes());
    bytes
}

/// Found by `region_control_file`: an owner word whose pid is above
/// `i32::MAX` became a negative `pid_t`, which `kill` reads as a process
/// group (and which failed a debug assertion in rustix first).
#[test]
fn an_owner_pid_past_i32_max_names_no_process() {
    let dir = test_dir();
    let seeds = seeds(dir.path());
    link_buffers(dir.path());
    // The writer word is at 80; every slot of the third seed is taken, so
    // opening it checks the slots' owners, the first at 192 + 64 * buffers.
    let (writer, first_slot) = (80, 192 + 64 * BUFFERS as usize);
    for pid in [0x8000_0000, u32::MAX] {
        open_and_read(dir.path(), &with_owner(&seeds[1], writer, pid));
        open_and_read(dir.path(), &with_owner(&seeds[2], first_slot, pid));
    }
    // The input as found (BOLERO_RANDOM_SEED=78310679517639913343967100660586137347):
    // three bytes inserted in the region id shift the writer word, so its
    // pid is made of the start time's bytes and the real pid's low byte.
    let mut found = seeds[0].clone();
    Edit::Insert {
        at: 218_497_536,
        bytes: vec![0; 3],
    }
    .apply(&mut found);
    fuzzing::reseal_control_header(&mut found);
    open_and_read(dir.path(), &found);
}
