//! Fuzz targets: the bytes the cache reads back that it may not have
//! written (a blob file on disk, and the payload the codec decodes), edited,
//! handed to the code that reads them. Each input must give `Ok` or a typed
//! error, never a panic.
//!
//! `STATEMESH_FUZZ_SECS` sets how long each target runs (default 1 s); see
//! `statemesh_test_support::fuzz`.

use serde::{Deserialize, Serialize};
use statemesh_cache::{Codec, FsStore, Key, Location, Place, Pool, Postcard, Raw, Store, fuzzing};
use statemesh_test_support::fuzz;
use std::fs;

/// A value with a field of each kind postcard encodes differently: varints
/// signed and unsigned, lengths, UTF-8, options, enum tags, floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    words: Vec<u32>,
    tags: Vec<(String, i64)>,
    parent: Option<u64>,
    kind: Kind,
    score: f64,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    done: bool,
    mark: char,
    id: u128,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Note,
    Link(String),
    Range { from: u16, to: i16 },
}

fn docs() -> Vec<Doc> {
    let doc = |n: u32, kind: Kind| Doc {
        title: format!("doc {n} ✓"),
        words: (0..n).map(|i| i * 1000).collect(),
        tags: (0..n % 3)
            .map(|i| (format!("t{i}"), -i64::from(i) * 300))
            .collect(),
        parent: n.is_multiple_of(2).then_some(u64::from(n) << 40),
        kind,
        score: f64::from(n) / 3.0,
        body: vec![n as u8; n as usize * 7],
        done: n % 2 == 1,
        mark: char::from_u32(0x41 + n).unwrap_or('?'),
        id: u128::from(n) << 100,
    };
    vec![
        doc(0, Kind::Note),
        doc(3, Kind::Link("https://example.com/x".into())),
        doc(20, Kind::Range { from: 7, to: -7 }),
    ]
}

fn encode(doc: &Doc) -> Vec<u8> {
    let mut bytes = Vec::new();
    Postcard.encode(doc, &mut bytes).unwrap();
    bytes
}

fn decode(bytes: &[u8]) -> Result<Doc, statemesh_cache::CodecError> {
    Codec::<Doc>::decode(&Postcard, bytes)
}

/// Blob files as the store writes them, read back through the pool: its
/// check (the store's read and the codec) and a load of a registered
/// object. Half the inputs get both checksums recomputed, so that edits of
/// the payload reach the codec.
#[test]
fn blob_read_back_from_the_store() {
    // On tmpfs where there is one: each input is a file written and read.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let location = Location::new("fuzz").unwrap();
    let place = Place::Persisted(&location);
    let mut seeds = Vec::new();
    for doc in docs() {
        let key = Key::random();
        store.write(place, key, &encode(&doc)).unwrap();
        seeds.push(fs::read(store.path_of(place, key)).unwrap());
    }
    let key = Key::random();
    store.write(place, key, b"").unwrap();
    seeds.push(fs::read(store.path_of(place, key)).unwrap());
    // The file every input is written to, under a key of its own (written
    // once by the store, which makes its shard directory).
    let key = Key::random();
    store.write(place, key, b"").unwrap();
    let path = store.path_of(place, key);
    let pool: Pool<Doc> = Pool::new(store, Postcard, 1 << 20, |d: &Doc| d.body.len()).unwrap();
    let runs = fuzz::run_resealed(
        "cache-blob",
        &seeds,
        |bytes| fuzzing::reseal_blob(bytes),
        |bytes| {
            fs::write(&path, bytes).unwrap();
            let checked = pool.check(&location, key);
            let handle = pool.blocking_register(&location, key).unwrap();
            let loaded = handle.blocking_load().map(|doc| encode(&doc));
            // The same bytes, read twice: the same verdict.
            assert_eq!(checked.is_ok(), loaded.is_ok(), "{checked:?} / {loaded:?}");
            if let Ok(encoded) = loaded {
                assert_eq!(decode(&encoded).map(|d| encode(&d)).ok(), Some(encoded));
            }
        },
    );
    assert!(runs > 0);
}

/// Postcard payloads, as a blob from another process or another version of
/// a program hands them to the codec. A value decoded once survives
/// another round trip unchanged.
#[test]
fn postcard_payload() {
    let seeds: Vec<Vec<u8>> = docs().iter().map(encode).collect();
    let runs = fuzz::run("cache-postcard", &seeds, |bytes| {
        let Ok(doc) = decode(bytes) else {
            return;
        };
        let again = encode(&doc);
        let back = decode(&again).unwrap();
        // NaN is not equal to itself: compare what they encode to.
        assert_eq!(encode(&back), again);
        assert_eq!(
            Codec::<Doc>::decode_owned(&Postcard, bytes.to_vec())
                .map(|d| encode(&d))
                .ok(),
            Some(again)
        );
        assert_eq!(Raw.decode(bytes).unwrap(), bytes);
    });
    assert!(runs > 0);
}
