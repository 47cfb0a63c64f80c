//! A producer's replay buffer: its recent items, numbered, bounded by
//! count and by bytes, shared by every consumer it sends to.
//!
//! Each consumer is a cursor into the ring (the next sequence number it
//! is owed), so a slow or silent consumer costs the producer one number,
//! not a queue of its own: when the ring drops an item a consumer has not
//! been sent, that consumer has lagged, and its policy decides what
//! happens (see [`Ring::behind`]).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Where a consumer is in a producer's numbering: the producer's epoch
/// and the next sequence number it wants.
///
/// A producer draws a new epoch each time it starts, unless it keeps its
/// ring on disk, so a consumer that resumes against a restarted producer
/// knows its numbers mean nothing there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The producer's run.
    pub epoch: u64,
    /// The next sequence number the consumer wants.
    pub seq: u64,
}

/// How many items a consumer missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missed {
    /// Exactly this many: the producer numbered them, and dropped them
    /// from its ring before this consumer was sent them.
    Exactly(u64),
    /// An unknown number: the producer restarted without keeping its ring,
    /// so what it sent before the restart, past what the consumer has,
    /// cannot be counted.
    Unknown,
}

/// What a consumer that asks to resume gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The first sequence number it will be sent.
    pub from: u64,
    /// What it missed before `from`, if anything.
    pub missed: Option<Missed>,
}

/// The ring's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// Items kept at most.
    pub items: usize,
    /// Payload bytes kept at most. The newest item is always kept, even
    /// alone over this (a frame's cap bounds it).
    pub bytes: usize,
}

impl Default for RingLimits {
    fn default() -> Self {
        Self {
            items: 1024,
            bytes: 16 << 20,
        }
    }
}

/// One buffered item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its number in the producer's epoch.
    pub seq: u64,
    /// The key consumers' filters are matched against, if the producer
    /// gives items one.
    pub key: Option<String>,
    /// The encoded item, shared with every send of it.
    pub payload: Bytes,
}

/// The replay buffer of one producer.
#[derive(Debug)]
pub struct Ring {
    epoch: u64,
    next_seq: u64,
    items: VecDeque<Item>,
    bytes: usize,
    limits: RingLimits,
}

impl Ring {
    /// An empty ring in `epoch`, numbering from 0.
    #[must_use]
    pub fn new(epoch: u64, limits: RingLimits) -> Self {
        Self::starting_at(epoch, 0, limits)
    }

    /// An empty ring in `epoch` whose next item is numbered `next_seq`
    /// (a producer that reloads its numbering).
    #[must_use]
    pub fn starting_at(epoch: u64, next_seq: u64, limits: RingLimits) -> Self {
        Self {
            epoch,
            next_seq,
            items: VecDeque::new(),
            bytes: 0,
            limits: RingLimits {
                items: limits.items.max(1),
                bytes: limits.bytes,
            },
        }
    }

    /// The producer's epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The number the next item will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest number still buffered (`next_seq` when empty).
    #[must_use]
    pub fn first_seq(&self) -> u64 {
        self.items.front().map_or(self.next_seq, |i| i.seq)
    }

