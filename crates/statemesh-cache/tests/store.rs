//! The filesystem store: round trips, durability rules, start-up cleaning,
//! damaged files and I/O failures, each with its typed error.

mod common;

use statemesh_cache::{FsStore, Key, Location, Place, Store, StoreError};
use std::fs;
use std::path::Path;

fn loc(name: &str) -> Location {
    Location::new(name).unwrap()
}

#[test]
fn blobs_round_trip_in_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let docs = loc("docs");
    let (a, b) = (Key::random(), Key::random());
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
    store.write(Place::Spill, a, &big).unwrap();
    store.write(Place::Persisted(&docs), b, b"").unwrap();
    assert_eq!(store.read(Place::Spill, a).unwrap(), big);
    assert_eq!(store.read(Place::Persisted(&docs), b).unwrap(), b"");
    assert!(store.contains(Place::Spill, a).unwrap());
    assert!(!store.contains(Place::Spill, b).unwrap());
    assert!(!store.contains(Place::Persisted(&docs), a).unwrap());
    assert!(store.remove(Place::Spill, a).unwrap());
    assert!(!store.remove(Place::Spill, a).unwrap());
    match store.read(Place::Spill, a) {
        Err(StoreError::NotFound { key, .. }) => assert_eq!(key, a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn persisting_a_key_twice_keeps_the_first_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let l = loc("a/b");
    let k = Key::random();
    store.write(Place::Persisted(&l), k, b"first").unwrap();
    store.write(Place::Persisted(&l), k, b"first").unwrap();
    assert_eq!(store.read(Place::Persisted(&l), k).unwrap(), b"first");
    assert_eq!(store.list(&l).unwrap().keys, vec![k]);
}

#[test]
fn listing_covers_every_shard_and_reports_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let l = loc("many");
    let mut keys: Vec<Key> = (0..300).map(|_| Key::random()).collect();
    for k in &keys {
        store
            .write(Place::Persisted(&l), *k, k.to_string().as_bytes())
            .unwrap();
    }
    // A nested location is not part of this one.
    store
        .write(Place::Persisted(&loc("many/inner")), Key::random(), b"x")
        .unwrap();
    let stranger = store
        .path_of(Place::Persisted(&l), keys[0])
        .with_file_name("notes.txt");
    fs::write(&stranger, b"mine").unwrap();
    keys.sort();
    let listing = store.list(&l).unwrap();
    assert_eq!(listing.keys, keys);
    assert_eq!(listing.unknown, vec![stranger.clone()]);
    assert!(stranger.exists());
    assert_eq!(store.list(&loc("absent")).unwrap(), Default::default());
}

