//! The snapshot stream: one format for a group's own snapshot file and for
//! a snapshot sent to another node, read and written without holding the
//! cached values in memory.
//!
//! Layout (little-endian):
//!
//! ```text
//! magic      8 bytes   "SMSNAP\0\x03" (the last byte is the format version)
//! meta       u32 length, then the postcard encoding of openraft's metadata
//! blobs      u64 count, then per blob: u64 length, 32-byte SHA-256, bytes
//! state      u64 length, then the postcard encoding of the group's writer
//!            sessions followed by the state machine's snapshot
//! trailer    u32 CRC32C of every byte before it
//! ```
//!
//! A group's own file has no blobs: its cached values are persisted in the
//! group's cache location and the state refers to them by key. A snapshot
//! sent to another node carries them as blobs ahead of the state, which
//! refers to them by index, so the receiver has every blob in place before
//! it decodes the state.

use crate::large::{self, Blob, Context, ValueStore};
use crate::types::NodeId;
use openraft::BasicNode;
use openraft::storage::SnapshotMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use statemesh_cache::Location;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// What openraft records of a snapshot: the last entry it covers and the
/// membership then. The file's header holds it.
pub(crate) type Meta = SnapshotMeta<NodeId, BasicNode>;

const MAGIC: &[u8; 8] = b"SMSNAP\0\x03";
const TRAILER: u64 = 4;
/// The smallest well-formed stream: magic, three lengths, the trailer.
const SMALLEST: u64 = 8 + 4 + 8 + 8 + TRAILER;

/// Why a snapshot stream could not be read.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The file or the cache could not be read.
    Io(io::Error),
    /// The bytes are not a snapshot this node wrote or can take.
    Corrupt(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Corrupt(why) => write!(f, "damaged snapshot: {why}"),
        }
    }
}

/// A snapshot read back.
pub(crate) struct Loaded<S> {
    pub(crate) meta: Meta,
    pub(crate) state: S,
    /// The cache keys the state refers to (a group's own file only).
    pub(crate) keys: HashSet<u128>,
}

/// Which kind of stream is read, and where its values go.
pub(crate) enum Source<'a> {
    /// The group's own file: values by key in `location`.
    Local {
        store: Option<&'a ValueStore>,
        location: &'a Location,
    },
    /// A snapshot from another node: blobs go to the cache (and are
    /// persisted in `location`) if they pass the threshold.
    Received {
        store: Option<&'a ValueStore>,
        location: &'a Location,
    },
}

/// Encodes `state` for the group's own file: cached values are persisted
/// in `location` and referred to by key. Returns the encoding and the keys.
pub(crate) fn encode_local<S: Serialize>(
    state: &S,
    location: &Location,
) -> Result<(Vec<u8>, HashSet<u128>), io::Error> {
    let done = large::with_context(
        Context::WriteLocal {
            location: location.clone(),
            keys: HashSet::new(),
        },
        || postcard::to_allocvec(state),
    );
    let bytes = done.result.map_err(|e| encode_failure(&e, done.failure))?;
    let Context::WriteLocal { keys, .. } = done.context else {
        return Err(io::Error::other("the encoding context was lost"));
    };
    Ok((bytes, keys))
}

/// Encodes `state` for another node: cached values become blobs.
pub(crate) fn encode_transfer<S: Serialize>(state: &S) -> Result<(Vec<u8>, Vec<Blob>), io::Error> {
    let done = large::with_context(Context::WriteTransfer { blobs: Vec::new() }, || {
        postcard::to_allocvec(state)
    });
    let bytes = done.result.map_err(|e| encode_failure(&e, done.failure))?;
    let Context::WriteTransfer { blobs } = done.context else {
        return Err(io::Error::other("the encoding context was lost"));
    };
    Ok((bytes, blobs))
}

fn encode_failure(e: &postcard::Error, failure: Option<String>) -> io::Error {
    io::Error::other(format!(
        "the state does not encode: {}",
        failure.unwrap_or_else(|| e.to_string())
    ))
}

