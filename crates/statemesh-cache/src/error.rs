//! Errors.

use crate::key::Key;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A store operation that failed. Nothing is lost by a failed operation:
/// a failed write leaves no blob (or the previous one) under the key.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file system is full (or a quota is exhausted).
    #[error("disk full: {op} {}: {source}", path.display())]
    DiskFull {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error (shared, so the error can be
        /// reported to every caller waiting on the same operation).
        #[source]
        source: Arc<io::Error>,
    },
    /// The operating system refused access.
    #[error("permission denied: {op} {}: {source}", path.display())]
    PermissionDenied {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error (shared, so the error can be
        /// reported to every caller waiting on the same operation).
        #[source]
        source: Arc<io::Error>,
    },
    /// Any other I/O failure.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error (shared, so the error can be
        /// reported to every caller waiting on the same operation).
        #[source]
        source: Arc<io::Error>,
    },
    /// No blob is stored under this key there.
    #[error("no blob {key} in {place}")]
    NotFound {
        /// The key looked for.
        key: Key,
        /// Where it was looked for.
        place: String,
    },
    /// A blob file that is damaged or not a blob at all.
    #[error("{}: damaged blob: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A location name that the store does not accept.
    #[error("invalid location {name:?}: {why}")]
    BadLocation {
        /// The name given.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// Another store (in this or another process) has the directory open.
    #[error("{} is in use by another store", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
}

impl StoreError {
    /// Classifies an I/O error: full disks and refused permissions get their
    /// own variants, so callers can react to them without string matching.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        let kind = source.kind();
        let source = Arc::new(source);
        match kind {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StoreError::DiskFull { op, path, source }
            }
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::PermissionDenied { op, path, source }
            }
            _ => StoreError::Io { op, path, source },
        }
    }
}

/// A pool operation that failed. The object it was about is unchanged: a
/// failed load leaves it on disk, a failed spill leaves it in memory, a
/// failed persist leaves the location without it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The codec could not encode or decode the object.
    #[error("object {key}: {source}")]
    Codec {
        /// The object's key.
        key: Key,
        /// What the codec said.
        #[source]
        source: crate::codec::CodecError,
    },
    /// Exclusive access was asked for through a handle that is not the
    /// object's only one.
    #[error("object {key} has other handles; make_mut copies it instead")]
    Shared {
        /// The object's key.
        key: Key,
    },
    /// A thread to run the store's blocking calls could not be started.
    #[error("cannot start a thread for store I/O: {0}")]
    Spawn(#[source] Arc<io::Error>),
    /// No room was made in time for an object to become resident: what is
    /// in memory is pinned by guards, being written, or cannot be spilled
    /// (see [`PoolStats::last_spill_error`](crate::PoolStats)).
    #[error(
        "no room for {needed} bytes within {waited:?}: {resident} of the pool's {limit} bytes \
         are in memory and none could be spilled (pinned by guards, or the spill failed)"
    )]
    OverBudget {
        /// The bytes the object needed.
        needed: usize,
        /// The bytes in memory when the caller gave up.
        resident: usize,
        /// The pool's limit: its budget and slack.
        limit: usize,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
}

/// An insert that found no room: the value, given back, and why.
pub struct Rejected<T> {
    /// The value that was not inserted.
    pub value: T,
    /// Why ([`CacheError::OverBudget`]).
    pub error: CacheError,
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not inserted: {}", self.error)
    }
}

// No `source`: the message includes the error already.
impl<T> std::error::Error for Rejected<T> {}

impl<T> From<Rejected<T>> for CacheError {
    fn from(r: Rejected<T>) -> Self {
        r.error
    }
}
