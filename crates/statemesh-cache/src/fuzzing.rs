//! What the fuzz targets in `tests/fuzz.rs` need from inside the crate.
//!
//! Not a stable API: for this crate's own tests, hidden from the
//! documentation, and free to change in any release.

/// Recomputes both checksums of a blob file's bytes (the payload's and the
/// header's), so that edits of the payload reach the codec instead of all
/// stopping at the checksum. The length field is left as edited. Bytes
/// shorter than a header are left as they are.
pub fn reseal_blob(bytes: &mut [u8]) {
    crate::blob::reseal(bytes);
}
