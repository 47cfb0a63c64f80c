//! Where blobs live: the [`Store`] trait, [`Place`] and [`Location`].

use crate::error::StoreError;
use crate::key::Key;
use std::fmt;
use std::path::PathBuf;

/// One of the two kinds of place a blob can be stored in.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// Where cold objects are spilled. Spilled blobs are not synced and do
    /// not outlive the process: the store deletes any it finds at start.
    Spill,
    /// A named location whose blobs are durable and survive restarts.
    Persisted(&'a Location),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Spill => f.write_str("the spill area"),
            Place::Persisted(l) => write!(f, "location {:?}", l.as_str()),
        }
    }
}

/// The name of a persisted location: a relative path of `/`-separated
/// segments of ASCII letters, digits, `.`, `_` and `-`. A segment may not
/// start with `.` and may not be two lowercase hex digits (those name the
/// store's shard directories).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location(String);

impl Location {
    /// Checks a location name.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadLocation`] saying which rule the name breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        let why = if name.is_empty() {
            Some("empty")
        } else if name.len() > 1024 {
            Some("longer than 1024 bytes")
        } else {
            name.split('/').find_map(|seg| {
                if seg.is_empty() {
                    Some("empty segment (leading, trailing or double `/`)")
                } else if seg.starts_with('.') {
                    Some("a segment starts with `.`")
                } else if !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                {
                    Some("only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed")
                } else if is_shard_name(seg) {
                    Some("two lowercase hex digits name a shard directory")
                } else {
                    None
                }
            })
        };
        match why {
            Some(why) => Err(StoreError::BadLocation { name, why }),
            None => Ok(Location(name)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn is_shard_name(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a location holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Keys of the blobs stored there, in ascending order.
    pub keys: Vec<Key>,
    /// Files the store did not write. They are reported, never deleted.
    pub unknown: Vec<PathBuf>,
}

/// Blob storage under keys. Blobs are immutable: a key is written once,
/// read any number of times, and removed.
///
/// The calls block; the pool runs them off async tasks.
pub trait Store: Send + Sync + 'static {
    /// Stores `bytes` under `key`. In a persisted location the blob is
    /// durable when this returns, and writing a key that is already there
    /// does nothing (the bytes of a key never change).
    ///
    /// # Errors
    ///
    /// The I/O failure, classified; nothing is left under the key.
    fn write(&self, place: Place<'_>, key: Key, bytes: &[u8]) -> Result<(), StoreError>;

    /// Stores under `key` in `to` the blob stored under `key` in `from`,
    /// with the guarantees of [`write`](Store::write) for `to`. The default
    /// reads and writes; a store may do better (the file store links).
    ///
    /// # Errors
    ///
    /// As [`read`](Store::read) and [`write`](Store::write).
    fn copy(&self, from: Place<'_>, to: Place<'_>, key: Key) -> Result<(), StoreError> {
        let bytes = self.read(from, key)?;
        self.write(to, key, &bytes)
    }

    /// The bytes stored under `key`, checked against their checksum.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Corrupt`], or an I/O failure.
    fn read(&self, place: Place<'_>, key: Key) -> Result<Vec<u8>, StoreError>;

    /// Whether a blob is stored under `key` (without reading it).
    ///
    /// # Errors
    ///
    /// An I/O failure other than the blob's absence.
    fn contains(&self, place: Place<'_>, key: Key) -> Result<bool, StoreError>;

    /// Stores `bytes` under `key` in the spill area, reusing the stale
    /// spilled blob `stale` (one the pool would otherwise remove) if the
    /// store can; returns whether it did, so that the pool removes `stale`
    /// itself otherwise. The default just writes. The file store renames
    /// the stale file and overwrites it: creating a file just after
    /// deleting another is what dominates a busy spill area on ext4
    /// (finding a free inode not recently deleted took over half the time
    /// of sustained writes, measured with `perf`).
    ///
    /// # Errors
    ///
    /// As [`write`](Store::write).
    fn respill(&self, stale: Key, key: Key, bytes: &[u8]) -> Result<bool, StoreError> {
        let _ = stale;
        self.write(Place::Spill, key, bytes).map(|()| false)
    }

    /// Removes the blob under `key`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// An I/O failure other than the blob's absence.
    fn remove(&self, place: Place<'_>, key: Key) -> Result<bool, StoreError>;

    /// The keys stored in a location, and any files there that are not
    /// blobs.
    ///
    /// # Errors
    ///
    /// An I/O failure reading the location's directories.
    fn list(&self, location: &Location) -> Result<Listing, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_are_checked() {
        for good in ["a", "docs", "x/y.z/w_1-2", "A1", "abc"] {
            assert_eq!(Location::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "", "/a", "a/", "a//b", ".", "..", "a/../b", ".hidden", "a b", "a\\b", "ab", "x/0f",
            "é",
        ] {
            assert!(
                matches!(Location::new(bad), Err(StoreError::BadLocation { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
