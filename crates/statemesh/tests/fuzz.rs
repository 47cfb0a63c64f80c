//! Fuzz targets, one per decoder that reads bytes another node or an
//! earlier run wrote: the peer messages a node decodes on receipt (a
//! request to one of its groups, with the Raft entries it carries, and the
//! reply to one it sent), and the snapshot stream (a group's own file, and
//! one installed from a leader).
//!
//! Each hands edited copies of valid encodings, made by the crate's own
//! encoders and writer, to the decoder for `STATEMESH_FUZZ_SECS` seconds
//! (default 1; see `statemesh_test_support::fuzz`). Each input must give
//! `Ok` or a typed error, never a panic; what a decoder accepts must decode
//! again to the same value. A failure prints the input: keep it in the
//! regression tests at the end of this file.

use statemesh::fuzzing::{self, SnapshotKind};
use statemesh_test_support::fuzz;

#[test]
fn fuzz_peer_request() {
    let seeds = fuzzing::envelope_seeds();
    assert!(
        seeds
            .iter()
            .all(|s| fuzzing::decode_envelope(s).as_ref() == Ok(s))
    );
    let runs = fuzz::run("peer-request", &seeds, |bytes| {
        if let Ok(again) = fuzzing::decode_envelope(bytes) {
            assert_eq!(fuzzing::decode_envelope(&again), Ok(again));
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_peer_reply() {
    let seeds = fuzzing::reply_seeds();
    assert!(
        seeds
            .iter()
            .all(|s| fuzzing::decode_reply(s).as_ref() == Ok(s))
    );
    let runs = fuzz::run("peer-reply", &seeds, |bytes| {
        if let Ok(again) = fuzzing::decode_reply(bytes) {
            assert_eq!(fuzzing::decode_reply(&again), Ok(again));
        }
    });
    assert!(runs > 0);
}

/// Which kind a seed is: its first byte (even: the group's own file, odd:
/// a stream from another node); the rest is the stream.
fn kind(tag: u8) -> SnapshotKind {
    if tag & 1 == 0 {
        SnapshotKind::Local
    } else {
        SnapshotKind::Received
    }
}

#[test]
fn fuzz_snapshot_file() {
    // On tmpfs where there is one: each input is a file written and read,
    // and received blobs are persisted in the cache.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let snapshots = fuzzing::snapshots(dir.path()).unwrap();
    let states: [&[(&str, &[u8])]; 3] = [
        &[],
        &[("small", b"v"), ("large", &[7; 100])],
        &[
            ("a", &[1; 10]),
            ("b", &[2; 33]),
            ("c", &[3; 300]),
            ("d", b""),
        ],
    ];
    let mut seeds = Vec::new();
    for (tag, kind) in [(0u8, SnapshotKind::Local), (1, SnapshotKind::Received)] {
        for state in states {
            let entries: Vec<(String, Vec<u8>)> = state
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect();
            let stream = snapshots.write(kind, &entries).unwrap();
            // What the writer wrote reads back whole.
            assert_eq!(snapshots.read(kind, &stream), Ok(entries.len()));
            seeds.push([vec![tag], stream].concat());
        }
    }
    let runs = fuzz::run_resealed(
        "snapshot-file",
        &seeds,
        |input| {
            if let Some(stream) = input.get_mut(1..) {
                fuzzing::reseal_snapshot(stream);
            }
        },
        |input| {
            let Some((tag, stream)) = input.split_first() else {
                return;
            };
            if let Err(Err(io)) = snapshots.read(kind(*tag), stream) {
                panic!("an I/O error on a file that is there: {io}");
            }
        },
    );
    assert!(runs > 0);
}
