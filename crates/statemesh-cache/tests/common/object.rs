//! Object contents, shared with the crash test's helper binary
//! (`src/bin/helper.rs`, which includes this file): the bytes the helper
//! persists are checked here against the same function.

/// Bytes of object `i`, `len` long, different for every `i`.
pub(crate) fn object(i: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
