//! Errors, one enum per operation, each convertible into [`Error`].

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Opening (recovering) a log failed. Recovery decides before it changes
/// anything: whatever the variant, every file is as it was before the open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another open log in this one) holds the directory.
    #[error("{path}: the log is already open in another process")]
    Locked {
        /// The log directory.
        path: PathBuf,
    },
    /// A file that should be a segment does not start with the segment magic.
    #[error("{path}: not a statemesh-wal segment (bad magic)")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// A segment or metadata file of another format version.
    #[error(
        "{path}: format version {found} is not supported (this build reads {supported}); nothing was changed"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A segment header fails its checksum, is short, or names another index.
    #[error("{path}: corrupt segment header: {detail}; nothing was changed")]
    CorruptHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Damage inside the log: bytes that are not a valid record or marker
    /// where the log says durable data lies (see `FORMAT.md` for where that
    /// is). Nothing was changed. Open with `WalOptions::repair(true)` to cut
    /// the log at the last good record, dropping what follows.
    #[error(
        "{path}: corrupt record at offset {offset} (expected index {index}); nothing was changed (WalOptions::repair would cut the log there, dropping index {index} and everything after it)"
    )]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the first bad byte's item.
        offset: u64,
        /// The index the bad record should have had.
        index: u64,
    },
    /// A segment is shorter than the size it was created with: its end was
    /// cut off outside the log's control. Nothing was changed.
    #[error(
        "{path}: {len} bytes, but the segment was created with {expected}: its end is missing; nothing was changed (WalOptions::repair would keep what it still holds)"
    )]
    Truncated {
        /// The segment.
        path: PathBuf,
        /// Its length now.
        len: u64,
        /// The length it was created with.
        expected: u64,
    },
    /// A segment that the log needs is missing: between two segments, at
    /// the start (the metadata records no purge that far), or at the end
    /// (the metadata records a newer segment). Nothing was changed.
    #[error("{path}: missing: the log needs a segment holding index {expected}{}", match found {
        Some(found) => format!(", but the next segment found starts at {found}"),
        None => ", and no segment after it was found".to_owned(),
    })]
    MissingSegment {
        /// The missing segment (named after `expected`) when its name is
        /// known, otherwise the first segment found after the gap.
        path: PathBuf,
        /// The first index missing.
        expected: u64,
        /// The first index of the segment after the gap, if there is one.
        found: Option<u64>,
    },
    /// The metadata says entries up to `committed` were committed, but the
    /// log (after cutting a torn end, or with repair) would end before them:
    /// acknowledged entries are missing. Nothing was changed.
    #[error(
        "{path}: entries up to {committed} were committed but the log ends at {}; nothing was changed", match last { Some(l) => l.to_string(), None => "no entry".to_owned() }
    )]
    Lost {
        /// The log directory.
        path: PathBuf,
        /// The committed index recorded in the metadata.
        committed: u64,
        /// The last index the log would keep, if any.
        last: Option<u64>,
    },
    /// The metadata file exists but cannot be trusted: neither of its slots
    /// is valid, or they contradict each other.
    #[error("{path}: metadata is corrupt: {detail}; nothing was changed")]
    CorruptMeta {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Segments exist but the metadata file does not: the vote and the
    /// purge point are gone, and opening would forget them.
    #[error("{path}: missing, but the directory holds segments of a log; nothing was changed")]
    MissingMeta {
        /// The metadata file's path.
        path: PathBuf,
    },
    /// An option is out of its documented range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// An I/O call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Appending failed; the entries are not in the log (or, for `Failed`, it is
/// unknown whether they reached the disk, and the log takes no more writes).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// A write or sync failed earlier or now. After a failed `fdatasync` the
    /// kernel may have dropped the dirty pages, so retrying could claim
    /// durability falsely: the log refuses all writes until it is reopened,
    /// and recovery then finds what really is on disk.
    #[error("the log failed and takes no more writes: {0}")]
    Failed(Arc<io::Error>),
    /// An entry exceeds the largest record (4 GiB - 1).
    #[error("entry of {len} bytes exceeds the largest record")]
    TooLarge {
        /// The entry's size.
        len: u64,
    },
    /// The caller named an index that does not follow the log's last.
    #[error("append at index {given}, but the next index is {expected}")]
    NotContiguous {
        /// The index given.
        given: u64,
        /// The index that would follow.
        expected: u64,
    },
    /// The entries would need an index past the largest, `u64::MAX - 1`
    /// (the log keeps one past its last index, which must fit a `u64`).
    #[error("{count} entries from index {first} would pass the largest index, u64::MAX - 1")]
    IndexOverflow {
        /// The index the first entry would get.
        first: u64,
        /// How many entries.
        count: u64,
    },
    /// The log is closing.
    #[error("the log is closed")]
    Closed,
}

/// Reading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The record read back does not match its checksum or index.
    #[error("{path}: record {index} at offset {offset} fails its checksum")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// The index read.
        index: u64,
        /// Its offset.
        offset: u64,
    },
    /// An I/O call failed.
    #[error("{path}: {source}")]
    Io {
        /// The segment.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Truncating, purging or saving metadata failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The index is outside what the operation accepts.
    #[error("index {index} is out of range {first}..={next}")]
    OutOfRange {
        /// The index given.
        index: u64,
        /// The first index still in the log.
        first: u64,
        /// The next index to be appended.
        next: u64,
    },
    /// A purge up to `u64::MAX`: the next entry would need an index past
    /// the largest, `u64::MAX - 1`.
    #[error(
        "a purge up to {index} leaves no index for the next entry (the largest is u64::MAX - 1)"
    )]
    IndexOverflow {
        /// The index given.
        index: u64,
    },
    /// The metadata does not fit its slot.
    #[error("metadata of {len} bytes exceeds {max}")]
    MetaTooLarge {
        /// Its encoded size.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// See [`AppendError::Failed`].
    #[error("the log failed and takes no more writes: {0}")]
    Failed(Arc<io::Error>),
    /// The log is closing.
    #[error("the log is closed")]
    Closed,
}

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`AppendError`].
    #[error(transparent)]
    Append(#[from] AppendError),
    /// See [`ReadError`].
    #[error(transparent)]
    Read(#[from] ReadError),
    /// See [`UpdateError`].
    #[error(transparent)]
    Update(#[from] UpdateError),
}