/// Writes a whole stream to `file` from its start (not synced).
pub(crate) fn write(file: &mut File, meta: &Meta, blobs: &[Blob], state: &[u8]) -> io::Result<()> {
    let meta = postcard::to_allocvec(meta).map_err(io::Error::other)?;
    let meta_len =
        u32::try_from(meta.len()).map_err(|_| io::Error::other("snapshot metadata over 4 GiB"))?;
    file.seek(SeekFrom::Start(0))?;
    file.set_len(0)?;
    let mut out = Crc {
        inner: BufWriter::with_capacity(1 << 20, &mut *file),
        crc: 0,
    };
    out.write_all(MAGIC)?;
    out.write_all(&meta_len.to_le_bytes())?;
    out.write_all(&meta)?;
    out.write_all(&(blobs.len() as u64).to_le_bytes())?;
    for blob in blobs {
        let bytes = blob.read().map_err(io::Error::other)?;
        out.write_all(&blob.len.to_le_bytes())?;
        out.write_all(&blob.digest)?;
        out.write_all(&bytes)?;
    }
    out.write_all(&(state.len() as u64).to_le_bytes())?;
    out.write_all(state)?;
    let crc = out.crc;
    out.inner.write_all(&crc.to_le_bytes())?;
    out.inner.flush()?;
    Ok(())
}

/// Reads a whole stream from `file`: checks its checksum first, then
/// places its blobs, then decodes the state.
pub(crate) fn read<S: DeserializeOwned>(
    file: &mut File,
    source: &Source<'_>,
) -> Result<Loaded<S>, LoadError> {
    let total = file.metadata().map_err(LoadError::Io)?.len();
    if total < SMALLEST {
        return Err(LoadError::Corrupt(format!(
            "{total} bytes, shorter than any snapshot"
        )));
    }
    check_crc(file, total)?;
    file.seek(SeekFrom::Start(0)).map_err(LoadError::Io)?;
    let mut input = Input {
        reader: BufReader::with_capacity(1 << 20, &mut *file),
        remaining: total - TRAILER,
    };
    let magic = input.bytes(8)?;
    if magic[..7] == MAGIC[..7] && magic[7] != MAGIC[7] {
        return Err(LoadError::Corrupt(format!(
            "format version {} (this build reads version {}): written by another \
             statemesh release",
            magic[7], MAGIC[7]
        )));
    }
    if magic != MAGIC {
        return Err(LoadError::Corrupt(
            "not a statemesh snapshot (wrong magic)".into(),
        ));
    }
    let meta_len = u64::from(input.u32()?);
    let meta: Meta = statemesh_core::decode::from_bytes(&input.bytes(meta_len)?)
        .map_err(|e| LoadError::Corrupt(format!("metadata does not decode: {e}")))?;
    let (store, location, local) = match *source {
        Source::Local { store, location } => (store, location, true),
        Source::Received { store, location } => (store, location, false),
    };
    let count = input.u64()?;
    if local && count != 0 {
        return Err(LoadError::Corrupt(format!(
            "a local snapshot with {count} blobs"
        )));
    }
    // Each blob needs at least its length and digest: a count past that
    // is damage, not a reason to reserve memory.
    if count > input.remaining / 40 {
        return Err(LoadError::Corrupt(format!(
            "{count} blobs in {} bytes",
            input.remaining
        )));
    }
    let mut blobs = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for index in 0..count {
        let len = input.u64()?;
        let digest: [u8; 32] = input
            .bytes(32)?
            .try_into()
            .map_err(|_| LoadError::Corrupt("short digest".into()))?;
        let bytes = input.bytes(len)?;
        if <[u8; 32]>::from(Sha256::digest(&bytes)) != digest {
            return Err(LoadError::Corrupt(format!(
                "blob {index} does not match its SHA-256"
            )));
        }
        // The pool keeps to its budget: past it, this insert spills first.
        blobs.push(Blob::received(store, Some(location), bytes, digest).map_err(io_other)?);
    }
    let state_len = input.u64()?;
    let state = input.bytes(state_len)?;
    if input.remaining != 0 {
        return Err(LoadError::Corrupt(format!(
            "{} bytes after the state",
            input.remaining
        )));
    }
    let context = if local {
        Context::ReadLocal {
            store: store.cloned(),
            location: location.clone(),
            keys: HashSet::new(),
        }
    } else {
        Context::ReadTransfer {
            store: store.cloned(),
            blobs,
        }
    };
    let done = large::with_context(context, || statemesh_core::decode::from_bytes::<S>(&state));
    let state = done.result.map_err(|e| {
        LoadError::Corrupt(format!(
            "state does not decode: {}",
            done.failure.unwrap_or_else(|| e.to_string())
        ))
    })?;
    let keys = match done.context {
        Context::ReadLocal { keys, .. } => keys,
        _ => HashSet::new(),
    };
    Ok(Loaded { meta, state, keys })
}

