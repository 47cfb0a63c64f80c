//! A producer's side of a stream with no I/O: the ring, one cursor per
//! consumer, and what to send each one next.
//!
//! The network side admits consumers, publishes items (each encoded once
//! as the delivery every consumer is sent), records each consumer's
//! acknowledgements, and asks [`Outlet::pump`] what to send a consumer
//! now. A consumer is sent at most its window of items beyond what it has
//! acknowledged, so one that never reads costs the producer the shared
//! ring plus its window.

use super::encoded::Encoded;
use super::ring::{Missed, Position, Resume, Ring};
use crate::peer::PeerInfo;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use statemesh_core::pattern::any_matches;
use std::collections::{BTreeMap, VecDeque};

/// What a producer sends a consumer, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// The first push of a subscription: the producer's epoch and the
    /// number of the first item the consumer will get.
    Opened {
        /// The producer's run.
        epoch: u64,
        /// The next item's number.
        next: u64,
        /// Items it sends ahead of the consumer's acknowledgements: the
        /// consumer acknowledges at least every half window.
        window: u32,
    },
    /// Item `seq` of the producer's epoch.
    Item {
        /// Its number.
        seq: u64,
        /// The encoded item, shared by every consumer it goes to.
        payload: Bytes,
    },
    /// Items before `next` that the consumer will never get.
    Lagged {
        /// How many.
        missed: Missed,
        /// The number of the next item it will get.
        next: u64,
    },
    /// Items before `next` were skipped by the consumer's filter: its
    /// position moves on, so a later resume does not count them as lost.
    Progress {
        /// The number of the next item it may get.
        next: u64,
    },
    /// Several deliveries in one push, in order, each the encoding of a
    /// delivery of another variant: a consumer owed more than one at a
    /// time gets them together, which costs one frame instead of many.
    Batch(Vec<Bytes>),
}

/// What a producer does with a consumer the ring has left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LagPolicy {
    /// Drop it (it may reconnect, and will hear what it missed).
    #[default]
    Disconnect,
    /// Skip it forward to the oldest item still buffered, telling it how
    /// many it missed.
    DropOldest,
}

/// A producer's refusal to admit a consumer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Refusal {
    /// It already sends to its maximum number of consumers.
    #[error("the producer already has its maximum of {0} consumers")]
    Full(usize),
    /// Its requirement on consumers does not hold for this one.
    #[error("the producer does not accept this consumer (its requirement is not met)")]
    NotAccepted,
}

/// One consumer's place in the stream.
#[derive(Debug)]
struct Cursor {
    peer: PeerInfo,
    /// The next item it is owed.
    next: u64,
    /// Key patterns it wants (empty: everything).
    filter: Vec<String>,
    /// Items sent to it, and items it said it has taken: the difference
    /// is what is in flight, at most the window.
    sent: u64,
    taken: u64,
    /// The size of each item in flight, oldest first, and their sum.
    in_flight: VecDeque<u32>,
    in_flight_bytes: usize,
    /// A loss to tell it before anything else.
    lagged: Option<Missed>,
    /// Whether items were skipped by its filter since its last delivery.
    skipped: bool,
    /// The subscription's first push, until it is sent.
    opened: Option<Bytes>,
    /// The producer stopped waiting for it (see [`Outlet::room_for`])
    /// and will not wait again until it has caught up.
    late: bool,
}

/// A consumer the ring has left behind, under [`LagPolicy::Disconnect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagging {
    /// Items dropped from the ring before it was sent them.
    pub missed: u64,
}

/// The producer's side of one stream.
#[derive(Debug)]
pub struct Outlet {
    ring: Ring,
    /// Items before this number may be sent (a producer that keeps its
    /// ring on disk sends an item only once it is written there).
    sendable: u64,
    /// Whether items become sendable only through [`Outlet::written`].
    gated: bool,
    consumers: BTreeMap<u64, Cursor>,
    window: Window,
    max_consumers: usize,
    policy: LagPolicy,
}

/// How far ahead of a consumer's acknowledgements a producer sends: at
/// most this many items, and (beyond the first) this many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Items.
    pub items: u32,
    /// Bytes of encoded items.
    pub bytes: usize,
}

impl Default for Window {
    /// 1,024 items or 2 MiB. A window is what keeps a fast stream moving
    /// while acknowledgements travel back: 256 items held 64-byte items
    /// to 1.7M/s on one connection here, and 1,024 let them pass 2.7M/s.
    /// The bytes cap what a consumer that stops reading holds of the
    /// producer's memory beyond the shared ring.
    fn default() -> Self {
        Self {
            items: 1024,
            bytes: 2 << 20,
        }
    }
}

