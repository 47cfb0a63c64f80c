//! Fuzz targets, one per decoder of bytes another peer wrote: a mesh
//! request (gossip or a subscription), a producer's delivery and its end
//! of a subscription, a pass (behind its signature), and the gossip
//! engine fed edited SWIM packets and entries.
//!
//! Each hands edited copies of valid encodings to the decoder for
//! `STATEMESH_FUZZ_SECS` seconds (default 1; see
//! `statemesh_test_support::fuzz`). Each input must give `Ok` or a typed
//! error, never a panic, and what it accepts must survive another round
//! trip.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use statemesh_core::ClusterId;
use statemesh_mesh::gossip::{Gossip, Member, Message, Timing};
use statemesh_mesh::pass::{Pass, PassIssuer};
use statemesh_mesh::peer::{PeerId, PeerInfo, Role, Tags};
use statemesh_mesh::stream::{Delivery, Inlet, Missed, Position, StreamId, TypeMismatch};
use statemesh_mesh::wire::{End, MeshRequest};
use statemesh_test_support::fuzz;
use std::cell::RefCell;
use std::time::{Duration, Instant};

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap()
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    statemesh_core::decode::from_bytes(bytes).ok()
}

/// What a decoder accepted encodes back the same way.
fn round_trips<T: Serialize + DeserializeOwned>(value: &T) {
    let once = encode(value);
    let back: T = postcard::from_bytes(&once).expect("a value decoded once decodes again");
    assert_eq!(encode(&back), once);
}

fn info(n: u8) -> PeerInfo {
    PeerInfo {
        id: PeerId::from_name(&format!("peer-{n}")),
        address: format!("10.0.0.{n}:7000"),
        tags: ["role=validator", "region=eu"]
            .into_iter()
            .collect::<Tags>(),
        streams: vec![
            StreamId::of::<u64>("prices"),
            StreamId::of::<String>("news"),
        ],
        role: if n == 1 { Role::Node(1) } else { Role::Process },
        revision: u64::from(n) * 1000,
    }
}

