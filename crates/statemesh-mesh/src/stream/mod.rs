//! Streams: typed items from producers to consumers, numbered so a
//! consumer that reconnects resumes without a silent gap.
//!
//! - [`StreamId`]: a stream's name and item type.
//! - [`Encoded`]: an item encoded once, in the buffer its delivery is
//!   sent from.
//! - [`Ring`]: a producer's replay buffer, which every consumer reads
//!   through a cursor, and which says exactly how much a consumer missed
//!   when it fell behind or came back too late.
//! - [`Outlet`]: a producer's consumers, their cursors, windows,
//!   filters and lag policy, deciding what to send whom.
//! - [`Inlet`]: a consumer's position in one producer's stream, kept
//!   across reconnects.
//! - [`Online`] and [`Require`]: which peers a side accepts, and how many
//!   it needs before it is online.

mod batch;
mod condition;
mod encoded;
mod id;
mod inlet;
mod outlet;
mod ring;

pub use batch::{BATCH_ALONE, batched, unbatched};
pub use condition::{Online, Require};
pub use encoded::Encoded;
pub use id::{StreamId, TypeMismatch};
pub use inlet::{ACK_BYTES, Inlet, Received};
pub use outlet::{Delivery, LagPolicy, Lagging, Outlet, Refusal, Window};
pub use ring::{Item, Missed, Position, Resume, Ring, RingLimits};
