//! A server's data directory: checked, locked and, when a first start
//! fails, removed again.
//!
//! ```text
//! DIR/LOCK          held (flock) while a node runs here
//! DIR/node-id       this node's id, made on first start
//! DIR/cluster-id    the id of the cluster the directory belongs to
//! DIR/removed       present once the node learnt it was removed
//! DIR/groups/…      each group's log and snapshot (see `Node`)
//! DIR/values/…      large values (statemesh-cache)
//! ```

use super::ServerError;
use crate::types::{ClusterId, NodeId};
use std::fs::File;
use std::path::{Path, PathBuf};

const LOCK: &str = "LOCK";
const NODE_ID: &str = "node-id";
const CLUSTER_ID: &str = "cluster-id";
const REMOVED: &str = "removed";

/// An open, locked data directory.
#[derive(Debug)]
pub(crate) struct DataDir {
    path: PathBuf,
    /// Held for the node's life; the lock goes with the file.
    _lock: File,
    /// Whether this start made it (or found it empty): then a failed start
    /// takes everything in it away again.
    fresh: bool,
    /// Whether this start created the directory itself.
    created: bool,
}

impl DataDir {
    /// Creates `path` if it is missing and takes its lock.
    ///
    /// # Errors
    ///
    /// [`ServerError::DataDir`] naming the path: it is a file, cannot be
    /// created or written, or another node has it.
    pub(crate) fn open(path: &Path) -> Result<Self, ServerError> {
        let fail = |reason: String| ServerError::DataDir {
            path: path.to_path_buf(),
            reason,
        };
        let created = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => false,
            Ok(_) => return Err(fail("is a file, not a directory".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(fail(
                    "cannot be created: a directory above it is a file".into(),
                ));
            }
            Err(e) => return Err(fail(format!("cannot be read: {e}"))),
        };
        std::fs::create_dir_all(path).map_err(|e| fail(format!("cannot be created: {e}")))?;
        let fresh = created
            || std::fs::read_dir(path)
                .map_err(|e| fail(format!("cannot be read: {e}")))?
                .next()
                .is_none();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK))
            .map_err(|e| fail(format!("cannot be written: {e}")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(fail(
                    "is in use by another statemesh node: stop that node or give another \
                     --data-dir"
                        .into(),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(fail(format!("cannot be locked: {e}")));
            }
        }
        // Root ignores permission bits, so find out by writing: a node that
        // starts must be able to keep its log.
        let probe = path.join(".write-test");
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| fail(format!("cannot be written: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
            fresh,
            created,
        })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The node's id, made at random on first start.
    pub(crate) fn node_id(&self) -> Result<NodeId, ServerError> {
        match self.read(NODE_ID)? {
            Some(text) => text.trim().parse().map_err(|e| ServerError::DataDir {
                path: self.path.join(NODE_ID),
                reason: format!("is not a node id: {e}"),
            }),
            None => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).map_err(|e| self.io(NODE_ID, e.to_string()))?;
                // Below 2^53, so ids stay exact in JSON (JavaScript numbers).
                let id = (u64::from_le_bytes(bytes) % (1 << 53)).max(1);
                self.write(NODE_ID, &format!("{id}\n"))?;
                Ok(id)
            }
        }
    }

    /// The id of the cluster this directory belongs to, if it has one yet
    /// (a directory made before cluster ids existed has none).
    pub(crate) fn cluster_id(&self) -> Result<Option<ClusterId>, ServerError> {
        self.read(CLUSTER_ID)?
            .map(|text| {
                text.parse().map_err(|reason| ServerError::DataDir {
                    path: self.path.join(CLUSTER_ID),
                    reason,
                })
            })
            .transpose()
    }

    /// Records the cluster this directory belongs to from now on (once:
    /// a directory never changes cluster).
    pub(crate) fn set_cluster_id(&self, id: ClusterId) -> Result<(), ServerError> {
        match self.cluster_id()? {
            Some(known) if known == id => Ok(()),
            Some(known) => Err(ServerError::DataDir {
                path: self.path.join(CLUSTER_ID),
                reason: format!("belongs to cluster {known}, not {id}"),
            }),
            None => self.write(CLUSTER_ID, &format!("{id}\n")),
        }
    }

    /// Whether the node learnt, last time it ran, that it had been removed
    /// from its cluster.
    pub(crate) fn was_removed(&self) -> bool {
        self.path.join(REMOVED).exists()
    }

    /// Notes that the node is a member again.
    pub(crate) fn clear_removed(&self) -> Result<(), ServerError> {
        match std::fs::remove_file(self.path.join(REMOVED)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(self.io(REMOVED, e.to_string()))
            }
            Err(_) => Ok(()),
            // Synced, so a crash cannot bring the note back.
            Ok(()) => std::fs::File::open(&self.path)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(REMOVED, e.to_string())),
        }
    }

    /// Takes away what this start made, if the directory was new or empty
    /// before it. Best effort: the start's own error is what gets reported.
    pub(crate) fn discard(self) {
        if !self.fresh {
            return;
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.path);
            return;
        }
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }

    fn read(&self, name: &str) -> Result<Option<String>, ServerError> {
        match std::fs::read_to_string(self.path.join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(name, e.to_string())),
        }
    }

    fn write(&self, name: &str, text: &str) -> Result<(), ServerError> {
        write_whole(&self.path, name, text.as_bytes()).map_err(|e| self.io(name, e.to_string()))
    }

    fn io(&self, name: &str, error: String) -> ServerError {
        ServerError::DataDir {
            path: self.path.join(name),
            reason: format!("cannot be read or written: {error}"),
        }
    }
}

