//! A consumer's side of one producer's stream with no I/O: where it is,
//! what to acknowledge, and what its user sees.

use super::outlet::Delivery;
use super::ring::{Missed, Position};
use bytes::Bytes;

/// A consumer acknowledges at least every this many bytes taken: a
/// producer's window is also counted in bytes (at least twice this), and
/// a window of large items fills long before half its count of items.
pub const ACK_BYTES: usize = 64 * 1024;

/// What a consumer's user is handed, in the producer's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The next item.
    Item(Bytes),
    /// Items lost before the next one.
    Lagged(Missed),
}

/// A consumer's place in one producer's stream; kept across reconnects
/// so the next subscription resumes where this one stopped.
#[derive(Debug, Clone)]
pub struct Inlet {
    position: Option<Position>,
    /// Items taken in the current subscription, and how many of them the
    /// producer has been told about.
    taken: u64,
    acked: u64,
    /// Bytes of the items taken since the last acknowledgement.
    unacked_bytes: usize,
    ack_every: u64,
    /// Half the producer's window.
    window_ack: u64,
}

impl Inlet {
    /// A consumer new to the producer, acknowledging every `ack_every`
    /// items, or every half window of the producer's if that is less
    /// (so the producer never waits for an acknowledgement that is not
    /// coming).
    #[must_use]
    pub fn new(ack_every: u32) -> Self {
        Self {
            position: None,
            taken: 0,
            acked: 0,
            unacked_bytes: 0,
            ack_every: u64::from(ack_every.max(1)),
            window_ack: u64::MAX,
        }
    }

    /// Where to resume from: `None` before anything was received.
    #[must_use]
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The producer answered a subscription: items are numbered in
    /// `epoch` from `from` on, and it sends `window` ahead of
    /// acknowledgements.
    pub fn started(&mut self, epoch: u64, from: u64, window: u32) {
        self.position = Some(Position { epoch, seq: from });
        self.taken = 0;
        self.acked = 0;
        self.unacked_bytes = 0;
        self.window_ack = u64::from((window / 2).max(1));
    }

    /// Takes one delivery: what to hand the user, if anything.
    pub fn receive(&mut self, delivery: Delivery) -> Option<Received> {
        if let Delivery::Opened {
            epoch,
            next,
            window,
        } = delivery
        {
            self.started(epoch, next, window);
            return None;
        }
        let position = self.position.get_or_insert(Position { epoch: 0, seq: 0 });
        match delivery {
            Delivery::Opened { .. } => None,
            Delivery::Item { seq, payload } => {
                // A producer never numbers this far; a damaged or hostile
                // one may say it did.
                position.seq = seq.saturating_add(1);
                self.taken = self.taken.saturating_add(1);
                self.unacked_bytes = self.unacked_bytes.saturating_add(payload.len());
                Some(Received::Item(payload))
            }
            Delivery::Lagged { missed, next } => {
                position.seq = next;
                Some(Received::Lagged(missed))
            }
            Delivery::Progress { next } => {
                position.seq = next;
                None
            }
            // Opened by the caller, which hands each delivery in it here.
            Delivery::Batch(_) => None,
        }
    }

    /// The acknowledgement to send now, if enough items, or bytes
    /// ([`ACK_BYTES`]), were taken since the last: the number taken in
    /// this subscription so far.
    pub fn ack(&mut self) -> Option<u64> {
        let due = self.taken - self.acked >= self.ack_every.min(self.window_ack)
            || self.unacked_bytes >= ACK_BYTES;
        due.then(|| self.ack_now())
    }

    fn ack_now(&mut self) -> u64 {
        self.acked = self.taken;
        self.unacked_bytes = 0;
        self.taken
    }

    /// The acknowledgement of everything taken, if any of it is not yet
    /// acknowledged: sent when nothing more has arrived for a while, so a
    /// producer learns that its consumer has caught up (what
    /// `Producer::flushed` waits for).
    pub fn ack_all(&mut self) -> Option<u64> {
        (self.taken > self.acked).then(|| self.ack_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_follows_items_losses_and_progress() {
        let mut inlet = Inlet::new(2);
        assert_eq!(inlet.position(), None);
        let opened = Delivery::Opened {
            epoch: 9,
            next: 4,
            window: 100,
        };
        assert_eq!(inlet.receive(opened), None);
        let item = |seq| Delivery::Item {
            seq,
            payload: Bytes::from_static(b"x"),
        };
        assert!(matches!(inlet.receive(item(4)), Some(Received::Item(_))));
        assert_eq!(inlet.ack(), None);
        assert!(inlet.receive(item(6)).is_some());
        assert_eq!(inlet.ack(), Some(2));
        assert_eq!(inlet.ack(), None);
        assert!(inlet.receive(item(7)).is_some());
        assert!(inlet.receive(item(8)).is_some());
        assert_eq!(inlet.ack(), Some(4));
        assert_eq!(inlet.position(), Some(Position { epoch: 9, seq: 9 }));
        let lagged = Delivery::Lagged {
            missed: Missed::Exactly(3),
            next: 10,
        };
        assert_eq!(
            inlet.receive(lagged),
            Some(Received::Lagged(Missed::Exactly(3)))
        );
        assert_eq!(inlet.receive(Delivery::Progress { next: 12 }), None);
        assert_eq!(inlet.position(), Some(Position { epoch: 9, seq: 12 }));
    }

    #[test]
    fn large_items_are_acknowledged_by_their_bytes() {
        let mut inlet = Inlet::new(32);
        inlet.receive(Delivery::Opened {
            epoch: 1,
            next: 0,
            window: 1024,
        });
        let big = |seq| Delivery::Item {
            seq,
            payload: Bytes::from(vec![0; ACK_BYTES / 2]),
        };
        inlet.receive(big(0));
        assert_eq!(inlet.ack(), None);
        inlet.receive(big(1));
        assert_eq!(inlet.ack(), Some(2));
        inlet.receive(big(2));
        assert_eq!(inlet.ack(), None, "counting starts again");
    }
}
