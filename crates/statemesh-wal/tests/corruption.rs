//! Damaged files: each kind gets its typed error naming the file (and offset
//! where there is one), or a correct recovery when the damage can only be a
//! torn end that was never acknowledged.

use statemesh_wal::{OpenError, Wal, WalOptions};
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn opts() -> WalOptions {
    // Small segments so a test has sealed ones, small batches so the torn
    // window is small.
    WalOptions::new().segment_size(4096).max_batch_bytes(512)
}

fn payload(i: u64) -> Vec<u8> {
    vec![(i % 251) as u8; 100]
}

/// A log with `n` entries, closed; returns its segment paths in order.
fn filled(dir: &Path, n: u64) -> Vec<PathBuf> {
    let wal = Wal::open(dir, opts()).unwrap();
    for i in 1..=n {
        wal.append(payload(i)).unwrap().wait().unwrap();
    }
    drop(wal);
    segments(dir)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    s.sort();
    s
}

/// Offset just past the last non-zero byte: the end of the records.
fn data_end(path: &Path) -> u64 {
    let data = fs::read(path).unwrap();
    data.iter().rposition(|&b| b != 0).unwrap() as u64 + 1
}

fn flip(path: &Path, offset: u64) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], offset).unwrap();
}

#[test]
fn a_flipped_segment_header_bit_is_a_corrupt_header() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    flip(&segs[1], 20);
    let err = Wal::open(dir.path(), opts()).unwrap_err();
    assert!(
        matches!(&err, OpenError::CorruptHeader { path, .. } if *path == segs[1]),
        "{err}"
    );
}

#[test]
fn a_wrong_magic_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 10);
    fs::OpenOptions::new()
        .write(true)
        .open(&segs[0])
        .unwrap()
        .write_all_at(b"NOTAWAL!", 0)
        .unwrap();
    let err = Wal::open(dir.path(), opts()).unwrap_err();
    assert!(
        matches!(&err, OpenError::BadMagic { path } if *path == segs[0]),
        "{err}"
    );
}

#[test]
fn damage_in_a_sealed_segment_is_refused_then_repaired_on_request() {
    for offset_in_record in [0u64, 5, 10, 40] {
        let dir = tempfile::tempdir().unwrap();
        let segs = filled(dir.path(), 100);
        assert!(segs.len() >= 3);
        // Record 3 of the first segment: header is 32 bytes, records 116.
        let at = 32 + 2 * 116 + offset_in_record;
        flip(&segs[0], at);
        let err = Wal::open(dir.path(), opts()).unwrap_err();
        match &err {
            OpenError::Corrupt {
                path,
                offset,
                index,
            } => {
                assert_eq!(path, &segs[0]);
                assert_eq!(*offset, 32 + 2 * 116);
                assert_eq!(*index, 3);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("repair"), "{err}");
        // Nothing was changed by the refused open.
        assert_eq!(segments(dir.path()), segs);
        let wal = Wal::open(dir.path(), opts().repair(true)).unwrap();
        assert_eq!(wal.last_index(), Some(2));
        assert_eq!(wal.get(2).unwrap(), Some(payload(2)));
        assert_eq!(wal.append(b"new".to_vec()).unwrap().index(), 3);
    }
}

#[test]
fn a_torn_end_is_cut_and_stays_cut() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    let last = segs.last().unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    let last_index = wal.last_index().unwrap();
    drop(wal);
    // Cut the file in the middle of the last record, as a crash during its
    // write would leave it (here even the length shrinks).
    let end = data_end(last);
    fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(end - 50)
        .unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.last_index(), Some(last_index - 1));
    wal.append(b"x".to_vec()).unwrap().wait().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.last_index(), Some(last_index));
    assert_eq!(wal.get(last_index).unwrap(), Some(b"x".to_vec()));
}

#[test]
fn a_zero_filled_tail_is_the_end_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 30);
    let last = segs.last().unwrap();
    let end = data_end(last);
    // Zero the last record entirely, as if its pages never reached the disk.
    fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .write_all_at(&[0u8; 116], end - 116)
        .unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.last_index(), Some(29));
}

#[test]
fn a_missing_segment_is_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    fs::remove_file(&segs[1]).unwrap();
    let err = Wal::open(dir.path(), opts()).unwrap_err();
    assert!(
        matches!(&err, OpenError::MissingSegment { path, .. } if *path == segs[2]),
        "{err}"
    );
    // Repair keeps what precedes the hole.
    let wal = Wal::open(dir.path(), opts().repair(true)).unwrap();
    let last = wal.last_index().unwrap();
    assert!((30..100).contains(&last), "{last}");
    for i in 1..=last {
        assert_eq!(wal.get(i).unwrap(), Some(payload(i)));
    }
}

/// Writes 20 entries, records 20 as committed with `commit`, cuts the end
/// of the last segment, and checks that opening reports the loss.
fn committed_but_cut(commit: impl Fn(&Wal)) {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        for i in 1..=20 {
            wal.append(payload(i)).unwrap().wait().unwrap();
        }
        commit(&wal);
    }
    let last = segments(dir.path()).pop().unwrap();
    let end = data_end(&last);
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(end - 10)
        .unwrap();
    let err = Wal::open(dir.path(), opts()).unwrap_err();
    assert!(
        matches!(err, OpenError::Lost { committed: 20, .. }),
        "{err}"
    );
}

#[test]
fn committed_entries_that_are_missing_are_reported() {
    committed_but_cut(|wal| wal.save_committed(20, b"c".to_vec()).unwrap());
}

#[test]
fn a_torn_committed_hint_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        for i in 1..=5 {
            wal.append(payload(i)).unwrap().wait().unwrap();
        }
        wal.note_committed(4, b"c4".to_vec()).unwrap();
        wal.note_committed(5, b"c5".to_vec()).unwrap();
    }
    // The second hint is the page at 12288; byte 16 is its id's first.
    flip(&dir.path().join("META"), 12288 + 16);
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.meta().committed, Some((4, b"c4".to_vec())));
}

#[test]
fn a_committed_hint_past_the_end_of_the_log_is_reported() {
    committed_but_cut(|wal| wal.note_committed(20, b"c".to_vec()).unwrap());
}

#[test]
fn both_metadata_slots_damaged_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        wal.save_vote(b"v".to_vec()).unwrap();
    }
    let meta = dir.path().join("META");
    // Byte 10 is in each slot's sequence number, which the CRC covers.
    flip(&meta, 10);
    flip(&meta, 4096 + 10);
    let err = Wal::open(dir.path(), opts()).unwrap_err();
    assert!(
        matches!(&err, OpenError::CorruptMeta { path } if *path == meta),
        "{err}"
    );
}

#[test]
fn one_damaged_metadata_slot_falls_back_to_the_other() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        wal.save_vote(b"old".to_vec()).unwrap();
        wal.save_vote(b"new".to_vec()).unwrap();
    }
    // Find the slot holding "new" and damage it: "old" must come back, never garbage.
    let meta = dir.path().join("META");
    let bytes = fs::read(&meta).unwrap();
    let slot = if bytes[..4096].windows(3).any(|w| w == b"new") {
        0
    } else {
        4096
    };
    flip(&meta, slot + 10);
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.meta().vote.as_deref(), Some(&b"old"[..]));
}