impl Outlet {
    /// A stream over `ring`, sending each consumer at most its `window`
    /// ahead of what it has taken, to at most `max_consumers`.
    #[must_use]
    pub fn new(ring: Ring, window: Window, max_consumers: usize, policy: LagPolicy) -> Self {
        Self {
            sendable: ring.next_seq(),
            gated: false,
            ring,
            consumers: BTreeMap::new(),
            window: Window {
                items: window.items.max(1),
                bytes: window.bytes,
            },
            max_consumers,
            policy,
        }
    }

    /// The ring.
    #[must_use]
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Sends items only once [`Outlet::written`] says they are (a producer
    /// whose ring is on disk, so that a consumer never holds an item the
    /// producer could forget in a crash and number again).
    #[must_use]
    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }

    /// Items before `upto` are written: they may be sent.
    pub fn written(&mut self, upto: u64) {
        self.sendable = self.sendable.max(upto.min(self.ring.next_seq()));
    }

    /// Admits consumer `id` (`peer`), resuming from `from`, wanting only
    /// items whose key matches one of `filter` (empty: all).
    ///
    /// # Errors
    ///
    /// [`Refusal::Full`] at the maximum number of consumers.
    pub fn admit(
        &mut self,
        id: u64,
        peer: PeerInfo,
        from: Option<Position>,
        filter: Vec<String>,
    ) -> Result<Resume, Refusal> {
        if !self.consumers.contains_key(&id) && self.consumers.len() >= self.max_consumers {
            return Err(Refusal::Full(self.max_consumers));
        }
        let resume = self.ring.resume(from);
        let opened = encode(&Delivery::Opened {
            epoch: self.ring.epoch(),
            next: resume.from,
            window: self.window.items,
        });
        self.consumers.insert(
            id,
            Cursor {
                peer,
                next: resume.from,
                filter,
                sent: 0,
                taken: 0,
                in_flight: VecDeque::new(),
                in_flight_bytes: 0,
                lagged: resume.missed,
                skipped: false,
                opened: Some(opened),
                late: false,
            },
        );
        Ok(resume)
    }

    /// Drops consumer `id`.
    pub fn remove(&mut self, id: u64) {
        self.consumers.remove(&id);
    }

    /// The accepted consumers' entries.
    pub fn consumers(&self) -> impl Iterator<Item = &PeerInfo> {
        self.consumers.values().map(|c| &c.peer)
    }

    /// How many consumers it sends to.
    #[must_use]
    pub fn len(&self) -> usize {
        self.consumers.len()
    }

    /// Whether it sends to nobody.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }

    /// Whether an item of `len` bytes can be buffered without dropping
    /// one that a consumer has not been sent (consumers the producer has
    /// given up waiting for do not count).
    #[must_use]
    pub fn room_for(&self, len: usize) -> bool {
        let Some(last) = self.ring.would_drop_through(len + DELIVERY_OVERHEAD) else {
            return true;
        };
        self.consumers.values().all(|c| c.late || c.next > last)
    }

    /// Stops waiting for the consumers that leave no room for an item of
    /// `len` bytes: the producer goes on without them (they are then
    /// disconnected or skipped forward, by the lag policy) until they
    /// catch up.
    pub fn give_up_waiting(&mut self, len: usize) {
        if let Some(last) = self.ring.would_drop_through(len + DELIVERY_OVERHEAD) {
            for c in self.consumers.values_mut() {
                if c.next <= last {
                    c.late = true;
                }
            }
        }
    }

    /// Buffers an item (its encoded value), encoded once as the delivery
    /// every consumer is sent; returns its number.
    pub fn publish(&mut self, key: Option<String>, item: Encoded) -> u64 {
        let seq = self.ring.next_seq();
        let seq = self.ring.push(key, item.into_delivery(seq));
        if !self.gated {
            self.sendable = seq + 1;
        }
        seq
    }

    /// Whether every consumer has been sent, and has taken, every item
    /// that may be sent.
    #[must_use]
    pub fn drained(&self) -> bool {
        self.consumers
            .values()
            .all(|c| c.next >= self.sendable && c.taken == c.sent && c.lagged.is_none())
    }

    /// Consumer `id` has taken `total` items since it was admitted (a
    /// running count, so a repeated or reordered acknowledgement is
    /// harmless).
    pub fn acknowledge(&mut self, id: u64, total: u64) {
        if let Some(c) = self.consumers.get_mut(&id) {
            let taken = c.taken.max(total.min(c.sent));
            for _ in c.taken..taken {
                let len = c.in_flight.pop_front().unwrap_or_default();
                c.in_flight_bytes -= len as usize;
            }
            c.taken = taken;
        }
    }

