//! Damaged files on disk: each kind gets its typed error naming the file
//! (and offset where there is one) and leaves every file as it was, or a
//! correct recovery when the damage can only be a torn end that was never
//! acknowledged. `tests/damage.rs` sweeps every bit and every length; these
//! are the cases one at a time, on real files.

use statemesh_wal::{OpenError, Wal, WalOptions};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn opts() -> WalOptions {
    // Small segments so a test has sealed ones.
    WalOptions::new().segment_size(4096).max_batch_bytes(512)
}

fn payload(i: u64) -> Vec<u8> {
    vec![(i % 251) as u8; 100]
}

/// With `opts()` and each append waited for, every entry is its own batch:
/// a 64-byte segment header, then per entry a 116-byte record and a 32-byte
/// batch marker.
fn record_offset(k: u64) -> u64 {
    64 + (k - 1) * 148
}

/// Appends entries `1..=n`, each waited for.
fn fill(wal: &Wal, n: u64) {
    for i in 1..=n {
        wal.append(payload(i)).unwrap().wait().unwrap();
    }
}

/// A closed log with `n` entries; returns its segment paths in order.
fn filled(dir: &Path, n: u64) -> Vec<PathBuf> {
    fill(&Wal::open(dir, opts()).unwrap(), n);
    segments(dir)
}

/// A log with `n` entries, closed, and a copy of it taken while it was
/// still open after the last append: what a process crash leaves.
fn closed_and_crashed(n: u64) -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    fill(&wal, n);
    let crashed = crash_copy(dir.path());
    drop(wal);
    (dir, crashed)
}

/// The files of a log as a process crash leaves them: copied while the log
/// is open, so what is in the page cache is in the copy.
fn crash_copy(wal_dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for (name, bytes) in files(wal_dir) {
        fs::write(copy.path().join(name), bytes).unwrap();
    }
    copy
}

/// Every file but the lock, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
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

/// Opens `dir`, expects an error, and checks that no file changed.
fn refused(dir: &Path, options: WalOptions) -> OpenError {
    let before = files(dir);
    let err = Wal::open(dir, options).unwrap_err();
    assert!(
        files(dir) == before,
        "{err}: the refused open changed files"
    );
    err
}

#[test]
fn a_flipped_segment_header_bit_is_a_corrupt_header() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    flip(&segs[1], 20);
    let err = refused(dir.path(), opts());
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
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::BadMagic { path } if *path == segs[0]),
        "{err}"
    );
}

#[test]
fn damage_in_a_sealed_segment_is_refused_unchanged_then_repaired_on_request() {
    for offset_in_record in [0u64, 5, 10, 40, 115] {
        let dir = tempfile::tempdir().unwrap();
        let segs = filled(dir.path(), 100);
        assert!(segs.len() >= 3);
        flip(&segs[0], record_offset(3) + offset_in_record);
        let err = refused(dir.path(), opts());
        match &err {
            OpenError::Corrupt {
                path,
                offset,
                index,
            } => {
                assert_eq!(path, &segs[0]);
                assert_eq!(*offset, record_offset(3));
                assert_eq!(*index, 3);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("repair"), "{err}");
        let wal = Wal::open(dir.path(), opts().repair(true)).unwrap();
        let repaired = wal.recovery().repaired.clone().unwrap();
        assert_eq!((repaired.from, repaired.to), (3, Some(100)));
        assert_eq!(repaired.path, segs[0]);
        assert_eq!(wal.last_index(), Some(2));
        assert_eq!(wal.get(2).unwrap(), Some(payload(2)));
        assert_eq!(wal.append(b"new".to_vec()).unwrap().index(), 3);
        drop(wal);
        // The repaired log opens without repair, as it was left.
        let wal = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(wal.last_index(), Some(3));
        assert!(wal.recovery().dropped_nothing());
    }
}

/// A bit flipped in entry 10, or entry 1, of thousands of acknowledged
/// 4 KiB entries in one 64 MiB segment, at default options: the damage is
/// refused, not cut as a torn end, whether the log was closed or its
/// process crashed.
#[test]
fn a_flip_far_from_the_end_of_the_active_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    for i in 0..5000u64 {
        let p = vec![(i % 251) as u8; 4096];
        wal.append(p).unwrap().wait().unwrap();
    }
    let crashed = crash_copy(dir.path());
    drop(wal);
    // Each entry its own batch: 4112-byte records, 32-byte markers.
    let entry = |k: u64| 64 + (k - 1) * (4112 + 32);
    for root in [dir.path(), crashed.path()] {
        let seg = segments(root).remove(0);
        for k in [10, 1] {
            let pristine = fs::read(&seg).unwrap();
            flip(&seg, entry(k) + 16 + 100);
            let err = refused(root, WalOptions::new());
            assert!(
                matches!(&err, OpenError::Corrupt { path, offset, index } if *path == seg && *offset == entry(k) && *index == k),
                "{err}"
            );
            fs::write(&seg, pristine).unwrap();
        }
        let wal = Wal::open(root, WalOptions::new()).unwrap();
        assert_eq!(wal.last_index(), Some(5000));
    }
}

