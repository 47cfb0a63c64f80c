//! Entry points for the fuzz targets in `tests/fuzz.rs`: thin wrappers over
//! the decoders that read bytes another node sent (the peer messages a node
//! decodes on receipt, and the Raft entries it applies from them) and the
//! snapshot file (its own, and one installed from a leader), plus the
//! encoders and checksum fixers the targets need to make seeds and to let
//! edits reach past a checksum.
//!
//! **Not a stable API.** Hidden from the docs; it changes whenever the
//! decoders do, in any release. Use the crate through [`crate::Node`].

use crate::group::fuzzing as group;
use std::path::Path;

pub use group::{SnapshotKind, Snapshots};

/// Peer requests as nodes send them: one of each kind, the Raft ones with
/// entries of each payload (a batch of stamped commands, a membership, a
/// blank) and a snapshot chunk.
#[must_use]
pub fn envelope_seeds() -> Vec<Vec<u8>> {
    group::envelope_seeds()
}

/// Peer replies as nodes send them: one of each kind, successes and
/// refusals.
#[must_use]
pub fn reply_seeds() -> Vec<Vec<u8>> {
    group::reply_seeds()
}

/// A request as a node decodes it on receipt, and the payload of each
/// entry it carries as the state machine decodes it when applying it.
/// Returns the request encoded again.
///
/// # Errors
///
/// The decoder's complaint, which the node answers as a bad request.
pub fn decode_envelope(bytes: &[u8]) -> Result<Vec<u8>, String> {
    group::decode_envelope(bytes)
}

/// A reply as the asking node decodes it. Returns it encoded again.
///
/// # Errors
///
/// The decoder's complaint, which the asking node takes as a lost reply.
pub fn decode_reply(bytes: &[u8]) -> Result<Vec<u8>, String> {
    group::decode_reply(bytes)
}

/// Sets a snapshot stream's trailer to the checksum of its bytes and each
/// blob's digest to that of its bytes, as far as the lengths delimit them,
/// so that edits reach the metadata, the blobs and the state.
pub fn reseal_snapshot(bytes: &mut [u8]) {
    group::reseal_snapshot(bytes);
}

/// Makes a place for snapshots in `dir` (a cache of large values with a
/// low threshold, so that the seeds refer to cached values).
///
/// # Errors
///
/// The cache could not be opened.
pub fn snapshots(dir: &Path) -> Result<Snapshots, String> {
    Snapshots::open(dir)
}