/// Notes in the data directory at `path` that its node was removed from
/// the cluster, so a restart does not serve stale data as if a member.
/// Synced: a note lost to a crash would let the node start as a member.
pub(crate) fn mark_removed(path: &Path) -> std::io::Result<()> {
    match write_whole(path, REMOVED, b"") {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Creates file `name` in `dir` with `content`, whole or not at all, and
/// fails if it exists. The content goes to a temporary file that is synced
/// and then linked into place, and the directory is synced: a crash leaves
/// no file or the whole one, never an empty one (which a next start would
/// refuse as "not a node id").
fn write_whole(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!(".{name}.new"));
    // Left by a crash before the link: never the file itself.
    let _ = std::fs::remove_file(&temporary);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)?;
    f.write_all(content)?;
    f.sync_all()?;
    drop(f);
    let linked = std::fs::hard_link(&temporary, dir.join(name));
    let _ = std::fs::remove_file(&temporary);
    linked?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused_and_ids_persist() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        let first = DataDir::open(&dir).unwrap();
        let err = DataDir::open(&dir).unwrap_err().to_string();
        assert!(err.contains("in use by another statemesh node"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        let node = first.node_id().unwrap();
        assert_eq!(first.node_id().unwrap(), node);
        assert_eq!(first.cluster_id().unwrap(), None);
        let cluster = ClusterId::random().unwrap();
        first.set_cluster_id(cluster).unwrap();
        assert_eq!(first.cluster_id().unwrap(), Some(cluster));
    }

    #[test]
    fn an_interrupted_write_leaves_no_file_and_a_leftover_does_not_matter() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        // What a crash between creating and linking the temporary leaves.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".node-id.new"), b"").unwrap();
        let d = DataDir::open(&dir).unwrap();
        let id = d.node_id().unwrap();
        assert!(!dir.join(".node-id.new").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join(NODE_ID)).unwrap(),
            format!("{id}\n")
        );
        mark_removed(&dir).unwrap();
        mark_removed(&dir).unwrap();
        assert!(d.was_removed());
        d.clear_removed().unwrap();
        assert!(!d.was_removed());
    }

    #[test]
    fn a_file_is_not_a_data_directory() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = DataDir::open(&file).unwrap_err().to_string();
        assert!(err.contains("is a file, not a directory"), "{err}");
        let err = DataDir::open(&file.join("below")).unwrap_err().to_string();
        assert!(err.contains("cannot be created"), "{err}");
    }

    #[test]
    fn discarding_takes_away_only_what_a_first_start_made() {
        let root = tempfile::tempdir().unwrap();
        let new = root.path().join("new");
        let d = DataDir::open(&new).unwrap();
        d.node_id().unwrap();
        d.discard();
        assert!(!new.exists());

        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let d = DataDir::open(&empty).unwrap();
        d.node_id().unwrap();
        d.discard();
        assert!(empty.exists());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

        let used = root.path().join("used");
        let d = DataDir::open(&used).unwrap();
        d.node_id().unwrap();
        drop(d);
        let d = DataDir::open(&used).unwrap();
        d.discard();
        assert!(used.join(NODE_ID).exists());
    }
}
