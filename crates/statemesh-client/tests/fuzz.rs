//! Fuzz targets, one per decoder that reads bytes this side did not write:
//! frames as read from a socket, the handshake both ways, the messages a
//! node's server decodes from a client (a call, a subscription) and those a
//! client decodes from a node (a reply, a push), and a mirror's file.
//!
//! Each hands edited copies of valid encodings, made by the crate's own
//! encoders, to the decoder for `STATEMESH_FUZZ_SECS` seconds (default 1;
//! see `statemesh_test_support::fuzz`). Each input must give `Ok` or a typed
//! error, never a panic, and what it accepts must survive another round
//! trip. A failure prints the input: keep it in the regression tests at the
//! end of this file.

use imbl::{OrdMap, Vector};
use serde::Serialize;
use serde::de::DeserializeOwned;
use statemesh_client::fuzzing::{self, DecodedPush, FrameError, Kind};
use statemesh_client::network::handshake::{Hello, Peer, Welcome};
use statemesh_client::protocol::{
    ClientReply, ClientRequest, ClusterStatus, OpenMode, Push, Response, Resync,
};
use statemesh_client::{CollectionInfo, GroupStatus, Member, MemberRole, Refusal, Role};
use statemesh_core::collections::{MapChange, MapState, VecCommand, VecState};
use statemesh_core::session::Stamp;
use statemesh_core::{ClusterId, Identity};
use statemesh_test_support::fuzz;
use std::collections::BTreeMap;
use std::time::Duration;

/// Small, so that edited lengths are refused by the cap as often as they
/// are read, and nothing a frame announces can make a reader allocate much.
const MAX_FRAME: usize = 4096;
const STALL: Duration = Duration::from_millis(100);

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap()
}

/// `decode(encode(value))` encodes as `value` does: what a decoder accepts
/// is a value of the type, not a half-built one.
fn round_trips<T: Serialize + DeserializeOwned>(value: &T) {
    let once = encode(value);
    let back: T = postcard::from_bytes(&once).expect("a value decoded once decodes again");
    assert_eq!(encode(&back), once);
}

fn requests() -> Vec<ClientRequest> {
    let identity = Identity::new("orders", "Map<String,u64>", b"");
    vec![
        ClientRequest::Status,
        ClientRequest::Collections,
        ClientRequest::Join {
            id: 4,
            member: Member {
                address: "10.0.0.4:7401".into(),
                role: MemberRole::Voter,
            },
        },
        ClientRequest::Leave { id: 2 },
        ClientRequest::Open {
            collection: "orders".into(),
            signature: "Map<String,u64>".into(),
            identity,
            mode: OpenMode::OrCreate,
        },
        ClientRequest::Drop {
            collection: "old".into(),
        },
        ClientRequest::Execute {
            collection: "orders".into(),
            signature: "Map<String,u64>".into(),
            command: vec![0, 3, b'k', b'e', b'y', 7],
            stamp: Stamp {
                session: u128::MAX / 3,
                seq: 12,
                acked: 10,
                age_ms: 250,
            },
        },
        ClientRequest::Query {
            collection: "orders".into(),
            signature: "Map<String,u64>".into(),
            linearizable: true,
            query: vec![1, 2, 3],
        },
        ClientRequest::WaitVersion {
            collection: "orders".into(),
            after: 1 << 40,
            timeout_ms: 5000,
        },
        ClientRequest::Snapshot {
            collection: "orders".into(),
        },
        ClientRequest::Subscribe {
            collection: "orders".into(),
            signature: "Map<String,u64>".into(),
            identity,
            from: 99,
        },
    ]
}

