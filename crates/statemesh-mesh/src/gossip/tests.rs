//! The engine over a simulated network and clock: peers find each other
//! from one seed, learn each other's entries, and drop a peer that stops.

use super::*;
use crate::peer::{Role, Tags};
use crate::stream::StreamId;
use std::collections::VecDeque;

const LATENCY: Duration = Duration::from_millis(2);
const STEP: Duration = Duration::from_millis(50);

struct Peer {
    gossip: Gossip,
    running: bool,
}

struct Sim {
    seed: u64,
    start: Instant,
    now: Instant,
    peers: BTreeMap<String, Peer>,
    wire: VecDeque<(Instant, Member, String, Message)>,
}

fn entry(n: u8, tags: &[&str]) -> PeerInfo {
    PeerInfo {
        id: PeerId::from_name(&format!("peer-{n}")),
        address: format!("10.0.0.{n}:7000"),
        tags: tags.iter().copied().collect::<Tags>(),
        streams: Vec::new(),
        role: Role::Process,
        revision: 0,
    }
}

impl Sim {
    fn new() -> Self {
        Self::seeded(0)
    }

    /// A run whose peers draw their randomness from `seed`.
    fn seeded(seed: u64) -> Self {
        let now = Instant::now();
        Self {
            seed,
            start: now,
            now,
            peers: BTreeMap::new(),
            wire: VecDeque::new(),
        }
    }

    /// Starts peer `n`, joining through the peer at `seed` if given.
    fn start(&mut self, n: u8, tags: &[&str], seed: Option<u8>) -> String {
        let info = entry(n, tags);
        let address = info.address.clone();
        let bump = self.now.duration_since(self.start).as_millis() as u64 + 1;
        let mut gossip = Gossip::new(
            info,
            bump,
            Timing::default(),
            self.seed * 256 + u64::from(n),
        );
        if let Some(seed) = seed {
            gossip
                .join(&format!("10.0.0.{seed}:7000"), self.now)
                .unwrap();
        }
        self.peers.insert(
            address.clone(),
            Peer {
                gossip,
                running: true,
            },
        );
        self.flush();
        address
    }

    fn gossip(&mut self, address: &str) -> &mut Gossip {
        &mut self.peers.get_mut(address).unwrap().gossip
    }

    fn flush(&mut self) {
        for peer in self.peers.values_mut().filter(|p| p.running) {
            let from = peer.gossip.member().clone();
            for (to, message) in peer.gossip.take_outgoing() {
                self.wire
                    .push_back((self.now + LATENCY, from.clone(), to.address, message));
            }
        }
    }

    fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.now += STEP;
            while self.wire.front().is_some_and(|(at, ..)| *at <= self.now) {
                let Some((_, from, to, message)) = self.wire.pop_front() else {
                    break;
                };
                if let Some(peer) = self.peers.get_mut(&to).filter(|p| p.running) {
                    // A stopped sender's messages already in flight still
                    // arrive, as on a real network.
                    let _ = peer.gossip.receive(&from, message, self.now);
                }
                self.flush();
            }
            let now = self.now;
            for peer in self.peers.values_mut().filter(|p| p.running) {
                peer.gossip.tick(now);
            }
            self.flush();
        }
    }

    /// Peer ids each running peer has in its catalog.
    fn views(&self) -> Vec<Vec<PeerId>> {
        self.peers
            .values()
            .filter(|p| p.running)
            .map(|p| p.gossip.catalog().iter().map(|e| e.info.id).collect())
            .collect()
    }
}

#[test]
fn five_peers_find_each_other_from_one_seed() {
    let mut sim = Sim::new();
    sim.start(1, &["role=seed"], None);
    for n in 2..=5 {
        sim.start(n, &["role=validator"], Some(1));
    }
    sim.run(Duration::from_secs(3));
    for view in sim.views() {
        assert_eq!(view.len(), 4, "each peer knows the four others: {view:?}");
    }
    let a = sim.gossip("10.0.0.3:7000");
    assert_eq!(a.catalog().with_tags(&["role=validator"]).count(), 3);
    let seed = a.catalog().get(PeerId::from_name("peer-1")).unwrap();
    assert!(seed.info.tags.contains("role=seed"));
}

#[test]
fn an_update_reaches_everyone() {
    let mut sim = Sim::new();
    sim.start(1, &[], None);
    for n in 2..=4 {
        sim.start(n, &[], Some(1));
    }
    sim.run(Duration::from_secs(2));
    let now = sim.now;
    let g = sim.gossip("10.0.0.2:7000");
    let mut info = g.me().clone();
    info.streams.push(StreamId::of::<u64>("prices"));
    g.update(info, now).unwrap();
    sim.flush();
    sim.run(Duration::from_secs(2));
    for address in ["10.0.0.1:7000", "10.0.0.3:7000", "10.0.0.4:7000"] {
        let producers = sim.gossip(address).catalog().producers_of("prices").count();
        assert_eq!(producers, 1, "{address} learned the new stream");
    }
}

#[test]
fn a_late_joiner_learns_entries_announced_long_before() {
    let mut sim = Sim::new();
    sim.start(1, &["first"], None);
    sim.start(2, &["second"], Some(1));
    sim.run(Duration::from_secs(60));
    sim.start(3, &[], Some(2));
    sim.run(Duration::from_secs(3));
    let late = sim.gossip("10.0.0.3:7000");
    let first = late.catalog().get(PeerId::from_name("peer-1")).unwrap();
    assert!(first.info.tags.contains("first"));
}

#[test]
fn a_stopped_peer_leaves_every_catalog_within_the_detection_bound() {
    let bound = Timing::default().detection_bound();
    for seed in 0..200 {
        let mut sim = Sim::seeded(seed);
        sim.start(1, &[], None);
        for n in 2..=5 {
            sim.start(n, &[], Some(1));
        }
        sim.run(Duration::from_secs(3));
        sim.peers.get_mut("10.0.0.4:7000").unwrap().running = false;
        let stopped = PeerId::from_name("peer-4");
        let mut waited = Duration::ZERO;
        while sim.views().iter().any(|v| v.contains(&stopped)) {
            assert!(
                waited <= bound,
                "seed {seed}: still listed after {waited:?}"
            );
            sim.run(STEP);
            waited += STEP;
        }
        for view in sim.views() {
            assert_eq!(view.len(), 3);
        }
    }
}

#[test]
fn a_peer_that_leaves_is_dropped_at_once() {
    let mut sim = Sim::new();
    sim.start(1, &[], None);
    sim.start(2, &[], Some(1));
    sim.start(3, &[], Some(1));
    sim.run(Duration::from_secs(3));
    let now = sim.now;
    sim.gossip("10.0.0.2:7000").leave(now);
    sim.flush();
    sim.peers.get_mut("10.0.0.2:7000").unwrap().running = false;
    sim.run(Duration::from_millis(500));
    for view in sim.views() {
        assert!(!view.contains(&PeerId::from_name("peer-2")));
    }
}

#[test]
fn a_restarted_peer_comes_back_with_its_new_entry() {
    let mut sim = Sim::new();
    sim.start(1, &[], None);
    sim.start(2, &["old"], Some(1));
    sim.run(Duration::from_secs(3));
    sim.peers.remove("10.0.0.2:7000");
    sim.run(Duration::from_secs(1));
    sim.start(2, &["new"], Some(1));
    sim.run(Duration::from_secs(3));
    let seen = sim.gossip("10.0.0.1:7000");
    let two = seen.catalog().get(PeerId::from_name("peer-2")).unwrap();
    assert!(two.info.tags.contains("new"), "{:?}", two.info.tags);
}
