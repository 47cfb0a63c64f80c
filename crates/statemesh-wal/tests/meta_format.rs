//! The `META` file as `FORMAT.md` lays it out, written here byte for byte
//! (not with the crate's encoder), so that a change to the format that
//! would stop existing files from opening fails here first; and a file of
//! a later format version is refused with a typed error that names it.

use statemesh_wal::{Meta, OpenError, Wal, WalOptions};
use std::path::Path;

const SLOT_LEN: usize = 4096;
const HINTS_AT: usize = 2 * SLOT_LEN;

/// The fields of a slot: vote, committed, purged, origin, last segment.
fn fields() -> Vec<u8> {
    let mut f = Vec::new();
    // vote = 1 len:u32 bytes
    f.push(1);
    f.extend_from_slice(&13u32.to_le_bytes());
    f.extend_from_slice(b"term 7 node 2");
    // committed = 1 index:u64 len:u32 bytes
    f.push(1);
    f.extend_from_slice(&9u64.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(b"c");
    // purged = 1 index:u64 len:u32 bytes
    f.push(1);
    f.extend_from_slice(&10u64.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(b"p");
    // origin = 0, last_segment = 0: no segment was ever created.
    f.extend_from_slice(&[0, 0]);
    f
}

/// One slot of format `version`, sequence 4.
fn slot(version: u32) -> Vec<u8> {
    let fields = fields();
    let mut s = Vec::new();
    s.extend_from_slice(b"SMWALMET");
    s.extend_from_slice(&version.to_le_bytes());
    s.extend_from_slice(&[0; 4]); // crc, below
    s.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&4u64.to_le_bytes());
    s.extend_from_slice(&fields);
    // crc = CRC32C(bytes 0..12 ++ bytes 16..32+len)
    let crc = crc32c::crc32c_append(crc32c::crc32c(&s[..12]), &s[16..]);
    s[12..16].copy_from_slice(&crc.to_le_bytes());
    s
}

/// A hint: crc, len, index, id; crc = CRC32C(bytes 4..16+len).
fn hint(index: u64, id: &[u8]) -> Vec<u8> {
    let mut h = vec![0; 4];
    h.extend_from_slice(&(id.len() as u32).to_le_bytes());
    h.extend_from_slice(&index.to_le_bytes());
    h.extend_from_slice(id);
    let crc = crc32c::crc32c(&h[4..]);
    h[..4].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Four pages: both slots, then a hint in the first hint page.
fn meta_file(first: u32, second: u32) -> Vec<u8> {
    let mut file = vec![0u8; 4 * SLOT_LEN];
    let (a, b) = (slot(first), slot(second));
    file[..a.len()].copy_from_slice(&a);
    file[SLOT_LEN..SLOT_LEN + b.len()].copy_from_slice(&b);
    let h = hint(10, b"h");
    file[HINTS_AT..HINTS_AT + h.len()].copy_from_slice(&h);
    file
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    all.sort();
    all
}

#[test]
fn a_meta_file_of_the_current_format_written_by_hand_opens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("META"), meta_file(2, 2)).unwrap();
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    let expected = Meta {
        vote: Some(b"term 7 node 2".to_vec()),
        // The hint's index is above the slot's: the hint wins.
        committed: Some((10, b"h".to_vec())),
        purged: Some((10, b"p".to_vec())),
    };
    assert_eq!(wal.meta(), expected);
    assert_eq!(wal.first_index(), 11);
    assert!(wal.recovery().dropped_nothing());
    // Both slots agreed and no segment was missing: nothing rewritten.
    let meta = std::fs::read(dir.path().join("META")).unwrap();
    assert_eq!(meta, meta_file(2, 2));

    // The log goes on from it, and the next update keeps what it held.
    let a = wal.append(b"eleven".to_vec()).unwrap();
    a.wait().unwrap();
    assert_eq!(a.index(), 11);
    wal.save_vote(b"term 8 node 2".to_vec()).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    assert_eq!(wal.meta().vote.as_deref(), Some(&b"term 8 node 2"[..]));
    assert_eq!(wal.meta().purged, expected.purged);
    assert_eq!(wal.get(11).unwrap().as_deref(), Some(&b"eleven"[..]));
}

#[test]
fn a_meta_file_of_a_later_version_is_refused_by_name_and_left_alone() {
    // Both slots bumped, or only the first: a later build may have written
    // the newest value into it, so the valid second slot is not taken.
    for (first, second) in [(3, 3), (3, 2)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("META"), meta_file(first, second)).unwrap();
        let before = files(dir.path());
        let err = Wal::open(dir.path(), WalOptions::new()).unwrap_err();
        let OpenError::UnsupportedVersion {
            path,
            found,
            supported,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*found, *supported), (3, 2));
        assert_eq!(path, &dir.path().join("META"));
        assert!(
            err.to_string()
                .contains("format version 3 is not supported (this build reads 2)"),
            "{err}"
        );
        // `LOCK` is created by opening the directory; nothing else changed.
        let after: Vec<_> = files(dir.path())
            .into_iter()
            .filter(|(n, _)| n != "LOCK")
            .collect();
        assert_eq!(after, before);
    }
}
