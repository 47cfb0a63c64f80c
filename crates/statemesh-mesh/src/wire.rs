//! What mesh peers say to each other over a connection, after the
//! handshake (frames and handshake as in the client crate's
//! `PROTOCOL.md`, section "Mesh").
//!
//! - A `Request` frame carries a [`MeshRequest::Gossip`]; its `Reply` is
//!   empty.
//! - A `Subscribe` frame carries a [`MeshRequest::Consume`]; the producer
//!   answers with `Push` frames, each a
//!   [`Delivery`](crate::stream::Delivery), and ends with a `Reply`
//!   carrying an [`End`]. The consumer's `Ack` frames carry the number of
//!   items it has taken since it subscribed (a u64), and `Cancel` ends it.

use crate::gossip::{Member, Message};
use crate::peer::PeerInfo;
use crate::stream::{Missed, Position, StreamId, TypeMismatch};
use serde::{Deserialize, Serialize};

/// A request from the connecting peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeshRequest {
    /// A gossip message, from the sender as foca knows it (its id must be
    /// the one its pass names).
    Gossip {
        /// The sender.
        from: Member,
        /// The message.
        message: Message,
    },
    /// Opens a subscription to the stream.
    Consume {
        /// The stream, with the type the consumer reads it as.
        stream: StreamId,
        /// Where it resumes (`None`: from now on).
        from: Option<Position>,
        /// Key patterns it wants (empty: every item).
        filter: Vec<String>,
        /// The consumer's entry (its id must be the one its pass names),
        /// for the producer's requirements and online condition.
        consumer: PeerInfo,
    },
}

/// Why a producer refused a consumer, or ended its subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum End {
    /// It produces no stream of that name (any more).
    #[error("the peer produces no stream {0:?}")]
    NoSuchStream(String),
    /// It produces the stream as another type.
    #[error(transparent)]
    TypeMismatch(TypeMismatch),
    /// The consumer's pass does not allow consuming the stream.
    #[error("this peer's pass does not allow consuming stream {0:?}")]
    NotPermitted(String),
    /// The producer has its maximum number of consumers.
    #[error("the producer already has its maximum of {0} consumers")]
    Full(usize),
    /// The producer's requirement on consumers does not hold for this one.
    #[error("the producer does not accept this consumer (its requirement is not met)")]
    NotAccepted,
    /// The consumer fell behind the producer's buffer and was
    /// disconnected (it may resume, and will hear what it missed).
    #[error("disconnected for lagging: {missed} items were dropped before it was sent them")]
    Lagging {
        /// Items dropped.
        missed: u64,
    },
    /// The producer is gone (dropped, or its process is shutting down).
    #[error("the producer closed the stream")]
    Closed,
}

impl End {
    /// Whether trying again later can help (the other ends say something
    /// about the consumer that only its owner can change).
    #[must_use]
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::TypeMismatch(_) | Self::NotPermitted(_))
    }
}

/// Says how a [`Missed`] reads to a person.
#[must_use]
pub fn describe(missed: Missed) -> String {
    match missed {
        Missed::Exactly(1) => "1 item".to_owned(),
        Missed::Exactly(n) => format!("{n} items"),
        Missed::Unknown => "an unknown number of items (the producer restarted)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_reads_as_a_person_would_say_it() {
        assert_eq!(describe(Missed::Exactly(1)), "1 item");
        assert_eq!(describe(Missed::Exactly(150)), "150 items");
        assert!(describe(Missed::Unknown).contains("restarted"));
    }
}
