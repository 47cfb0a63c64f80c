//! Errors, one enum per operation, each convertible into [`Error`].
//!
//! Every variant that concerns a file names it, so a message read in a log
//! says which region is affected without further context.

use crate::version::Version;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Opening a region as a writer or a reader failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The region name is empty, `.` or `..`, or contains a `/` or a NUL byte.
    #[error("invalid region name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: std::ffi::OsString,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An option is out of its documented range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Another writer holds the region's exclusive lock.
    #[error("{path}: another writer already holds this region")]
    WriterExists {
        /// The region's control file.
        path: PathBuf,
    },
    /// The region does not exist (no writer has created it yet).
    #[error("{path}: region not found (has a writer created it?)")]
    NotFound {
        /// The region's control file.
        path: PathBuf,
    },
    /// The file does not start with the statemesh-shm magic: it is something else.
    #[error("{path}: not a statemesh-shm region (bad magic)")]
    BadMagic {
        /// The file that was opened.
        path: PathBuf,
    },
    /// The region was made by a version of this crate with another layout.
    #[error(
        "{path}: region layout version {found} is not supported (this build reads version {supported}); remove the region or use a matching build"
    )]
    IncompatibleLayout {
        /// The region's control file.
        path: PathBuf,
        /// The layout version found in the file.
        found: u32,
        /// The layout version this build reads and writes.
        supported: u32,
    },
    /// The region's header fails its checksum or holds impossible values.
    #[error("{path}: corrupt region header: {detail}")]
    CorruptHeader {
        /// The region's control file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file is shorter than its header says it must be.
    #[error("{path}: truncated: {len} bytes, at least {expected} expected")]
    Truncated {
        /// The truncated file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The length its header requires.
        expected: u64,
    },
    /// Every reader slot is held by a live reader.
    #[error("{path}: all {slots} reader slots are in use by live readers")]
    NoFreeSlot {
        /// The region's control file.
        path: PathBuf,
        /// The number of slots the region was created with.
        slots: u32,
    },
    /// The region did not appear before the timeout.
    #[error("{path}: region did not appear within {waited:?}")]
    Timeout {
        /// The region's control file.
        path: PathBuf,
        /// How long the call waited.
        waited: Duration,
    },
    /// An I/O call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file being worked on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Publishing a snapshot failed. The previous snapshot stays current.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Every buffer the region may use is held by a live reader, for longer
    /// than the writer's `busy_timeout`. Nothing was overwritten.
    #[error(
        "{path}: all {buffers} buffers are held by live readers after waiting {waited:?}; nothing was overwritten"
    )]
    ReadersBusy {
        /// The region's control file.
        path: PathBuf,
        /// How many buffers exist (the region's `max_buffers`).
        buffers: u32,
        /// How long the writer waited.
        waited: Duration,
    },
    /// The value could not be serialised.
    #[error("serialising the value failed: {0}")]
    Serialize(String),
    /// The snapshot is larger than a mapping can address on this platform.
    #[error("snapshot of {len} bytes is too large")]
    TooLarge {
        /// The size asked for.
        len: u64,
    },
    /// The region has published [`Version::MAX`] versions.
    #[error("{path}: version space exhausted at {last}")]
    VersionsExhausted {
        /// The region's control file.
        path: PathBuf,
        /// The last version published.
        last: Version,
    },
    /// An I/O call failed (for example the shared-memory file system is full).
    #[error("{path}: {source}")]
    Io {
        /// The file being worked on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Reading (or waiting for) a snapshot failed. Nothing in the region changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No snapshot has been published to this region yet.
    #[error("{path}: nothing published yet")]
    NothingPublished {
        /// The region's control file.
        path: PathBuf,
    },
    /// The bytes of the snapshot do not match the checksum written with them.
    #[error(
        "{path}: checksum mismatch in {version}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// The buffer file holding the snapshot.
        path: PathBuf,
        /// The snapshot's version.
        version: Version,
        /// The CRC32C the writer stored.
        stored: u32,
        /// The CRC32C of the bytes read.
        computed: u32,
    },
    /// The bytes of the snapshot are not a valid archive of the reader's type.
    #[error("{path}: {version} is not a valid archive of the requested type: {message}")]
    Invalid {
        /// The buffer file holding the snapshot.
        path: PathBuf,
        /// The snapshot's version.
        version: Version,
        /// What the validator reported.
        message: String,
    },
    /// A buffer file is shorter than the snapshot it should hold.
    #[error("{path}: truncated: {len} bytes, {version} needs {needed}")]
    Truncated {
        /// The buffer file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The snapshot's version.
        version: Version,
        /// The length the snapshot needs.
        needed: u64,
    },
    /// A shared word or buffer descriptor holds a value no correct writer stores.
    #[error("{path}: corrupt region: {detail}")]
    Corrupt {
        /// The region's control file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An I/O call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file being worked on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`WriteError`].
    #[error(transparent)]
    Write(#[from] WriteError),
    /// See [`ReadError`].
    #[error(transparent)]
    Read(#[from] ReadError),
}
