//! statemesh's client side: everything a process needs to use a cluster
//! without being one of its nodes. It compiles no consensus, no log and no
//! cache.
//!
//! - [`Client`]: connects to any members (TLS and a token), follows the
//!   leader, retries with deadlines, and opens remote collections
//!   ([`RemoteMap`] and the others), each write applied once however often
//!   it is retried.
//! - [`Mirror`]: a read-only copy of a collection outside the Raft group,
//!   kept current by the changes the nodes push, resumable from a file.
//! - [`View`]: a local copy's typed reads, what a mirror (and a node's
//!   reader handle) dereference to.
//! - [`local`]: collections published to shared memory, read in place by
//!   any process on the host.
//! - [`network`]: the wire's public face (TLS settings, connection errors,
//!   limits); its framing and messages are shared with the node's server
//!   and described in `PROTOCOL.md`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use statemesh_client::{Client, ClientOptions, Json, Security, Tls};
//!
//! let tls = Tls::client(&std::fs::read("certs/ca.pem")?, None)?;
//! let options = ClientOptions::new("statemesh", Security::Tls(tls.into()));
//! let client = Client::connect(&["127.0.0.1:7401".to_owned()], "token", options).await?;
//! let orders = client.map::<String, Json>("orders").await?;
//! let (previous, version) = orders.insert("o-1".into(), Json(serde_json::json!({"qty": 2}))).await?;
//! # let _ = (previous, version);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
/// Hooks for this crate's fuzz targets (`tests/fuzz.rs`). Not a stable
/// API: hidden from the documentation and free to change in any release.
#[doc(hidden)]
pub mod fuzzing;
pub mod local;
mod mirror;
pub mod network;
// The messages are public for the node's server, which answers them; their
// reference is PROTOCOL.md, and they are not an API of their own.
#[doc(hidden)]
pub mod protocol;
mod shared;
mod status;
mod version;
mod view;

pub use client::{
    Client, ClientError, ClientOptions, ClusterReport, ClusterStatus, CollectionInfo, MemberReport,
    Refusal, Remote, RemoteCell, RemoteMap, RemoteOnce, RemotePriorityQueue, RemoteSet, RemoteVec,
    RemoteWritten, Resync,
};
pub use mirror::{Mirror, MirrorError, MirrorFileError, MirrorOptions, MirrorStats, Update};
pub use network::{ConnectionError, Limits, Security, Tls, TlsError, TlsFiles};
pub use protocol::Consistency;
pub use shared::Shared;
pub use status::{GroupStatus, Member, MemberRole, Role};
pub use version::{VersionReceiver, VersionSender, Versions};
pub use view::View;

// The collections' states, commands and value types, so that a client-only
// program needs no other statemesh crate.
pub use statemesh_core::collections::Json;
pub use statemesh_core::{collections, hooks};