#[test]
fn fuzz_mesh_request() {
    let seeds: Vec<Vec<u8>> = [
        MeshRequest::Gossip {
            from: Member::new(PeerId::from_name("a"), "10.0.0.1:7000", 17),
            message: Message::Swim(vec![1, 2, 3, 4, 5]),
        },
        MeshRequest::Gossip {
            from: Member::seed("h:1"),
            message: Message::Entry(info(3)),
        },
        MeshRequest::Gossip {
            from: Member::seed("h:1"),
            message: Message::Ask,
        },
        MeshRequest::Consume {
            stream: StreamId::of::<u64>("prices"),
            from: Some(Position {
                epoch: 9,
                seq: 1 << 40,
            }),
            filter: vec!["eu/*".into(), "us/ny".into()],
            consumer: info(2),
        },
        MeshRequest::Consume {
            stream: StreamId::of::<()>(""),
            from: None,
            filter: Vec::new(),
            consumer: info(4),
        },
    ]
    .iter()
    .map(encode)
    .collect();
    let runs = fuzz::run("mesh-request", &seeds, |bytes| {
        if let Some(request) = decode::<MeshRequest>(bytes) {
            round_trips(&request);
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_delivery() {
    let seeds: Vec<Vec<u8>> = [
        Delivery::Opened {
            epoch: u64::MAX,
            next: 12,
            window: 256,
        },
        Delivery::Item {
            seq: 12,
            payload: Bytes::from_static(&[7; 40]),
        },
        Delivery::Lagged {
            missed: Missed::Exactly(300),
            next: 313,
        },
        Delivery::Lagged {
            missed: Missed::Unknown,
            next: 0,
        },
        Delivery::Progress { next: u64::MAX },
        Delivery::Batch(vec![
            Bytes::from(encode(&Delivery::Item {
                seq: 13,
                payload: Bytes::from_static(&[8; 12]),
            })),
            Bytes::from(encode(&Delivery::Progress { next: 20 })),
        ]),
    ]
    .iter()
    .map(encode)
    .collect();
    // A consumer's inlet takes whatever decodes, in any order: its
    // position moves, and it never panics (an item numbered u64::MAX
    // included).
    let inlet = RefCell::new(Inlet::new(8));
    let runs = fuzz::run("mesh-delivery", &seeds, |bytes| {
        if let Some(delivery) = decode::<Delivery>(bytes) {
            round_trips(&delivery);
            let mut inlet = inlet.borrow_mut();
            let _ = inlet.receive(delivery);
            let _ = inlet.ack();
            let _ = inlet.position();
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_end() {
    let seeds: Vec<Vec<u8>> = [
        End::NoSuchStream("prices".into()),
        End::TypeMismatch(TypeMismatch {
            stream: "prices".into(),
            produced: "u64".into(),
            consumed: "alloc::string::String".into(),
        }),
        End::NotPermitted("secret".into()),
        End::Full(1024),
        End::NotAccepted,
        End::Lagging { missed: 77 },
        End::Closed,
    ]
    .iter()
    .map(encode)
    .collect();
    let runs = fuzz::run("mesh-end", &seeds, |bytes| {
        if let Some(end) = decode::<End>(bytes) {
            round_trips(&end);
            let _ = end.to_string();
            let _ = end.retryable();
        }
    });
    assert!(runs > 0);
}

/// Passes, half of them signed again after the edits so that the edits
/// reach the grant's decoder behind the signature.
#[test]
fn fuzz_pass() {
    let cluster: ClusterId = "000000000000000000000000000000aa".parse().unwrap();
    let issuer = PassIssuer::new(b"fuzz", cluster);
    let verifier = issuer.verifier();
    let seeds: Vec<Vec<u8>> = [
        issuer.issue(
            PeerId::from_name("a"),
            Duration::from_secs(3600),
            vec!["*".into()],
            vec!["prices/*".into(), "news".into()],
        ),
        issuer.issue(
            PeerId::from_name("b"),
            Duration::ZERO,
            Vec::new(),
            Vec::new(),
        ),
    ]
    .iter()
    .map(encode)
    .collect();
    let runs = fuzz::run_resealed(
        "mesh-pass",
        &seeds,
        |bytes| {
            if let Some(pass) = decode::<Pass>(bytes) {
                let grant = PassIssuer::grant_bytes(&pass).to_vec();
                *bytes = encode(&issuer.sign_bytes(grant));
            }
        },
        |bytes| {
            if let Some(pass) = decode::<Pass>(bytes) {
                round_trips(&pass);
                if let Ok(grant) = verifier.verify(&pass) {
                    let _ = grant.may_consume("prices/eu");
                    let _ = grant.may_produce("x");
                }
            }
        },
    );
    assert!(runs > 0);
}

/// Delivers what `from` has queued to `to`, keeping each message.
fn exchange(from: &mut Gossip, to: &mut Gossip, at: Instant, seeds: &mut Vec<Vec<u8>>) {
    let sender = from.member().clone();
    for (_, message) in from.take_outgoing() {
        seeds.push(encode(&message));
        let _ = to.receive(&sender, message, at);
    }
}

/// Real SWIM packets and entries, edited, fed to a running engine as if
/// from a peer: it takes them or says why not, and keeps working.
#[test]
fn fuzz_gossip() {
    let now = Instant::now();
    let mut a = Gossip::new(info(1), 1, Timing::default(), 1);
    let mut b = Gossip::new(info(2), 2, Timing::default(), 2);
    b.join(&info(1).address, now).unwrap();
    // Let the two talk a while; keep every message as a seed.
    let mut seeds = Vec::new();
    let mut at = now;
    for _ in 0..40 {
        at += Duration::from_millis(100);
        exchange(&mut a, &mut b, at, &mut seeds);
        exchange(&mut b, &mut a, at, &mut seeds);
        a.tick(at);
        b.tick(at);
    }
    assert_eq!(
        a.catalog().len(),
        1,
        "the seeds come from a working exchange"
    );
    let sender = b.member().clone();
    let engine = RefCell::new((a, at));
    let runs = fuzz::run("mesh-gossip", &seeds, |bytes| {
        if let Some(message) = decode::<Message>(bytes) {
            round_trips(&message);
            let (gossip, at) = &mut *engine.borrow_mut();
            *at += Duration::from_millis(1);
            let _ = gossip.receive(&sender, message, *at);
            gossip.tick(*at);
            let _ = gossip.take_outgoing();
            let _ = gossip.take_events();
        }
    });
    assert!(runs > 0);
}

/// Found by `fuzz_delivery`: an item numbered u64::MAX overflowed the
/// consumer's next position.
#[test]
fn an_item_numbered_u64_max_does_not_overflow_the_position() {
    let mut inlet = Inlet::new(8);
    let item = Delivery::Item {
        seq: u64::MAX,
        payload: Bytes::new(),
    };
    assert!(inlet.receive(item).is_some());
    assert_eq!(inlet.position().map(|p| p.seq), Some(u64::MAX));
}
