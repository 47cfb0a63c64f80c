//! The wire: frames, the handshake, connections with requests and pushes
//! in flight, and TLS settings (`PROTOCOL.md` describes the bytes).
//!
//! Both sides use these: a client dials with them, a node's listener (in
//! `statemesh`) serves with them.

// Framing, the handshake and connections are public for the node's
// listener, which speaks the same protocol; PROTOCOL.md is their reference.
#[doc(hidden)]
pub mod connection;
#[doc(hidden)]
pub mod frame;
#[doc(hidden)]
pub mod handshake;
#[doc(hidden)]
pub mod push;
mod tls;

pub use frame::FrameError;
pub use handshake::PROTOCOL_VERSION;
pub use push::Pushes;
pub use tls::{Security, Tls, TlsError, TlsFiles};

use std::time::Duration;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// It is neither the cluster secret nor a JWT with a valid signature.
    #[error("the token is not valid for this cluster")]
    Invalid,
    /// A JWT that is not well formed, or uses another algorithm.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A JWT past its expiry.
    #[error("the token expired {0:?} ago")]
    Expired(Duration),
}

/// Why a connection was refused or closed. Logged by the side that saw
/// it; the connection is dropped and nothing else is disturbed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The address is not `HOST:PORT`, or its host name does not resolve.
    #[error("{0}")]
    Address(String),
    /// The TCP connection could not be made.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// Connecting, the TLS handshake or our handshake took too long.
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
    /// The TLS handshake failed (plaintext spoken to a TLS port, an
    /// untrusted certificate, no client certificate where one is
    /// required).
    #[error("{}", tls::describe(.error, .ca.as_deref()))]
    Tls {
        /// What the TLS library said.
        error: std::io::Error,
        /// The CA file trusted, when the settings came from files.
        ca: Option<std::sync::Arc<str>>,
    },
    /// A frame could not be read.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The first frame does not start with statemesh's magic: not a
    /// statemesh peer.
    #[error("not a statemesh handshake (bad magic)")]
    BadMagic,
    /// The other side speaks another protocol version.
    #[error("protocol version {theirs} is not spoken here (this side speaks {ours})")]
    Version {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The handshake names another cluster.
    #[error("the peer belongs to cluster {theirs:?}, not {ours:?}")]
    Cluster {
        /// Ours.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The other side belongs to another cluster of the same name: it was
    /// bootstrapped separately (or its data directory was).
    #[error(
        "the peer belongs to another cluster of the same name (its id is {theirs}, ours {ours})"
    )]
    ClusterId {
        /// Ours.
        ours: statemesh_core::ClusterId,
        /// Theirs.
        theirs: statemesh_core::ClusterId,
    },
    /// The handshake could not be decoded, or a frame came out of turn.
    #[error("handshake: {0}")]
    Handshake(String),
    /// The token or cluster secret was refused.
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// The other side refused us, and said why.
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// The other side is starting and cannot take the connection yet.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The client's token expired; the connection was closed.
    #[error("the token expired")]
    Expired,
}

impl ConnectionError {
    /// Whether trying again cannot help: the address is wrong, or the
    /// other side answered and refused us, speaks another protocol,
    /// version or kind of security, or holds a certificate the given CA
    /// did not sign.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Address(_)
            | Self::BadMagic
            | Self::Version { .. }
            | Self::Cluster { .. }
            | Self::ClusterId { .. }
            | Self::Auth(_)
            | Self::Refused(_)
            | Self::Expired => true,
            Self::Tls { error, .. } => tls::is_permanent(error),
            Self::Connect(_)
            | Self::Timeout(_)
            | Self::Frame(_)
            | Self::Handshake(_)
            | Self::NotReady(_) => false,
        }
    }
}

/// Caps and timeouts of a connection. The defaults suit a LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame accepted, checked before anything is allocated
    /// (default 64 MiB: a batch of Raft entries or a snapshot chunk, with
    /// room).
    pub max_frame: usize,
    /// How long a frame may take once it started arriving (default 10 s).
    pub stall_timeout: Duration,
    /// How long connecting, the TLS handshake and the handshake may take
    /// together (default 5 s).
    pub connect_timeout: Duration,
    /// Requests one connection may have in flight on the serving side
    /// (default 1,024); past that, its frames wait to be read.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: 64 << 20,
            stall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_in_flight: 1024,
        }
    }
}