/// After a crash, the last batch is vouched for by no marker; damage to it
/// would be cut as a torn end, but when the metadata records it committed
/// the open fails with `Lost` first, changing nothing.
#[test]
fn lost_is_reported_before_anything_is_cut() {
    for (hint, repair) in [(true, false), (false, false), (true, true)] {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), opts()).unwrap();
        fill(&wal, 20);
        if hint {
            wal.note_committed(20, b"c".to_vec()).unwrap();
        } else {
            wal.save_committed(20, b"c".to_vec()).unwrap();
        }
        let crashed = crash_copy(dir.path());
        drop(wal);
        let seg = segments(crashed.path()).pop().unwrap();
        let bytes = fs::read(&seg).unwrap();
        let last = bytes.windows(100).rposition(|w| w == payload(20)).unwrap() as u64;
        flip(&seg, last + 50);
        let err = refused(crashed.path(), opts().repair(repair));
        assert!(
            matches!(
                err,
                OpenError::Lost {
                    committed: 20,
                    last: Some(19),
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn a_flip_in_either_metadata_slot_keeps_the_newest_vote() {
    for at in [10, 40, 4096 + 10, 4096 + 40] {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = Wal::open(dir.path(), opts()).unwrap();
            wal.save_vote(b"old".to_vec()).unwrap();
            wal.save_vote(b"new".to_vec()).unwrap();
        }
        flip(&dir.path().join("META"), at);
        let wal = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(wal.meta().vote.as_deref(), Some(&b"new"[..]), "{at}");
        drop(wal);
        // Opening wrote the good copy to both slots again: damage to the
        // other slot now still finds it.
        let other = if at < 4096 { at + 4096 } else { at - 4096 };
        flip(&dir.path().join("META"), other);
        let wal = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(wal.meta().vote.as_deref(), Some(&b"new"[..]), "{at}");
    }
}

#[test]
fn both_metadata_slots_damaged_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        wal.save_vote(b"v".to_vec()).unwrap();
    }
    let meta = dir.path().join("META");
    flip(&meta, 30);
    flip(&meta, 4096 + 30);
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::CorruptMeta { path, .. } if *path == meta),
        "{err}"
    );
}

#[test]
fn a_deleted_meta_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 10);
    fs::remove_file(dir.path().join("META")).unwrap();
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::MissingMeta { path } if *path == dir.path().join("META")),
        "{err}"
    );
    assert!(!dir.path().join("META").exists());
}

#[test]
fn a_deleted_first_or_newest_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    let first = segs[0].clone();
    let newest = segs.last().unwrap().clone();
    let saved = fs::read(&first).unwrap();
    fs::remove_file(&first).unwrap();
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::MissingSegment { path, expected: 1, found: Some(_) } if *path == first),
        "{err}"
    );
    fs::write(&first, saved).unwrap();
    fs::remove_file(&newest).unwrap();
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::MissingSegment { path, found: None, .. } if *path == newest),
        "{err}"
    );
}