    /// What to send consumer `id` now, encoded, in order: any loss to
    /// report, then the items it is owed, as far as its window goes.
    ///
    /// # Errors
    ///
    /// [`Lagging`]: the ring dropped items it had not been sent, and the
    /// policy is to disconnect it; it has been removed.
    pub fn pump(&mut self, id: u64) -> Result<Vec<Bytes>, Lagging> {
        let mut out = Vec::new();
        let Some(c) = self.consumers.get_mut(&id) else {
            return Ok(out);
        };
        let next_seq = self.sendable;
        if let Some(behind) = self.ring.behind(c.next) {
            if self.policy == LagPolicy::Disconnect {
                self.consumers.remove(&id);
                return Err(Lagging { missed: behind });
            }
            c.lagged = Some(match c.lagged {
                Some(Missed::Exactly(before)) => Missed::Exactly(before + behind),
                Some(Missed::Unknown) => Missed::Unknown,
                None => Missed::Exactly(behind),
            });
            c.next = self.ring.first_seq();
        }
        out.extend(c.opened.take());
        if let Some(missed) = c.lagged.take() {
            out.push(encode(&Delivery::Lagged {
                missed,
                next: c.next,
            }));
        }
        let window = u64::from(self.window.items);
        while c.sent - c.taken < window
            && (c.in_flight_bytes < self.window.bytes || c.in_flight.is_empty())
            && c.next < next_seq
        {
            let Some(item) = self.ring.get(c.next) else {
                break;
            };
            c.next += 1;
            let wanted = c.filter.is_empty()
                || item
                    .key
                    .as_deref()
                    .is_some_and(|k| any_matches(&c.filter, k));
            if wanted {
                let len = u32::try_from(item.payload.len()).unwrap_or(u32::MAX);
                c.sent += 1;
                c.in_flight.push_back(len);
                c.in_flight_bytes += len as usize;
                c.skipped = false;
                out.push(item.payload.clone());
            } else {
                c.skipped = true;
            }
        }
        if c.next == next_seq {
            c.late = false;
        }
        if c.skipped && c.next == next_seq {
            c.skipped = false;
            out.push(encode(&Delivery::Progress { next: c.next }));
        }
        Ok(out)
    }
}

/// What a delivery adds to an item's encoded value, at most: its variant,
/// sequence number and length prefix.
const DELIVERY_OVERHEAD: usize = 1 + 10 + 10;

