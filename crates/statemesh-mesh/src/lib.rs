//! statemesh's mesh: processes that find each other by gossip and pass
//! typed streams between them, resuming without silent gaps.
//!
//! Every process that joins (a node, or any program with a listen
//! address) announces its id, address, tags and the streams it produces;
//! every other learns them from one seed address, and a process that dies
//! leaves every catalog within [`gossip::Timing::detection_bound`]. A
//! [`Producer`] sends items of one type to every consumer of its stream
//! that it accepts; a [`Consumer`] follows every producer of its stream
//! that it accepts, as they come and go. Items are numbered: a consumer
//! that reconnects resumes where it stopped and gets what it missed if the
//! producer still buffers it, or a [`ConsumeError::Lagged`] saying how
//! much was lost.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use statemesh_mesh::pass::{Credentials, PassIssuer};
//! use statemesh_mesh::peer::PeerId;
//! use statemesh_mesh::{Mesh, Security};
//! use std::time::Duration;
//!
//! // Nodes issue passes; a holder of the cluster secret may too.
//! let issuer = PassIssuer::new(b"cluster secret", "0123456789abcdef0123456789abcdef".parse()?);
//! let admit = |name: &str| Credentials {
//!     pass: issuer.issue(PeerId::from_name(name), Duration::from_secs(3600), vec!["*".into()], vec!["*".into()]),
//!     verifier: issuer.verifier(),
//! };
//! let a = Mesh::builder("demo", Security::Plaintext, admit("pricing")).start().await?;
//! let b = Mesh::builder("demo", Security::Plaintext, admit("trader"))
//!     .seed(a.address())
//!     .start()
//!     .await?;
//!
//! let mut prices = b.streams().consume::<u64>("prices").start()?;
//! let producer = a.streams().produce::<u64>("prices").start()?;
//! producer.send(&42).await?; // waits until the consumer has subscribed
//! assert_eq!(prices.next().await.unwrap()?, 42);
//! # Ok(())
//! # }
//! ```
//!
//! The parts, from the bottom:
//!
//! - [`peer`]: a peer's id, tags and the entry others learn about it.
//! - [`catalog`]: the peers a process knows, by tag and by stream.
//! - [`gossip`]: discovery and failure detection (foca's SWIM) with no
//!   I/O of its own.
//! - [`pass`]: the signed passes peers admit each other with.
//! - [`stream`]: stream identity, the producer's replay ring, and the
//!   cursors, windows and filters that decide what each consumer is sent,
//!   with no I/O.
//! - [`wire`]: the messages peers exchange (`PROTOCOL.md` of
//!   `statemesh-client`, section "Mesh").
//! - [`Mesh`], [`Producer`], [`Consumer`]: the running mesh over TCP (and
//!   TLS), on tokio.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod gossip;
pub mod identity;
mod mesh;
pub mod pass;
pub mod peer;
pub mod stream;
pub mod wire;

pub use mesh::{
    ConsumeError, Consumer, ConsumerBuilder, Mesh, MeshBuilder, MeshError, ProduceError, Producer,
    ProducerBuilder, Streams, When, catalog_through,
};
pub use statemesh_client::network::{Limits, Security, Tls};

// The README's example compiles (it runs against no cluster, so it is not
// run).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
