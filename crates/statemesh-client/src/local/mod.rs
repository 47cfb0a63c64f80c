//! Collections published to shared memory, read by any process on the host
//! in place.
//!
//! A node or a mirror publishes a collection with
//! [`View::publish_local`](crate::View::publish_local) (on the command line,
//! `statemesh node --publish NAME`): after each applied version a thread
//! lays the state out as a [`statemesh_shm`] snapshot, coalescing versions
//! that arrive while it writes. Readers open it by name with [`open`]; a
//! read pins the latest version and looks keys up in it without copying,
//! locking or calling the kernel. A reader sees versions in order, each one
//! whole (never a mix of two); under a burst of writes it may skip
//! versions, never go back.
//!
//! A node publishing a map and a reader reading it (a program that
//! depends on `statemesh`, the node crate, where this runs as a test):
//!
//! ```ignore
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use statemesh::local::{self, LocalOptions};
//! use statemesh::{Map, MemoryNetwork, Node, NodeOptions};
//! use std::time::Duration;
//!
//! # let dir = tempfile::tempdir()?;
//! # let shm = tempfile::tempdir()?;
//! let node = Node::open(1, dir.path(), MemoryNetwork::new(), NodeOptions::default())?;
//! let prices = Map::<String, u64>::open(&node, "prices", &[1]).await?;
//! # let options = LocalOptions::new().dir(shm.path());
//! // In the node's process: publish the map as region "prices".
//! let _publication = prices.publish_local_with("prices", &options)?;
//! let (_, version) = prices.insert("apple".into(), 3).await?;
//!
//! // In any process on the host:
//! let mut local = local::open_with::<Map<String, u64>>("prices", &options)?;
//! local.wait_for(version, Duration::from_secs(5))?;
//! assert_eq!(local.read()?.get(&"apple".to_owned())?, Some(3));
//! # node.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Regions live in `/dev/shm` unless [`LocalOptions::dir`] says otherwise.
//! Keys and values are stored in the collection's wire encoding, sorted by
//! those bytes; only the value a reader asks for is decoded.

mod error;
mod layouts;
mod open;
mod publish;
mod read;
mod region;
mod snapshot;

pub(crate) use publish::archived;
pub(crate) use snapshot::read_archived;

pub use error::LocalError;
pub use open::{Collection, open, open_with};
pub use publish::{Entries, Publication, Publish};
pub use publish::{RegionWriter, reserve};
pub use read::{Local, LocalRead};
pub use region::{LocalOptions, Region, find, region_name};