fn encode(delivery: &Delivery) -> Bytes {
    // Numbers and bytes always encode.
    Bytes::from(postcard::to_allocvec(delivery).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::peer::{PeerId, Role, Tags};
    use crate::stream::RingLimits;

    fn peer(n: u128) -> PeerInfo {
        PeerInfo {
            id: PeerId::from(n),
            address: String::new(),
            tags: Tags::new(),
            streams: Vec::new(),
            role: Role::Process,
            revision: 0,
        }
    }

    fn outlet(items: usize, window: u32, policy: LagPolicy) -> Outlet {
        let ring = Ring::new(
            5,
            RingLimits {
                items,
                bytes: 1 << 20,
            },
        );
        Outlet::new(
            ring,
            Window {
                items: window,
                bytes: usize::MAX,
            },
            2,
            policy,
        )
    }

    fn publish(o: &mut Outlet, key: &str) -> u64 {
        o.publish(Some(key.to_owned()), Encoded::from_value(key.as_bytes()))
    }

    fn decode(sent: &[Bytes]) -> Vec<Delivery> {
        sent.iter()
            .map(|b| postcard::from_bytes(b).unwrap())
            .collect()
    }

    fn seqs(sent: &[Bytes]) -> Vec<u64> {
        decode(sent)
            .into_iter()
            .filter_map(|d| match d {
                Delivery::Item { seq, .. } => Some(seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_consumer_gets_its_window_then_waits_for_acknowledgements() {
        let mut o = outlet(100, 2, LagPolicy::Disconnect);
        o.admit(1, peer(1), None, vec![]).unwrap();
        for k in ["a", "b", "c"] {
            publish(&mut o, k);
        }
        let sent = o.pump(1).unwrap();
        assert_eq!(seqs(&sent), [0, 1]);
        assert_eq!(
            decode(&sent)[0],
            Delivery::Opened {
                epoch: 5,
                next: 0,
                window: 2
            }
        );
        assert_eq!(
            decode(&sent)[1],
            Delivery::Item {
                seq: 0,
                payload: Bytes::from_static(b"a")
            }
        );
        assert!(o.pump(1).unwrap().is_empty());
        o.acknowledge(1, 1);
        assert_eq!(seqs(&o.pump(1).unwrap()), [2]);
        // A consumer that claims more than it was sent gains nothing.
        o.acknowledge(1, 99);
        publish(&mut o, "d");
        publish(&mut o, "e");
        publish(&mut o, "f");
        assert_eq!(seqs(&o.pump(1).unwrap()), [3, 4]);
    }

    #[test]
    fn the_window_also_caps_the_bytes_in_flight_but_lets_one_item_through() {
        let ring = Ring::new(5, RingLimits::default());
        let window = Window {
            items: 100,
            bytes: 1000,
        };
        let mut o = Outlet::new(ring, window, 1, LagPolicy::Disconnect);
        o.admit(1, peer(1), None, vec![]).unwrap();
        for _ in 0..3 {
            o.publish(None, Encoded::from_value(&[7; 400]));
        }
        o.publish(None, Encoded::from_value(&[7; 5000]));
        // Each delivery is the 400 bytes and 4 of its own.
        assert_eq!(seqs(&o.pump(1).unwrap()), [0, 1, 2]);
        assert!(o.pump(1).unwrap().is_empty());
        o.acknowledge(1, 3);
        assert_eq!(seqs(&o.pump(1).unwrap()), [3], "larger than the window");
        o.publish(None, Encoded::from_value(&[7; 10]));
        assert!(o.pump(1).unwrap().is_empty());
        o.acknowledge(1, 4);
        assert_eq!(seqs(&o.pump(1).unwrap()), [4]);
    }

    #[test]
    fn at_most_max_consumers() {
        let mut o = outlet(10, 2, LagPolicy::Disconnect);
        o.admit(1, peer(1), None, vec![]).unwrap();
        o.admit(2, peer(2), None, vec![]).unwrap();
        assert_eq!(o.admit(3, peer(3), None, vec![]), Err(Refusal::Full(2)));
        // Re-admitting one already there (a resume) is not a new one.
        assert!(o.admit(2, peer(2), None, vec![]).is_ok());
    }

    #[test]
    fn a_filter_keeps_items_off_the_wire_and_moves_the_position_on() {
        let mut o = outlet(100, 10, LagPolicy::Disconnect);
        o.admit(1, peer(1), None, vec!["eu/*".into()]).unwrap();
        for k in ["eu/a", "us/b", "eu/c", "us/d"] {
            publish(&mut o, k);
        }
        let sent = o.pump(1).unwrap();
        assert_eq!(seqs(&sent), [0, 2]);
        assert_eq!(decode(&sent).last(), Some(&Delivery::Progress { next: 4 }));
    }

    #[test]
    fn a_lagging_consumer_is_dropped_or_skipped_per_policy() {
        for policy in [LagPolicy::Disconnect, LagPolicy::DropOldest] {
            let mut o = outlet(3, 1, policy);
            o.admit(1, peer(1), None, vec![]).unwrap();
            for k in ["a", "b", "c", "d", "e", "f"] {
                publish(&mut o, k);
            }
            let pumped = o.pump(1);
            match policy {
                LagPolicy::Disconnect => {
                    assert_eq!(pumped, Err(Lagging { missed: 3 }));
                    assert!(o.is_empty());
                }
                LagPolicy::DropOldest => {
                    let sent = pumped.unwrap();
                    let lagged = Delivery::Lagged {
                        missed: Missed::Exactly(3),
                        next: 3,
                    };
                    assert_eq!(decode(&sent).get(1), Some(&lagged));
                    assert_eq!(seqs(&sent), [3]);
                }
            }
        }
    }

    #[test]
    fn a_resume_beyond_the_ring_is_told_first() {
        let mut o = outlet(2, 10, LagPolicy::Disconnect);
        for k in ["a", "b", "c", "d"] {
            publish(&mut o, k);
        }
        o.admit(1, peer(1), Some(Position { epoch: 5, seq: 1 }), vec![])
            .unwrap();
        let sent = o.pump(1).unwrap();
        let lagged = Delivery::Lagged {
            missed: Missed::Exactly(1),
            next: 2,
        };
        assert_eq!(decode(&sent).get(1), Some(&lagged));
        assert_eq!(seqs(&sent), [2, 3]);
    }
}

#[cfg(test)]
mod gate_tests {
    use super::*;
    use crate::peer::{PeerId, Role, Tags};
    use crate::stream::RingLimits;

    #[test]
    fn a_gated_outlet_sends_only_what_is_written() {
        let ring = Ring::new(1, RingLimits::default());
        let mut o = Outlet::new(ring, Window::default(), 1, LagPolicy::Disconnect).gated();
        let peer = PeerInfo {
            id: PeerId::from(1),
            address: String::new(),
            tags: Tags::new(),
            streams: Vec::new(),
            role: Role::Process,
            revision: 0,
        };
        o.admit(7, peer, None, vec![]).unwrap();
        for v in [b"a", b"b", b"c"] {
            o.publish(None, Encoded::from_value(v));
        }
        assert_eq!(o.pump(7).unwrap().len(), 1, "only the opening");
        o.written(2);
        assert_eq!(o.pump(7).unwrap().len(), 2);
        o.written(99);
        assert_eq!(o.pump(7).unwrap().len(), 1);
    }
}
