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
//! ```
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

mod layouts;
mod publish;
mod read;
mod snapshot;

pub use publish::{Entries, Publication, Publish};
pub use publish::{RegionWriter, reserve};
pub use read::{Local, LocalRead};

use std::path::PathBuf;

/// Where regions are (both sides must agree).
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    dir: Option<PathBuf>,
    allow_stale: bool,
}

impl LocalOptions {
    /// Regions in the default directory (`/dev/shm` on Linux).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Regions in `dir` instead (a tmpfs, for memory speed).
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Let readers read what a publisher that has stopped or died left
    /// (default: refused with [`LocalError::PublisherGone`], which says
    /// how old it is).
    #[must_use]
    pub fn allow_stale(mut self, allow: bool) -> Self {
        self.allow_stale = allow;
        self
    }

    fn writer(&self) -> statemesh_shm::WriterOptions {
        let o = statemesh_shm::WriterOptions::new();
        match &self.dir {
            Some(d) => o.dir(d),
            None => o,
        }
    }

    fn reader(&self) -> statemesh_shm::ReaderOptions {
        let o = statemesh_shm::ReaderOptions::new();
        match &self.dir {
            Some(d) => o.dir(d),
            None => o,
        }
    }
}

/// The region a node publishes `collection` as: named after its cluster
/// and itself, so two nodes on one host never write the same region:
/// `statemesh.<cluster id>.<node id>.<collection>`.
#[must_use]
pub fn region_name(
    cluster: statemesh_core::ClusterId,
    node: statemesh_core::NodeId,
    collection: &str,
) -> String {
    format!("statemesh.{cluster}.{node}.{collection}")
}

/// A region a node publishes, found by [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// The region's name (for [`open_with`]).
    pub name: String,
    /// The publishing node's cluster.
    pub cluster: statemesh_core::ClusterId,
    /// The publishing node.
    pub node: statemesh_core::NodeId,
}

/// The regions in which nodes on this host publish `collection`, whether
/// their publishers are alive or not, in order of name.
///
/// # Errors
///
/// [`LocalError::Encode`] naming the directory if it cannot be listed.
pub fn find(collection: &str, options: &LocalOptions) -> Result<Vec<Region>, LocalError> {
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(statemesh_shm::default_dir);
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| LocalError::Encode(format!("listing {}: {e}", dir.display())))?;
    let mut found: Vec<Region> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix("statemesh.")?;
            let (cluster, rest) = rest.split_once('.')?;
            let (node, rest) = rest.split_once('.')?;
            (rest == collection).then_some(())?;
            Some(Region {
                cluster: cluster.parse().ok()?,
                node: node.parse().ok()?,
                name,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Publishing or reading a local collection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The region could not be opened (or, for a publisher, created).
    #[error("region {name:?}: {source}")]
    Open {
        /// The region's name.
        name: String,
        /// Why.
        #[source]
        source: statemesh_shm::OpenError,
    },
    /// Nothing is published yet, or the region is damaged.
    #[error("region {name:?}: {source}")]
    Read {
        /// The region's name.
        name: String,
        /// Why.
        #[source]
        source: statemesh_shm::ReadError,
    },
    /// Writing a version to the region failed.
    #[error("region {name:?}: {source}")]
    Publish {
        /// The region's name.
        name: String,
        /// Why.
        #[source]
        source: statemesh_shm::WriteError,
    },
    /// The region holds another kind of collection.
    #[error("region {name:?} holds {published}, not {expected}")]
    Signature {
        /// The region's name.
        name: String,
        /// The signature of what it holds.
        published: String,
        /// The reader's.
        expected: String,
    },
    /// The region's entries are inconsistent (written by something other
    /// than a publisher of this build).
    #[error("region {name:?} is corrupt: {detail}")]
    Corrupt {
        /// The region's name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The process that published the region has stopped or died: what
    /// it holds may be stale.
    #[error(
        "region {name:?}: its publisher has stopped; the last version ({version}) was published {:.1} s ago",
        age.as_secs_f64()
    )]
    PublisherGone {
        /// The region's name.
        name: String,
        /// The version it holds.
        version: u64,
        /// How long ago that version was published.
        age: std::time::Duration,
    },
    /// The collection was dropped from its cluster.
    #[error("region {name:?}: the collection was dropped")]
    Dropped {
        /// The region's name.
        name: String,
    },
    /// A key or value does not encode.
    #[error("{0}")]
    Encode(String),
    /// A published value does not decode as the reader's type.
    #[error("a published value does not decode: {0}")]
    Decode(String),
}

/// A collection handle type, named to say which state a local reader reads:
/// `open::<Map<K, V>>` reads what a `Map<K, V>` published.
pub trait Collection {
    /// Its state machine.
    type State: Publish;
}

impl<SM: Publish + statemesh_core::Queryable> Collection for crate::Remote<SM> {
    type State = SM;
}

impl<SM: Publish + statemesh_core::Mirrored> Collection for crate::Mirror<SM> {
    type State = SM;
}

/// Opens the collection published as region `name` in the default
/// directory, to read it as `C` (`Map<K, V>`, `Cell<T>`, ...).
///
/// # Errors
///
/// See [`Local::open_with`].
pub fn open<C: Collection>(name: &str) -> Result<Local<C::State>, LocalError>
where
    C::State: Default,
{
    Local::open(name)
}

/// Like [`open`], with options.
///
/// # Errors
///
/// See [`Local::open_with`].
pub fn open_with<C: Collection>(
    name: &str,
    options: &LocalOptions,
) -> Result<Local<C::State>, LocalError>
where
    C::State: Default,
{
    Local::open_with(name, options, &C::State::default())
}
