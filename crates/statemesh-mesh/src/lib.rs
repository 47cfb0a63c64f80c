//! statemesh's mesh: processes that find each other by gossip and pass
//! typed streams between them.
//!
//! This crate is being built up in steps (see the workspace's
//! `docs/plan-streams.md`). What is here so far has no I/O:
//!
//! - [`peer`]: a peer's id, tags and the entry others learn about it.
//! - [`catalog`]: the peers a process knows, by tag and by stream.
//! - [`pass`]: the signed passes peers admit each other with.
//! - [`stream`]: stream identity, the producer's replay ring, and the
//!   conditions that make a side online.
//!
//! A producer's ring numbers items and tells a resuming consumer exactly
//! what it missed:
//!
//! ```
//! use bytes::Bytes;
//! use statemesh_mesh::stream::{Missed, Position, Ring, RingLimits};
//!
//! let mut ring = Ring::new(1, RingLimits { items: 2, bytes: 1 << 20 });
//! for item in ["a", "b", "c"] {
//!     ring.push(None, Bytes::from(item));
//! }
//! // A consumer that had "a" (next wanted: 1) resumes from 1: all there.
//! let resumed = ring.resume(Some(Position { epoch: 1, seq: 1 }));
//! assert_eq!((resumed.from, resumed.missed), (1, None));
//! // One that had nothing of this epoch missed exactly one item.
//! let resumed = ring.resume(Some(Position { epoch: 1, seq: 0 }));
//! assert_eq!(resumed.missed, Some(Missed::Exactly(1)));
//! ```
#![forbid(unsafe_code)]

pub mod catalog;
pub mod gossip;
pub mod pass;
pub mod peer;
pub mod stream;
