//! Entry points for the fuzz targets in `tests/fuzz.rs`: thin wrappers over
//! the decoders that read bytes this side did not write (frames as read
//! from a socket, the handshake, the messages a node or a client decodes,
//! a mirror's file), plus the encoders and checksum fixers the targets need
//! to make seeds and to let edits reach past a checksum.
//!
//! **Not a stable API.** Hidden from the docs; it changes whenever the
//! decoders do, in any release. Use the crate through [`crate::Client`]
//! and [`crate::Mirror`].

use crate::MirrorFileError;
use crate::mirror::file as mirror_file;
use crate::network::ConnectionError;
use crate::network::frame::{self, FrameReader, HEADER_LEN};
use crate::network::handshake::{self, Hello, Welcome};
use crate::protocol::{Call, ClientRequest, Push, Response, call_bytes};
use serde::Serialize;
use serde::de::DeserializeOwned;
use statemesh_core::{Identity, Mirrored};
use std::path::Path;
use std::time::Duration;

pub use crate::network::frame::{Frame, FrameError, Kind};

/// A whole frame, as a connection writes it.
#[must_use]
pub fn encode_frame(id: u64, kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode(id, kind, payload, &mut out);
    out
}

/// How the frames of one stream were read: every frame up to the first
/// error, and that error (`Closed` at a clean end).
#[derive(Debug)]
pub struct Frames {
    /// The frames read, in order.
    pub frames: Vec<Frame>,
    /// What ended the reading.
    pub end: FrameError,
}

/// Reads `bytes` as a stream of frames both ways a connection does: with
/// [`frame::read`] (the handshake) and with a [`FrameReader`] (a session),
/// each until its first error. Payloads are capped at `max`; a frame
/// started must finish within `stall`.
pub async fn read_frames(bytes: &[u8], max: usize, stall: Duration) -> (Frames, Frames) {
    let mut exact = Frames {
        frames: Vec::new(),
        end: FrameError::Closed,
    };
    let mut r = bytes;
    loop {
        match frame::read(&mut r, max, stall).await {
            Ok(f) => exact.frames.push(f),
            Err(e) => {
                exact.end = e;
                break;
            }
        }
    }
    let mut chunked = Frames {
        frames: Vec::new(),
        end: FrameError::Closed,
    };
    let mut reader = FrameReader::new(bytes);
    loop {
        match reader.next(max, stall).await {
            Ok(f) => chunked.frames.push(f),
            Err(e) => {
                chunked.end = e;
                break;
            }
        }
    }
    (exact, chunked)
}

/// Fixes the checksum of each frame in `bytes`, as far as the length
/// fields delimit whole frames, so that edits reach the kind and payload.
pub fn reseal_frames(bytes: &mut [u8]) {
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + HEADER_LEN) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(end) = (at + HEADER_LEN).checked_add(len) else {
            return;
        };
        let Some(whole) = bytes.get(at..end) else {
            return;
        };
        let crc = crc32c::crc32c(&whole[8..]);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// A handshake frame's payload, as a side sends it.
#[must_use]
pub fn encode_handshake<T: Serialize>(body: &T) -> Vec<u8> {
    handshake::encode(body)
}

/// The first frame's payload as a node's listener decodes it.
///
/// # Errors
///
/// As the listener refuses it.
pub fn decode_hello(payload: &[u8]) -> Result<Hello, ConnectionError> {
    handshake::decode(payload)
}

/// The answer to a hello, as a connecting side decodes it.
///
/// # Errors
///
/// As the connecting side refuses it.
pub fn decode_welcome(payload: &[u8]) -> Result<Welcome, ConnectionError> {
    handshake::decode(payload)
}

/// A request frame's payload, as a client encodes it: the time left, then
/// the request encoded once.
#[must_use]
pub fn encode_call(timeout_ms: u64, request: &ClientRequest) -> Vec<u8> {
    call_bytes(
        timeout_ms,
        &postcard::to_allocvec(request).unwrap_or_default(),
    )
}

/// A request frame's payload, as a node's server decodes it.
///
/// # Errors
///
/// The decoder's complaint, which the server answers as a bad request.
pub fn decode_call(payload: &[u8]) -> Result<Call, String> {
    statemesh_core::decode::from_bytes(payload).map_err(|e| e.to_string())
}