fn responses() -> Vec<Response> {
    let status = ClusterStatus {
        node: 1,
        members: BTreeMap::from([(
            1,
            Member {
                address: "a:1".into(),
                role: MemberRole::Voter,
            },
        )]),
        groups: vec![(
            "_cluster".into(),
            GroupStatus {
                node: 1,
                role: Role::Leader,
                term: 3,
                leader: Some(1),
                last_log_index: 40,
                applied: 40,
                snapshot: Some(32),
                purged: None,
                voters: [1, 2, 3].into(),
                learners: [4].into(),
                no_quorum: Some((1, 3)),
            },
        )],
        last_contact_ms: BTreeMap::from([(1, 0), (2, 250)]),
        mirrors: BTreeMap::from([("orders".into(), 2)]),
        unhosted: BTreeMap::from([("broken".into(), "damaged".into())]),
    };
    vec![
        Ok(ClientReply::Done),
        Ok(ClientReply::Status(status)),
        Ok(ClientReply::Executed {
            reply: vec![0, 1, 7],
            version: 41,
            leader: Some("b:2".into()),
        }),
        Ok(ClientReply::Answered {
            answer: vec![9; 20],
            version: 41,
        }),
        Ok(ClientReply::Version(u64::MAX)),
        Ok(ClientReply::Opened { created: true }),
        Ok(ClientReply::Collections(vec![CollectionInfo {
            name: "orders".into(),
            signature: "Map<String,u64>".into(),
            version: Some(41),
            entries: Some(3),
            disk_bytes: 4096,
            leader: Some(2),
        }])),
        Err(Refusal::Forbidden {
            collection: "orders".into(),
            access: "write".into(),
        }),
        Err(Refusal::NoQuorum {
            reachable: 1,
            voters: 3,
        }),
        Err(Refusal::Timeout {
            maybe_applied: true,
        }),
        Err(Refusal::Mismatch {
            collection: "orders".into(),
            ours: "Map<String,u64>".into(),
            theirs: "Vec<u64>".into(),
        }),
        Err(Refusal::NoSuchMember(7)),
    ]
}

/// Frame streams as connections write them: a handshake, then requests,
/// replies and pushes, one to a stream or several back to back.
fn frame_seeds() -> Vec<Vec<u8>> {
    let hello = fuzzing::encode_handshake(&Hello {
        cluster: "prod".into(),
        peer: Peer::Client {
            token: "a.b.c".into(),
        },
    });
    let call = fuzzing::encode_call(2000, &requests()[6]);
    let reply = encode(&responses()[2]);
    let push = encode(&Push::Diff {
        from: 3,
        to: 4,
        parts: vec![serde_bytes::Bytes::new(&[1, 0, 1, b'k', 2])],
    });
    let single = [
        fuzzing::encode_frame(0, Kind::Handshake, &hello),
        fuzzing::encode_frame(1, Kind::Request, &call),
        fuzzing::encode_frame(1, Kind::Reply, &reply),
        fuzzing::encode_frame(u64::MAX, Kind::Push, &push),
        fuzzing::encode_frame(9, Kind::Ack, &7u64.to_le_bytes()),
        fuzzing::encode_frame(9, Kind::Cancel, &[]),
        fuzzing::encode_frame(2, Kind::Reply, &[0xEE; 1000]),
    ];
    let mut seeds = single.to_vec();
    seeds.push(single.concat());
    seeds.push([&single[1][..], &single[2], &single[3], &single[3]].concat());
    seeds
}

#[test]
fn fuzz_frames() {
    // One runtime for the whole run: the readers time out with tokio's
    // clock, and a runtime per input would cost more than the read.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let runs = fuzz::run_resealed(
        "client-frames",
        &frame_seeds(),
        |bytes| fuzzing::reseal_frames(bytes),
        |bytes| {
            let (exact, chunked) = runtime.block_on(fuzzing::read_frames(bytes, MAX_FRAME, STALL));
            // Both readers cut the same frames and stop for the same reason.
            assert_eq!(format!("{exact:?}"), format!("{chunked:?}"));
            // What was read is what was there: the frames re-encoded are
            // the input's first bytes.
            let mut again = Vec::new();
            for f in &exact.frames {
                assert!(f.payload.len() <= MAX_FRAME);
                again.extend(fuzzing::encode_frame(f.id, f.kind, &f.payload));
            }
            assert_eq!(again[..], bytes[..again.len()]);
            // A clean end only at the end, and never a stall: the bytes are
            // all there.
            match exact.end {
                FrameError::Closed => assert_eq!(again.len(), bytes.len()),
                FrameError::Stalled(_) | FrameError::Io(_) => panic!("{:?}", exact.end),
                _ => {}
            }
        },
    );
    assert!(runs > 0);
}