    /// Items buffered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is buffered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Payload bytes buffered.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Buffers an item and returns its number, dropping the oldest items
    /// past either bound.
    pub fn push(&mut self, key: Option<String>, payload: Bytes) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += payload.len();
        self.items.push_back(Item { seq, key, payload });
        while self.items.len() > self.limits.items
            || (self.bytes > self.limits.bytes && self.items.len() > 1)
        {
            if let Some(old) = self.items.pop_front() {
                self.bytes -= old.payload.len();
            }
        }
        seq
    }

    /// The newest number that buffering an item of `len` bytes would
    /// drop, if it would drop any.
    #[must_use]
    pub fn would_drop_through(&self, len: usize) -> Option<u64> {
        let (mut items, mut bytes) = (self.items.len() + 1, self.bytes + len);
        let mut last = None;
        for old in &self.items {
            if items <= self.limits.items && (bytes <= self.limits.bytes || items <= 1) {
                break;
            }
            items -= 1;
            bytes -= old.payload.len();
            last = Some(old.seq);
        }
        last
    }

    /// The item numbered `seq`, if still buffered.
    #[must_use]
    pub fn get(&self, seq: u64) -> Option<&Item> {
        let index = seq.checked_sub(self.first_seq())?;
        self.items.get(usize::try_from(index).ok()?)
    }

    /// Where a consumer starts. `None` is a consumer new to this producer:
    /// it gets what is produced from now on. A consumer with a position
    /// in this epoch gets everything from its position that is still
    /// buffered, and is told exactly how many it missed if the ring
    /// dropped some. A position of another epoch (the producer restarted
    /// and lost its ring), or one past what this producer numbered (it
    /// restarted and lost the tail it had sent), starts at the oldest item
    /// of this run, with an unknown number missed.
    #[must_use]
    pub fn resume(&self, position: Option<Position>) -> Resume {
        let Some(position) = position else {
            return Resume {
                from: self.next_seq,
                missed: None,
            };
        };
        let first = self.first_seq();
        if position.epoch != self.epoch || position.seq > self.next_seq {
            return Resume {
                from: first,
                missed: Some(Missed::Unknown),
            };
        }
        if position.seq < first {
            return Resume {
                from: first,
                missed: Some(Missed::Exactly(first - position.seq)),
            };
        }
        Resume {
            from: position.seq,
            missed: None,
        }
    }

    /// How far behind the ring a consumer whose next item is `cursor` has
    /// fallen: the number of items dropped before it was sent them, or
    /// `None` if everything it is owed is still buffered.
    #[must_use]
    pub fn behind(&self, cursor: u64) -> Option<u64> {
        let first = self.first_seq();
        (cursor < first).then(|| first - cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(items: usize, bytes: usize) -> Ring {
        Ring::new(7, RingLimits { items, bytes })
    }

    fn push(r: &mut Ring, n: usize) -> u64 {
        r.push(None, Bytes::from(vec![0u8; n]))
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut r = ring(3, 1000);
        for _ in 0..5 {
            push(&mut r, 10);
        }
        assert_eq!(
            (r.first_seq(), r.next_seq(), r.len(), r.bytes()),
            (2, 5, 3, 30)
        );
        assert!(r.get(1).is_none());
        assert_eq!(r.get(4).map(|i| i.seq), Some(4));
        assert!(r.get(5).is_none());

        let mut r = ring(100, 25);
        for _ in 0..4 {
            push(&mut r, 10);
        }
        assert_eq!((r.first_seq(), r.len(), r.bytes()), (2, 2, 20));
        // One item over the byte bound alone is kept: it is the newest.
        push(&mut r, 100);
        assert_eq!((r.first_seq(), r.len(), r.bytes()), (4, 1, 100));
    }

    #[test]
    fn what_a_push_would_drop_is_what_it_drops() {
        for (items, bytes) in [(3, 1000), (100, 25), (4, 40)] {
            let mut r = ring(items, bytes);
            for n in [10, 1, 30, 5, 100, 0, 7, 7, 7, 12] {
                let predicted = r.would_drop_through(n);
                let first = r.first_seq();
                push(&mut r, n);
                let dropped = (r.first_seq() > first).then(|| r.first_seq() - 1);
                assert_eq!(predicted, dropped, "limits {items}/{bytes}, pushing {n}");
            }
        }
    }

    #[test]
    fn resume_within_the_ring_misses_nothing() {
        let mut r = ring(4, 1000);
        for _ in 0..6 {
            push(&mut r, 1);
        }
        let at = |seq| Some(Position { epoch: 7, seq });
        assert_eq!(
            r.resume(at(3)),
            Resume {
                from: 3,
                missed: None
            }
        );
        assert_eq!(
            r.resume(at(6)),
            Resume {
                from: 6,
                missed: None
            }
        );
        assert_eq!(
            r.resume(None),
            Resume {
                from: 6,
                missed: None
            }
        );
    }

    #[test]
    fn resume_past_the_ring_counts_what_was_dropped() {
        let mut r = ring(4, 1000);
        for _ in 0..10 {
            push(&mut r, 1);
        }
        let resumed = r.resume(Some(Position { epoch: 7, seq: 1 }));
        assert_eq!(
            resumed,
            Resume {
                from: 6,
                missed: Some(Missed::Exactly(5))
            }
        );
        assert_eq!(r.behind(1), Some(5));
        assert_eq!(r.behind(6), None);
        assert_eq!(r.behind(10), None);
    }

    #[test]
    fn another_epoch_or_a_future_position_is_an_unknown_loss() {
        let mut r = ring(4, 1000);
        push(&mut r, 1);
        let unknown = Resume {
            from: 0,
            missed: Some(Missed::Unknown),
        };
        assert_eq!(r.resume(Some(Position { epoch: 8, seq: 0 })), unknown);
        assert_eq!(r.resume(Some(Position { epoch: 7, seq: 9 })), unknown);
    }

    #[test]
    fn a_reloaded_numbering_continues() {
        let mut r = Ring::starting_at(3, 100, RingLimits::default());
        assert_eq!(push(&mut r, 1), 100);
        assert_eq!(r.first_seq(), 100);
        // Items before the reload are gone: a consumer at 90 missed 10.
        let resumed = r.resume(Some(Position { epoch: 3, seq: 90 }));
        assert_eq!(resumed.missed, Some(Missed::Exactly(10)));
    }
}
