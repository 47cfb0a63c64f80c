//! The blob file format: a 24-byte header, then the payload.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `SMCB` |
//! | 4 | 4 | format version (1), little endian |
//! | 8 | 8 | payload length, little endian |
//! | 16 | 4 | CRC32C of the payload |
//! | 20 | 4 | CRC32C of bytes 0..20 |
//!
//! `FORMAT.md` in this crate has the reasoning: the order of the checks,
//! what a damaged blob does, and the rule for a later version.

pub(crate) const MAGIC: [u8; 4] = *b"SMCB";
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 24;

pub(crate) fn header(payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..8].copy_from_slice(&VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[16..20].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let crc = crc32c::crc32c(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Recomputes both checksums of a blob file's bytes over what they hold
/// now, leaving the length field as it is. Bytes shorter than a header are
/// left as they are.
pub(crate) fn reseal(file: &mut [u8]) {
    if file.len() < HEADER_LEN {
        return;
    }
    let payload_crc = crc32c::crc32c(&file[HEADER_LEN..]);
    file[16..20].copy_from_slice(&payload_crc.to_le_bytes());
    let crc = crc32c::crc32c(&file[0..20]);
    file[20..24].copy_from_slice(&crc.to_le_bytes());
}

/// A valid header's payload length and payload CRC.
pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(u64, u32), String> {
    if h[0..4] != MAGIC {
        return Err("wrong magic".into());
    }
    let stored = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if crc32c::crc32c(&h[0..20]) != stored {
        return Err("header checksum mismatch".into());
    }
    let version = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if version != VERSION {
        return Err(format!(
            "format version {version}, this build reads {VERSION}"
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&h[8..16]);
    Ok((
        u64::from_le_bytes(len),
        u32::from_le_bytes([h[16], h[17], h[18], h[19]]),
    ))
}
