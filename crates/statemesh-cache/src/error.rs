//! Errors.

use crate::key::Key;
use std::io;
use std::path::PathBuf;

/// A store operation that failed. Nothing is lost by a failed operation:
/// a failed write leaves no blob (or the previous one) under the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file system is full (or a quota is exhausted).
    #[error("disk full: {op} {}: {source}", path.display())]
    DiskFull {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The operating system refused access.
    #[error("permission denied: {op} {}: {source}", path.display())]
    PermissionDenied {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Any other I/O failure.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
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
        match source.kind() {
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
