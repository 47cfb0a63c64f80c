//! What the fuzz targets in `tests/fuzz.rs` need from inside the crate.
//!
//! Not a stable API: for this crate's own tests, hidden from the
//! documentation, and free to change in any release.

/// Recomputes the header checksum of a control file's bytes, so that edits
/// of the geometry and the region id reach the checks behind the checksum
/// instead of all stopping at it. Bytes shorter than a header are left as
/// they are.
pub fn reseal_control_header(bytes: &mut [u8]) {
    crate::layout::seal_header(bytes);
}