/// A subscribe frame's payload, as a node's server decodes it.
///
/// # Errors
///
/// As [`decode_call`].
pub fn decode_subscription(payload: &[u8]) -> Result<ClientRequest, String> {
    statemesh_core::decode::from_bytes(payload).map_err(|e| e.to_string())
}

/// A reply frame's payload, as a client decodes it (an answer, or the end
/// of a subscription).
///
/// # Errors
///
/// The decoder's complaint, which the client reports as a decode error.
pub fn decode_response(payload: &[u8]) -> Result<Response, String> {
    statemesh_core::decode::from_bytes(payload).map_err(|e| e.to_string())
}

/// A push, decoded as a mirror of `SM` decodes it before applying it.
#[derive(Debug)]
pub enum DecodedPush<SM: Mirrored> {
    /// A whole state.
    Full {
        /// Its version.
        version: u64,
        /// The state.
        state: SM::Snapshot,
    },
    /// Changes, every part decoded.
    Diff {
        /// The version they start from.
        from: u64,
        /// The version they take a copy to.
        to: u64,
        /// The changes, in order.
        changes: Vec<SM::Change>,
    },
}

/// A push frame's payload, decoded as the mirror's follower does: the
/// push, then its state or each part of its changes.
///
/// # Errors
///
/// The decoder's complaint, which the mirror reports as a decode error.
pub fn decode_push<SM: Mirrored>(payload: &[u8]) -> Result<DecodedPush<SM>, String> {
    let decode = |e: postcard::Error| e.to_string();
    match statemesh_core::decode::from_bytes::<Push>(payload).map_err(decode)? {
        Push::Full { version, state, .. } => Ok(DecodedPush::Full {
            version,
            state: statemesh_core::decode::from_bytes(state).map_err(decode)?,
        }),
        Push::Diff { from, to, parts } => {
            let mut changes = Vec::new();
            for part in parts {
                changes.extend(
                    statemesh_core::decode::from_bytes::<Vec<SM::Change>>(part).map_err(decode)?,
                );
            }
            Ok(DecodedPush::Diff { from, to, changes })
        }
    }
}

/// The file in `dir` a mirror keeps its copy in.
#[must_use]
pub fn mirror_file_path(dir: &Path) -> std::path::PathBuf {
    mirror_file::path(dir)
}

/// Writes a mirror's copy to `dir`, as a mirror does.
///
/// # Errors
///
/// As the mirror's own write.
pub fn store_mirror_file<S: Serialize>(
    dir: &Path,
    identity: Identity,
    version: u64,
    state: &S,
) -> Result<(), MirrorFileError> {
    mirror_file::store(dir, identity, version, state)
}

/// Reads the mirror's copy in `dir`, as a mirror that starts does.
///
/// # Errors
///
/// As the mirror's own read.
pub fn load_mirror_file<S: DeserializeOwned>(
    dir: &Path,
    identity: Identity,
) -> Result<Option<(u64, S)>, MirrorFileError> {
    mirror_file::load(dir, identity)
}

/// Sets a mirror file's length and checksum to those of the payload it
/// has, so that edits reach the decoder.
pub fn reseal_mirror_file(bytes: &mut [u8]) {
    if bytes.len() < 24 {
        return;
    }
    let len = bytes.len() as u64 - 24;
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    let crc = mirror_file::checksum(bytes);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// `state` at `version` as a node publishes it to shared memory for local
/// readers: the archive a reader in another process validates.
///
/// # Errors
///
/// What publishing would refuse (a key published twice, over 4 GiB).
pub fn encode_published<SM: crate::local::Publish>(
    state: &SM::Snapshot,
    version: u64,
) -> Result<Vec<u8>, crate::local::LocalError> {
    crate::local::archived::<SM>(state, version, "fuzzed")
}

/// Reads a published archive as a local reader does: validation, the
/// entry checks, a lookup of every key, and every key and value decoded
/// as `K` and `V` (the way [`crate::local::LocalRead`] decodes them).
///
/// # Errors
///
/// The first check or decode that failed, in words.
pub fn read_published<K: DeserializeOwned, V: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(u64, Vec<(K, V)>), String> {
    let (version, entries) = crate::local::read_archived(bytes)?;
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
        statemesh_core::decode::from_bytes(bytes).map_err(|e| e.to_string())
    }
    let entries = entries
        .iter()
        .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
        .collect::<Result<_, String>>()?;
    Ok((version, entries))
}