#[test]
fn fuzz_hello() {
    let cluster_id: ClusterId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    let seeds: Vec<Vec<u8>> = [
        Hello {
            cluster: "prod".into(),
            peer: Peer::Client {
                token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
            },
        },
        Hello {
            cluster: "prod".into(),
            peer: Peer::Node {
                id: 3,
                secret: vec![0x5A; 32],
                cluster_id: Some(cluster_id),
            },
        },
        Hello {
            cluster: String::new(),
            peer: Peer::Node {
                id: u64::MAX,
                secret: Vec::new(),
                cluster_id: None,
            },
        },
        Hello {
            cluster: "prod".into(),
            peer: Peer::Mesh {
                pass: vec![0xA5; 120],
            },
        },
    ]
    .iter()
    .map(fuzzing::encode_handshake)
    .collect();
    let runs = fuzz::run("client-hello", &seeds, |bytes| {
        if let Ok(hello) = fuzzing::decode_hello(bytes) {
            round_trips(&hello);
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_welcome() {
    let cluster_id: ClusterId = "fedcba9876543210fedcba9876543210".parse().unwrap();
    let seeds: Vec<Vec<u8>> = [
        Welcome::Accepted {
            node: 2,
            cluster_id: Some(cluster_id),
        },
        Welcome::Accepted {
            node: 1,
            cluster_id: None,
        },
        Welcome::Refused("the token does not match".into()),
        Welcome::NotReady("starting".into()),
        Welcome::Expired { ago_ms: 61_000 },
        Welcome::Mesh {
            pass: vec![0x5A; 120],
        },
    ]
    .iter()
    .map(fuzzing::encode_handshake)
    .collect();
    let runs = fuzz::run("client-welcome", &seeds, |bytes| {
        if let Ok(welcome) = fuzzing::decode_welcome(bytes) {
            round_trips(&welcome);
        }
    });
    assert!(runs > 0);
}

/// Request frames as the server reads them: every request as a call (the
/// time left, then the request), and the subscription as a subscribe
/// frame's payload.
#[test]
fn fuzz_call() {
    let mut seeds: Vec<Vec<u8>> = requests()
        .iter()
        .zip([0, 1, 2000, u64::MAX])
        .map(|(r, timeout)| fuzzing::encode_call(timeout, r))
        .collect();
    seeds.extend(requests().iter().map(|r| fuzzing::encode_call(300_000, r)));
    let runs = fuzz::run("client-call", &seeds, |bytes| {
        if let Ok(call) = fuzzing::decode_call(bytes) {
            let _ = call.request.changes();
            round_trips(&call);
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_subscription() {
    let seeds: Vec<Vec<u8>> = requests().iter().map(encode).collect();
    let runs = fuzz::run("client-subscription", &seeds, |bytes| {
        if let Ok(request) = fuzzing::decode_subscription(bytes) {
            round_trips(&request);
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_response() {
    let seeds: Vec<Vec<u8>> = responses().iter().map(encode).collect();
    let runs = fuzz::run("client-response", &seeds, |bytes| {
        if let Ok(response) = fuzzing::decode_response(bytes) {
            round_trips(&response);
        }
    });
    assert!(runs > 0);
}

type Orders = MapState<String, u64>;
type Log = VecState<String>;

/// Pushes as a node encodes them, for a map and for a vector: whole
/// states, diffs of several parts, and the empty diff that says a copy is
/// current. The first byte says which collection.
fn push_seeds() -> Vec<Vec<u8>> {
    let map: OrdMap<String, u64> = (0..20u64).map(|i| (format!("key {i}"), i * 1000)).collect();
    let vector: Vector<String> = (0..5).map(|i| "x".repeat(i)).collect();
    let map_parts = [
        encode(&vec![
            MapChange::Put("a".to_owned(), 1u64),
            MapChange::Remove("b".to_owned()),
        ]),
        encode(&vec![MapChange::<String, u64>::Clear]),
    ];
    let vec_parts = [encode(&vec![
        VecCommand::PushBack("tail".to_owned()),
        VecCommand::PopFront,
        VecCommand::Insert(0, "head".to_owned()),
    ])];
    let bytes = |parts: &[Vec<u8>]| -> Vec<Vec<u8>> { parts.to_vec() };
    let diff = |from, to, parts: &[Vec<u8>]| {
        encode(&Push::Diff {
            from,
            to,
            parts: parts.iter().map(|p| serde_bytes::Bytes::new(p)).collect(),
        })
    };
    let full = |state: &[u8], reason| {
        encode(&Push::Full {
            version: 77,
            reason,
            state: serde_bytes::Bytes::new(state),
        })
    };
    let tagged = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    vec![
        tagged(0, full(&encode(&map), Resync::Behind)),
        tagged(0, diff(4, 6, &bytes(&map_parts))),
        tagged(0, diff(6, 6, &[])),
        tagged(1, full(&encode(&vector), Resync::TooSlow)),
        tagged(1, diff(1, 2, &bytes(&vec_parts))),
    ]
}

fn decode_push(bytes: &[u8]) {
    let Some((tag, push)) = bytes.split_first() else {
        return;
    };
    if tag & 1 == 0 {
        match fuzzing::decode_push::<Orders>(push) {
            Ok(DecodedPush::Full { state, .. }) => round_trips(&state),
            Ok(DecodedPush::Diff { changes, .. }) => round_trips(&changes),
            Err(_) => {}
        }
    } else {
        match fuzzing::decode_push::<Log>(push) {
            Ok(DecodedPush::Full { state, .. }) => round_trips(&state),
            Ok(DecodedPush::Diff { changes, .. }) => round_trips(&changes),
            Err(_) => {}
        }
    }
}

#[test]
fn fuzz_push() {
    let runs = fuzz::run("client-push", &push_seeds(), decode_push);
    assert!(runs > 0);
}

fn identity() -> Identity {
    Identity::new("orders", "Map<String,u64>", b"")
}

/// Mirror files as a mirror writes them, read back from a temporary
/// directory after the edits.
#[test]
fn fuzz_mirror_file() {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let path = fuzzing::mirror_file_path(dir.path());
    let mut seeds = Vec::new();
    for n in [0u64, 1, 30] {
        let map: OrdMap<String, u64> = (0..n).map(|i| (format!("k{i}"), i << 33)).collect();
        fuzzing::store_mirror_file(dir.path(), identity(), n * 7, &map).unwrap();
        seeds.push(std::fs::read(&path).unwrap());
    }
    let again = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let runs = fuzz::run_resealed(
        "client-mirror-file",
        &seeds,
        |bytes| fuzzing::reseal_mirror_file(bytes),
        |bytes| {
            std::fs::write(&path, bytes).unwrap();
            let loaded = fuzzing::load_mirror_file::<OrdMap<String, u64>>(dir.path(), identity());
            match loaded {
                Ok(Some((version, map))) => {
                    // What a mirror loads, it writes back and loads again.
                    fuzzing::store_mirror_file(again.path(), identity(), version, &map).unwrap();
                    let back = fuzzing::load_mirror_file(again.path(), identity()).unwrap();
                    assert_eq!(back, Some((version, map)));
                }
                Ok(None) => panic!("the file is there"),
                Err(statemesh_client::MirrorFileError::Io { source, .. }) => {
                    panic!("an I/O error on a file that is there: {source}")
                }
                Err(_) => {}
            }
        },
    );
    assert!(runs > 0);
}

/// Found by `fuzz_mirror_file`: a resealed file whose map length says
/// 2^42 entries made the mirror abort on a 5 TB allocation (imbl's maps
/// reserve what postcard announces). It is refused as damaged.
#[test]
fn a_mirror_file_announcing_a_huge_map_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = fuzzing::mirror_file_path(dir.path());
    fuzzing::store_mirror_file(dir.path(), identity(), 7, &OrdMap::<String, u64>::new()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The empty map's length is the last byte: 2^42 as a varint instead.
    bytes.pop();
    let mut n: u64 = 1 << 42;
    while n >= 0x80 {
        bytes.push((n as u8) | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    fuzzing::reseal_mirror_file(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let loaded = fuzzing::load_mirror_file::<OrdMap<String, u64>>(dir.path(), identity());
    assert!(
        matches!(
            loaded,
            Err(statemesh_client::MirrorFileError::Corrupt { .. })
        ),
        "{loaded:?}"
    );
}

/// A collection published to shared memory, as a reader in another process
/// finds it: the archive validated, its entries checked and looked up, each
/// key and value decoded. There is no checksum: bytecheck and the entry
/// checks are all that stand between a damaged region and a reader.
#[test]
fn fuzz_local_read() {
    type Prices = MapState<String, u64>;
    let mut seeds = Vec::new();
    for n in [0u64, 1, 3, 40] {
        let map: OrdMap<String, u64> = (0..n).map(|i| (format!("k{i}"), i << 29)).collect();
        seeds.push(fuzzing::encode_published::<Prices>(&map, n + 1).unwrap());
    }
    let runs = fuzz::run("client-local-read", &seeds, |bytes| {
        if let Ok((version, entries)) = fuzzing::read_published::<String, u64>(bytes) {
            // What reads cleanly is a state a publisher could have written.
            let map: OrdMap<String, u64> = entries.into_iter().collect();
            let again = fuzzing::encode_published::<Prices>(&map, version).unwrap();
            let (v, back) = fuzzing::read_published::<String, u64>(&again).unwrap();
            assert_eq!(
                (v, back.into_iter().collect::<OrdMap<_, _>>()),
                (version, map)
            );
        }
    });
    assert!(runs > 0);
}
