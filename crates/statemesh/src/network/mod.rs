//! How nodes reach each other.
//!
//! A [`Network`] carries opaque request bytes from one node to another and
//! brings the reply back; the node at the far end hands them to the
//! [`Handler`] it registered with [`Network::serve`]. Raft messages,
//! forwarded commands and read-index requests of every group travel this
//! way, so a transport needs to know nothing about groups or types.
//!
//! Two transports implement it: [`MemoryNetwork`] (in-process, with fault
//! injection, for tests) and [`TcpNetwork`] (TCP, TLS by default, framed
//! and checksummed, many requests in flight on one connection per peer;
//! the protocol is described in `PROTOCOL.md`). Peers prove they belong
//! to the cluster with its secret, clients with a token ([`auth`]).

pub mod auth;
mod certs;
mod memory;
mod reachability;
mod tcp;
mod transport;

pub use auth::{Access, AuthError, Authenticator, Claims, EmptyKey, Grant, Secret};
pub use certs::DevCertificates;
pub use memory::MemoryNetwork;
pub use statemesh_client::network::{
    ConnectionError, FrameError, Limits, PROTOCOL_VERSION, Pushes, Security, Tls, TlsError,
    TlsFiles,
};
pub(crate) use statemesh_client::network::{accept, connection, frame, handshake, push, repeats};
pub use tcp::{ClientHandler, TcpNetwork, TcpOptions};
pub use transport::{BoxFuture, Handler, Network, NetworkError};