#[test]
fn start_up_removes_spills_and_unfinished_persists_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let l = loc("kept");
    let (spilled, persisted) = (Key::random(), Key::random());
    let (unfinished, stranger, stranger_in_spill, stranger_at_root);
    {
        let store = FsStore::open(dir.path()).unwrap();
        store.write(Place::Spill, spilled, b"spilled").unwrap();
        store
            .write(Place::Persisted(&l), persisted, b"persisted")
            .unwrap();
        let p = store.path_of(Place::Persisted(&l), persisted);
        // What a process killed in the middle of a persist leaves behind.
        let k = Key::random();
        let shard = p
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join(format!("{:02x}", k.as_u128() >> 120));
        fs::create_dir_all(&shard).unwrap();
        unfinished = shard.join(format!("{k}.1f.blob.tmp"));
        fs::write(&unfinished, b"half").unwrap();
        stranger = p.with_file_name("README");
        fs::write(&stranger, b"not ours").unwrap();
        stranger_in_spill = store.path_of(Place::Spill, spilled).with_file_name("core");
        fs::write(&stranger_in_spill, b"not ours").unwrap();
        stranger_at_root = dir.path().join("photo.jpg");
        fs::write(&stranger_at_root, b"not ours").unwrap();
    }
    let store = FsStore::open(dir.path()).unwrap();
    let s = store.startup();
    assert_eq!(s.spills_removed, 1);
    assert_eq!(s.unfinished_removed, 1);
    let mut expected = vec![
        stranger.clone(),
        stranger_in_spill.clone(),
        stranger_at_root.clone(),
    ];
    expected.sort();
    assert_eq!(s.unknown, expected);
    for p in &expected {
        assert!(p.exists(), "{} was deleted", p.display());
    }
    assert!(!unfinished.exists());
    assert!(!store.contains(Place::Spill, spilled).unwrap());
    assert_eq!(
        store.read(Place::Persisted(&l), persisted).unwrap(),
        b"persisted"
    );
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FsStore::open(dir.path()).unwrap();
    assert!(matches!(
        FsStore::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
}

/// While another thread spawns commands, a dropped store's lock can be held
/// for a moment by a child between fork and exec; reopening must wait it out.
#[test]
fn reopening_while_the_process_spawns_children_is_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::Command::new("true").status().unwrap();
            }
        })
    };
    let reopened = (1..=100).try_for_each(|i| {
        FsStore::open(dir.path())
            .map(drop)
            .map_err(|e| format!("reopen {i}: {e}"))
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spawner.join().unwrap();
    reopened.unwrap();
}

fn corrupt_case(store: &FsStore, l: &Location, damage: impl FnOnce(&Path)) -> StoreError {
    let k = Key::random();
    store.write(Place::Persisted(l), k, &[5u8; 1000]).unwrap();
    damage(&store.path_of(Place::Persisted(l), k));
    store.read(Place::Persisted(l), k).unwrap_err()
}

type Damage = Box<dyn FnOnce(&Path)>;

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_blobs_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let l = loc("c");
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "payload bit",
            Box::new(|p| flip(p, 500)),
            "payload checksum",
        ),
        ("magic", Box::new(|p| flip(p, 0)), "wrong magic"),
        ("length", Box::new(|p| flip(p, 9)), "header checksum"),
        ("header crc", Box::new(|p| flip(p, 21)), "header checksum"),
        (
            "cut mid-payload",
            Box::new(|p| {
                fs::File::options()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(600)
                    .unwrap()
            }),
            "file holds 576",
        ),
        (
            "cut mid-header",
            Box::new(|p| {
                fs::File::options()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(10)
                    .unwrap()
            }),
            "shorter than a blob header",
        ),
        (
            "zeroed",
            Box::new(|p| fs::write(p, vec![0u8; 1024]).unwrap()),
            "wrong magic",
        ),
        (
            "grown",
            Box::new(|p| {
                let mut b = fs::read(p).unwrap();
                b.extend_from_slice(b"tail");
                fs::write(p, b).unwrap();
            }),
            "file holds 1004",
        ),
    ];
    for (what, damage, problem_has) in cases {
        match corrupt_case(&store, &l, damage) {
            StoreError::Corrupt { path, problem } => {
                assert!(problem.contains(problem_has), "{what}: {problem}");
                assert!(path.starts_with(dir.path()), "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn a_full_disk_is_a_typed_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let l = loc("full");
    // Writes to /dev/full fail with ENOSPC: the blob's file (spill) or its
    // temporary file (persist) is made a link to it.
    let k = Key::random();
    let spill = store.path_of(Place::Spill, k);
    fs::create_dir_all(spill.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &spill).unwrap();
    let err = store.write(Place::Spill, k, &[1u8; 100_000]).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(!store.contains(Place::Spill, k).unwrap());

    // A persist writes a temporary file of its own: the location is put on
    // a file system too small for the blob.
    let tiny = match common::TinyFs::mount(&dir.path().join("tiny")) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("persisted half skipped: {why}");
            return;
        }
    };
    std::os::unix::fs::symlink(tiny.path(), dir.path().join("persist").join("full")).unwrap();
    let k = Key::random();
    let err = store
        .write(Place::Persisted(&l), k, &[1u8; 100_000])
        .unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(!store.contains(Place::Persisted(&l), k).unwrap());
    let leftovers: Vec<_> = common::files_under(tiny.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_refused_permission_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let l = loc("ro");
    let k = Key::random();
    store
        .write(Place::Persisted(&l), Key::random(), b"x")
        .unwrap();
    let shard = store.path_of(Place::Persisted(&l), k);
    let shard = shard.parent().unwrap();
    fs::create_dir_all(shard).unwrap();
    let err = {
        let _ro = common::ReadOnly::new(shard);
        store.write(Place::Persisted(&l), k, b"blob").unwrap_err()
    };
    assert!(
        matches!(err, StoreError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert!(!store.contains(Place::Persisted(&l), k).unwrap());
}
