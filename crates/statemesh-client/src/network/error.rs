//! Why a connection was refused or closed, and why a token was.

use super::frame::FrameError;
use super::tls;
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

    /// Whether the other side simply went away: closed the connection,
    /// reset it (a process that exited), or hung up during the TLS
    /// handshake (a dialer that gave up waiting). Not worth a warning.
    #[must_use]
    pub fn is_hangup(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
        match self {
            Self::Frame(FrameError::Closed) => true,
            Self::Frame(FrameError::Io(e)) => {
                matches!(e.kind(), ConnectionReset | BrokenPipe | UnexpectedEof)
            }
            Self::Tls { error, .. } => error.kind() == UnexpectedEof,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_peer_that_went_away_is_a_hangup_and_a_refusal_is_not() {
        let io = |kind| ConnectionError::Frame(FrameError::Io(Error::from(kind)));
        assert!(ConnectionError::Frame(FrameError::Closed).is_hangup());
        assert!(io(ErrorKind::ConnectionReset).is_hangup());
        assert!(io(ErrorKind::BrokenPipe).is_hangup());
        let tls_eof = ConnectionError::Tls {
            error: Error::from(ErrorKind::UnexpectedEof),
            ca: None,
        };
        assert!(tls_eof.is_hangup());
        assert!(!io(ErrorKind::PermissionDenied).is_hangup());
        assert!(!ConnectionError::Refused("another cluster".into()).is_hangup());
    }
}
