//! The wire: frames, the handshake, connections with requests and pushes
//! in flight, and TLS settings (`PROTOCOL.md` describes the bytes).
//!
//! Both sides use these: a client dials with them, a node's listener (in
//! `statemesh`) serves with them.

// Framing, the handshake and connections are public for the node's
// listener, which speaks the same protocol; PROTOCOL.md is their reference.
#[doc(hidden)]
pub mod accept;
#[doc(hidden)]
pub mod connection;
mod error;
#[doc(hidden)]
pub mod frame;
#[doc(hidden)]
pub mod handshake;
mod limits;
#[doc(hidden)]
pub mod push;
#[doc(hidden)]
pub mod repeats;
mod tls;

pub use error::{AuthError, ConnectionError};
pub use frame::FrameError;
pub use handshake::PROTOCOL_VERSION;
pub use limits::Limits;
pub use push::Pushes;
pub use tls::{Identity, Security, Tls, TlsError, TlsFiles};
