//! A mirror's copy on disk, so that a restarted mirror resumes from its
//! version instead of receiving the whole state again.
//!
//! ```text
//! 0          8          12         16         24
//! | magic    | format   | crc      | len      | payload (len bytes) |
//!  "STMMIRR\0" u32 LE     u32 LE     u64 LE
//! payload = postcard (identity, version, the state's snapshot)
//! ```
//!
//! `crc` is the CRC32C of the payload. The file is written whole under a
//! temporary name, synced and renamed over the old one, so a crash leaves
//! the old copy or the new one, never a mix.

use serde::Serialize;
use serde::de::DeserializeOwned;
use statemesh_core::Identity;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"STMMIRR\0";
const FORMAT: u32 = 1;
const HEADER: usize = 24;
const NAME: &str = "mirror.state";

/// Why a mirror's copy could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a mirror's copy, or is damaged.
    #[error("{path} is not a usable mirror copy: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds a copy of another collection (name, type or initial
    /// state differ).
    #[error("{path} holds a copy of collection {theirs}, not {ours}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// The identity asked for.
        ours: Identity,
        /// The file's.
        theirs: Identity,
    },
}

/// The file in `dir` a mirror keeps its copy in.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(NAME)
}

/// Reads the copy in `dir` of the collection `identity`: its version and
/// state, or `None` if there is none yet.
pub(crate) fn load<S: DeserializeOwned>(
    dir: &Path,
    identity: Identity,
) -> Result<Option<(u64, S)>, MirrorFileError> {
    let path = path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MirrorFileError::Io { path, source }),
    };
    let corrupt = |reason: String| MirrorFileError::Corrupt {
        path: path.clone(),
        reason,
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(corrupt("no mirror header".into()));
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if word(8) != FORMAT {
        return Err(corrupt(format!(
            "format {} (this build reads {FORMAT})",
            word(8)
        )));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(len);
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(corrupt(format!(
            "{} bytes of payload where the header says {len}",
            payload.len()
        )));
    }
    if crc32c::crc32c(payload) != word(12) {
        return Err(corrupt("checksum mismatch".into()));
    }
    let (theirs, version, state): (Identity, u64, S) = statemesh_core::decode::from_bytes(payload)
        .map_err(|e| corrupt(format!("undecodable: {e}")))?;
    if theirs != identity {
        return Err(MirrorFileError::Identity {
            path,
            ours: identity,
            theirs,
        });
    }
    Ok(Some((version, state)))
}

/// Replaces the copy in `dir` with `state` at `version`.
pub(crate) fn store<S: Serialize>(
    dir: &Path,
    identity: Identity,
    version: u64,
    state: &S,
) -> Result<(), MirrorFileError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| MirrorFileError::Io { path, source }
    };
    let payload = postcard::to_allocvec(&(identity, version, state)).map_err(|e| {
        MirrorFileError::Corrupt {
            path: path(dir),
            reason: format!("the state does not encode: {e}"),
        }
    })?;
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!("{NAME}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&bytes).map_err(io(&tmp))?;
    f.sync_data().map_err(io(&tmp))?;
    drop(f);
    let target = path(dir);
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::new("m", "Map", b"");
        assert!(load::<Vec<u32>>(dir.path(), id).unwrap().is_none());
        store(dir.path(), id, 7, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(
            load::<Vec<u32>>(dir.path(), id).unwrap(),
            Some((7, vec![1, 2, 3]))
        );
        let other = Identity::new("n", "Map", b"");
        assert!(matches!(
            load::<Vec<u32>>(dir.path(), other),
            Err(MirrorFileError::Identity { .. })
        ));
        let file = path(dir.path());
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(matches!(
            load::<Vec<u32>>(dir.path(), id),
            Err(MirrorFileError::Corrupt { .. })
        ));
        std::fs::write(&file, &bytes[..30]).unwrap();
        assert!(matches!(
            load::<Vec<u32>>(dir.path(), id),
            Err(MirrorFileError::Corrupt { .. })
        ));
        std::fs::write(&file, b"short").unwrap();
        assert!(matches!(
            load::<Vec<u32>>(dir.path(), id),
            Err(MirrorFileError::Corrupt { .. })
        ));
    }
}
