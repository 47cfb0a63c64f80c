//! Nodes on TCP, secured by TLS: the [`Network`](crate::network::Network)
//! real clusters use.
//!
//! One module per stage of a connection's life: the shared state and the
//! links to peers (outgoing), accepting and admitting a connection
//! (incoming), and serving what an admitted one sends; this file only
//! declares them and re-exports.

mod accept;
mod admit;
mod handler;
mod network;
mod options;
mod serve;
mod shared;

pub use handler::ClientHandler;
pub use network::TcpNetwork;
pub use options::TcpOptions;
