//! A connection's caps and timeouts.

use std::time::Duration;

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
