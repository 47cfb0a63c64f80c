//! A producer's side of a stream with no I/O: the ring, one cursor per
//! consumer, and what to send each one next.
//!
//! The network layer admits consumers, publishes items, credits a
//! consumer when it acknowledges, and calls [`Outlet::pump`], which
//! says what to send to whom and which consumers to drop. A consumer
//! is sent at most its window of items beyond what it acknowledged, so a
//! consumer that never reads holds the producer's memory to the shared
//! ring plus its window.

use super::ring::{Missed, Position, Resume, Ring};
use crate::peer::PeerInfo;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use statemesh_core::pattern::any_matches;
use std::collections::BTreeMap;

/// What a producer sends a consumer, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
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
    /// Items it may still be sent before it acknowledges more.
    credits: u32,
    /// A loss to tell it before anything else.
    lagged: Option<Missed>,
    /// Whether items were skipped by its filter since its last delivery.
    skipped: bool,
}

/// The producer's side of one stream.
#[derive(Debug)]
pub struct Outlet {
    ring: Ring,
    consumers: BTreeMap<u64, Cursor>,
    window: u32,
    max_consumers: usize,
    policy: LagPolicy,
}

/// What one [`Outlet::pump`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Deliveries, in order per consumer.
    pub send: Vec<(u64, Delivery)>,
    /// Consumers dropped for lagging ([`LagPolicy::Disconnect`]), with how
    /// many items they would have missed.
    pub dropped: Vec<(u64, u64)>,
}

impl Outlet {
    /// A stream over `ring`, sending each consumer at most `window` items
    /// ahead of its acknowledgements, to at most `max_consumers`.
    #[must_use]
    pub fn new(ring: Ring, window: u32, max_consumers: usize, policy: LagPolicy) -> Self {
        Self {
            ring,
            consumers: BTreeMap::new(),
            window: window.max(1),
            max_consumers,
            policy,
        }
    }

    /// The ring.
    #[must_use]
    pub fn ring(&self) -> &Ring {
        &self.ring
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
        self.consumers.insert(
            id,
            Cursor {
                peer,
                next: resume.from,
                filter,
                credits: self.window,
                lagged: resume.missed,
                skipped: false,
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

    /// Buffers an item; returns its number.
    pub fn publish(&mut self, key: Option<String>, payload: Bytes) -> u64 {
        self.ring.push(key, payload)
    }

    /// Consumer `id` has taken `items` more items: it may be sent as many
    /// again.
    pub fn credit(&mut self, id: u64, items: u32) {
        if let Some(c) = self.consumers.get_mut(&id) {
            c.credits = c.credits.saturating_add(items).min(self.window);
        }
    }

    /// What to send now: for each consumer, any loss to report, then the
    /// items it is owed, as far as its credits go.
    pub fn pump(&mut self) -> Pumped {
        let mut out = Pumped::default();
        let next_seq = self.ring.next_seq();
        for (&id, c) in &mut self.consumers {
            if let Some(behind) = self.ring.behind(c.next) {
                match self.policy {
                    LagPolicy::Disconnect => {
                        out.dropped.push((id, behind));
                        continue;
                    }
                    LagPolicy::DropOldest => {
                        let missed = match c.lagged {
                            Some(Missed::Exactly(before)) => Missed::Exactly(before + behind),
                            Some(Missed::Unknown) => Missed::Unknown,
                            None => Missed::Exactly(behind),
                        };
                        c.lagged = Some(missed);
                        c.next = self.ring.first_seq();
                    }
                }
            }
            if let Some(missed) = c.lagged.take() {
                out.send.push((
                    id,
                    Delivery::Lagged {
                        missed,
                        next: c.next,
                    },
                ));
            }
            while c.credits > 0 && c.next < next_seq {
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
                    c.credits -= 1;
                    c.skipped = false;
                    out.send.push((
                        id,
                        Delivery::Item {
                            seq: item.seq,
                            payload: item.payload.clone(),
                        },
                    ));
                } else {
                    c.skipped = true;
                }
            }
            if c.skipped && c.next == next_seq {
                c.skipped = false;
                out.send.push((id, Delivery::Progress { next: c.next }));
            }
        }
        for (id, _) in &out.dropped {
            self.consumers.remove(id);
        }
        out
    }
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
        Outlet::new(ring, window, 2, policy)
    }

    fn publish(o: &mut Outlet, key: &str) -> u64 {
        o.publish(Some(key.to_owned()), Bytes::from(key.to_owned()))
    }

    fn seqs(p: &Pumped, id: u64) -> Vec<u64> {
        p.send
            .iter()
            .filter(|(to, _)| *to == id)
            .filter_map(|(_, d)| match d {
                Delivery::Item { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_consumer_gets_its_window_then_waits_for_credit() {
        let mut o = outlet(100, 2, LagPolicy::Disconnect);
        o.admit(1, peer(1), None, vec![]).unwrap();
        for k in ["a", "b", "c"] {
            publish(&mut o, k);
        }
        let p = o.pump();
        assert_eq!(seqs(&p, 1), [0, 1]);
        assert!(o.pump().send.is_empty());
        o.credit(1, 5);
        assert_eq!(seqs(&o.pump(), 1), [2]);
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
        let p = o.pump();
        assert_eq!(seqs(&p, 1), [0, 2]);
        assert_eq!(p.send.last(), Some(&(1, Delivery::Progress { next: 4 })));
    }

    #[test]
    fn a_lagging_consumer_is_dropped_or_skipped_per_policy() {
        for policy in [LagPolicy::Disconnect, LagPolicy::DropOldest] {
            let mut o = outlet(3, 1, policy);
            o.admit(1, peer(1), None, vec![]).unwrap();
            for k in ["a", "b", "c", "d", "e", "f"] {
                publish(&mut o, k);
            }
            let p = o.pump();
            match policy {
                LagPolicy::Disconnect => {
                    assert_eq!(p.dropped, [(1, 3)]);
                    assert!(o.is_empty());
                }
                LagPolicy::DropOldest => {
                    let lagged = Delivery::Lagged {
                        missed: Missed::Exactly(3),
                        next: 3,
                    };
                    assert_eq!(p.send.first(), Some(&(1, lagged)));
                    assert_eq!(seqs(&p, 1), [3]);
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
        let p = o.pump();
        let lagged = Delivery::Lagged {
            missed: Missed::Exactly(1),
            next: 2,
        };
        assert_eq!(p.send.first(), Some(&(1, lagged)));
        assert_eq!(seqs(&p, 1), [2, 3]);
    }
}
