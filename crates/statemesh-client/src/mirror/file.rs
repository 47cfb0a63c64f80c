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
//! `crc` is the CRC32C of every other byte: the header without it, then
//! the payload, so a damaged format or length reads as damage, never as
//! another format. Format 1 (checksum over the payload only) is still
//! read. The file is written whole under a
//! temporary name, synced and renamed over the old one, so a crash leaves
//! the old copy or the new one, never a mix.

use serde::Serialize;
use serde::de::DeserializeOwned;
use statemesh_core::Identity;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"STMMIRR\0";
/// What this build writes.
const FORMAT: u32 = 2;
/// The first format, whose checksum covers the payload only: still read.
const FORMAT_PAYLOAD_CRC: u32 = 1;
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
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(len);
    let payload = &bytes[HEADER..];
    // A torn file says so; any other damage fails the checksum, which
    // covers the format, so an unknown format is a real one.
    if payload.len() as u64 != len {
        return Err(corrupt(format!(
            "{} bytes of payload where the header says {len}",
            payload.len()
        )));
    }
    if checksum(&bytes) != word(12) {
        return Err(corrupt("checksum mismatch".into()));
    }
    if word(8) != FORMAT && word(8) != FORMAT_PAYLOAD_CRC {
        return Err(corrupt(format!(
            "format {} (this build reads {FORMAT_PAYLOAD_CRC} and {FORMAT})",
            word(8)
        )));
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

/// The checksum a file's header should hold: over the payload in format
/// 1, over the rest of the header and the payload since.
pub(crate) fn checksum(file: &[u8]) -> u32 {
    let (header, payload) = file.split_at(HEADER.min(file.len()));
    if header.get(8..12) == Some(FORMAT_PAYLOAD_CRC.to_le_bytes().as_slice()) {
        return crc32c::crc32c(payload);
    }
    let head = crc32c::crc32c(header.get(..12).unwrap_or(header));
    let head = crc32c::crc32c_append(head, header.get(16..).unwrap_or_default());
    crc32c::crc32c_append(head, payload)
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
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let crc = checksum(&bytes);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
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
    fn files_of_the_first_format_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::new("m", "Map", b"");
        let payload = postcard::to_allocvec(&(id, 9u64, vec![4u32])).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(path(dir.path()), &bytes).unwrap();
        assert_eq!(load(dir.path(), id).unwrap(), Some((9, vec![4u32])));
    }

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
        // A damaged format is damage, not another format; a damaged
        // length, a torn file.
        for (at, says) in [(8, "checksum mismatch"), (17, "where the header says")] {
            let mut header = bytes.clone();
            header[last] ^= 1;
            header[at] ^= 1;
            std::fs::write(&file, &header).unwrap();
            let e = load::<Vec<u32>>(dir.path(), id).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
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
