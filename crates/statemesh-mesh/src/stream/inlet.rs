//! A consumer's side of one producer's stream with no I/O: where it is,
//! what to acknowledge, and what its user sees.

use super::outlet::Delivery;
use super::ring::{Missed, Position};
use bytes::Bytes;

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
    taken: u32,
    ack_every: u32,
}

impl Inlet {
    /// A consumer new to the producer, acknowledging every `ack_every`
    /// items (half its window keeps the producer from waiting).
    #[must_use]
    pub fn new(ack_every: u32) -> Self {
        Self {
            position: None,
            taken: 0,
            ack_every: ack_every.max(1),
        }
    }

    /// Where to resume from: `None` before anything was received.
    #[must_use]
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The producer answered a subscription: items are numbered in
    /// `epoch` from `from` on.
    pub fn started(&mut self, epoch: u64, from: u64) {
        self.position = Some(Position { epoch, seq: from });
        self.taken = 0;
    }

    /// Takes one delivery: what to hand the user, if anything.
    pub fn receive(&mut self, delivery: Delivery) -> Option<Received> {
        let position = self.position.get_or_insert(Position { epoch: 0, seq: 0 });
        match delivery {
            Delivery::Item { seq, payload } => {
                position.seq = seq + 1;
                self.taken += 1;
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
        }
    }

    /// Items to acknowledge now, if enough were taken since the last
    /// acknowledgement.
    pub fn ack(&mut self) -> Option<u32> {
        (self.taken >= self.ack_every).then(|| std::mem::take(&mut self.taken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_follows_items_losses_and_progress() {
        let mut inlet = Inlet::new(2);
        assert_eq!(inlet.position(), None);
        inlet.started(9, 4);
        let item = |seq| Delivery::Item {
            seq,
            payload: Bytes::from_static(b"x"),
        };
        assert!(matches!(inlet.receive(item(4)), Some(Received::Item(_))));
        assert_eq!(inlet.ack(), None);
        assert!(inlet.receive(item(6)).is_some());
        assert_eq!(inlet.ack(), Some(2));
        assert_eq!(inlet.position(), Some(Position { epoch: 9, seq: 7 }));
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
}