#[test]
fn a_missing_segment_is_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    fs::remove_file(&segs[1]).unwrap();
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::MissingSegment { path, found: Some(_), .. } if *path == segs[1]),
        "{err}"
    );
    // Repair keeps what precedes the hole and says what it dropped.
    let wal = Wal::open(dir.path(), opts().repair(true)).unwrap();
    let last = wal.last_index().unwrap();
    assert_eq!(last, 27);
    let repaired = wal.recovery().repaired.clone().unwrap();
    assert_eq!((repaired.from, repaired.to), (28, Some(100)));
    for i in 1..=last {
        assert_eq!(wal.get(i).unwrap(), Some(payload(i)));
    }
}

#[test]
fn a_truncated_segment_is_refused_and_repair_keeps_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let segs = filled(dir.path(), 100);
    let f = fs::OpenOptions::new().write(true).open(&segs[0]).unwrap();
    f.set_len(record_offset(5) + 10).unwrap();
    let err = refused(dir.path(), opts());
    assert!(
        matches!(&err, OpenError::Truncated { path, expected: 4096, .. } if *path == segs[0]),
        "{err}"
    );
    let wal = Wal::open(dir.path(), opts().repair(true)).unwrap();
    assert_eq!(wal.last_index(), Some(4));
    assert_eq!(wal.recovery().repaired.as_ref().map(|r| r.from), Some(5));
    drop(wal);
    assert_eq!(fs::metadata(&segs[0]).unwrap().len(), 4096);
}

#[test]
fn a_torn_end_is_cut_and_stays_cut() {
    let (_dir, crashed) = closed_and_crashed(100);
    let last = segments(crashed.path()).pop().unwrap();
    // Part of the last write batch never reached the disk.
    let bytes = fs::read(&last).unwrap();
    let at = bytes.windows(100).rposition(|w| w == payload(100)).unwrap() as u64;
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .write_all_at(&[0xEE; 40], at + 30)
        .unwrap();
    let wal = Wal::open(crashed.path(), opts()).unwrap();
    assert_eq!(wal.last_index(), Some(99));
    let torn = wal.recovery().torn.clone().unwrap();
    // Its batch marker arrived: entry 100 existed, and it is reported dropped.
    assert_eq!((torn.path, torn.from, torn.to), (last, 100, Some(100)));
    wal.append(b"x".to_vec()).unwrap().wait().unwrap();
    drop(wal);
    let wal = Wal::open(crashed.path(), opts()).unwrap();
    assert_eq!(wal.last_index(), Some(100));
    assert_eq!(wal.get(100).unwrap(), Some(b"x".to_vec()));
    assert_eq!(wal.recovery().torn, None);
}

#[test]
fn a_zeroed_last_batch_ends_a_crashed_log_but_is_damage_in_a_closed_one() {
    let (dir, crashed) = closed_and_crashed(30);
    for (root, closed) in [(crashed.path(), false), (dir.path(), true)] {
        let last = segments(root).pop().unwrap();
        let bytes = fs::read(&last).unwrap();
        let at = bytes.windows(100).rposition(|w| w == payload(30)).unwrap() as u64 - 16;
        // The record and its batch marker, as if their pages never arrived.
        fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .unwrap()
            .write_all_at(&[0u8; 148], at)
            .unwrap();
        if closed {
            // Closing vouched for entry 30: its loss is damage.
            let err = refused(root, opts());
            assert!(matches!(err, OpenError::Corrupt { index: 30, .. }), "{err}");
        } else {
            let wal = Wal::open(root, opts()).unwrap();
            assert_eq!(wal.last_index(), Some(29));
        }
    }
}

#[test]
fn a_torn_committed_hint_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        fill(&wal, 5);
        wal.note_committed(4, b"c4".to_vec()).unwrap();
        wal.note_committed(5, b"c5".to_vec()).unwrap();
    }
    // The second hint is the page at 12288; byte 16 is its id's first.
    flip(&dir.path().join("META"), 12288 + 16);
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.meta().committed, Some((4, b"c4".to_vec())));
}