fn io_other(e: impl std::error::Error + Send + Sync + 'static) -> LoadError {
    LoadError::Io(io::Error::other(e))
}

fn check_crc(file: &mut File, total: u64) -> Result<(), LoadError> {
    file.seek(SeekFrom::Start(0)).map_err(LoadError::Io)?;
    let mut body = (&mut *file).take(total - TRAILER);
    let mut buf = vec![0; 1 << 20];
    let mut crc = 0;
    loop {
        let n = body.read(&mut buf).map_err(LoadError::Io)?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
    let mut trailer = [0; 4];
    file.read_exact(&mut trailer).map_err(LoadError::Io)?;
    if u32::from_le_bytes(trailer) == crc {
        Ok(())
    } else {
        Err(LoadError::Corrupt("checksum mismatch".into()))
    }
}

/// A writer that keeps the CRC32C of what passes through.
struct Crc<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The body of a stream, with what is left of it: a length read from the
/// file is checked against that before anything is allocated.
struct Input<R> {
    reader: R,
    remaining: u64,
}

impl<R: Read> Input<R> {
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, LoadError> {
        if n > self.remaining {
            return Err(LoadError::Corrupt(format!(
                "a length of {n} bytes with {} left",
                self.remaining
            )));
        }
        let mut buf = vec![0; usize::try_from(n).map_err(io_other)?];
        self.reader.read_exact(&mut buf).map_err(LoadError::Io)?;
        self.remaining -= n;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, LoadError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, LoadError> {
        let b = self.bytes(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::large::Large;
    use openraft::{BasicNode, StoredMembership};

    fn meta() -> Meta {
        Meta {
            last_log_id: None,
            last_membership: StoredMembership::<u64, BasicNode>::default(),
            snapshot_id: "t".into(),
        }
    }

    /// A received stream of one blob and a state of one `Large` pointing at
    /// it, with `tamper` applied to the bytes and the checksum redone (a
    /// peer that sends well-framed nonsense).
    fn received(tamper: impl FnOnce(&mut Vec<u8>)) -> Result<Loaded<Large<Vec<u8>>>, LoadError> {
        let value = Large::new(&vec![7u8; 100]).unwrap();
        let blob = Blob::received(
            None,
            None,
            postcard::to_allocvec(&vec![7u8; 100]).unwrap(),
            value.digest(),
        )
        .unwrap();
        let state = postcard::to_allocvec(&crate::large::tests_support::blob_ref(0)).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        write(&mut file, &meta(), &[blob], &state).unwrap();
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        bytes.truncate(bytes.len() - 4);
        tamper(&mut bytes);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let location = Location::new("t").unwrap();
        read(
            &mut file,
            &Source::Received {
                store: None,
                location: &location,
            },
        )
    }

    fn corrupt(r: Result<Loaded<Large<Vec<u8>>>, LoadError>) -> String {
        match r {
            Err(LoadError::Corrupt(why)) => why,
            Err(LoadError::Io(e)) => panic!("an I/O error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_received_blob_is_read_and_referred_to() {
        let loaded = received(|_| {}).unwrap();
        assert_eq!(loaded.state.blocking_load().unwrap(), vec![7u8; 100]);
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_is_refused() {
        // The blob's last byte is just before the state's length and state.
        let why = corrupt(received(|b| {
            let state_len = postcard::to_allocvec(&crate::large::tests_support::blob_ref(0))
                .unwrap()
                .len();
            let at = b.len() - state_len - 8 - 1;
            b[at] ^= 1;
        }));
        assert!(why.contains("SHA-256"), "{why}");
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_allocating() {
        // The blob count, then the first blob's length, set to 2^63.
        let meta_len = postcard::to_allocvec(&meta()).unwrap().len();
        let count_at = 8 + 4 + meta_len;
        let why = corrupt(received(|b| {
            b[count_at + 8..count_at + 16].copy_from_slice(&(1u64 << 63).to_le_bytes());
        }));
        assert!(why.contains("left"), "{why}");
        let why = corrupt(received(|b| {
            b[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        }));
        assert!(why.contains("blobs in"), "{why}");
    }

    #[test]
    fn a_reference_to_a_missing_blob_is_refused() {
        let why = corrupt(received(|b| {
            let n = b.len();
            // The state is the last byte: `Blob { index: 0 }` is [2, 0].
            b[n - 1] = 5;
        }));
        assert!(why.contains("blob 5"), "{why}");
    }
}
