//! Where published collections live, and how their regions are named and
//! found.

use super::error::LocalError;
use std::path::PathBuf;

/// Where regions are (both sides must agree).
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    dir: Option<PathBuf>,
    pub(super) allow_stale: bool,
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

    pub(super) fn writer(&self) -> statemesh_shm::WriterOptions {
        let o = statemesh_shm::WriterOptions::new();
        match &self.dir {
            Some(d) => o.dir(d),
            None => o,
        }
    }

    pub(super) fn reader(&self) -> statemesh_shm::ReaderOptions {
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
    /// The region's name (for [`open_with`](super::open_with)).
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
