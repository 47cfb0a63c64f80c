//! The value the multi-process tests publish, shared with their helper
//! binary (`src/bin/helper.rs`, which includes this file): a snapshot
//! written by one process is checked by another with the same code.

/// A snapshot whose parts all derive from `seq`: any mix of two snapshots, or
/// any byte overwritten mid-read, fails [`check`].
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub(crate) struct Stamped {
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u64>,
    pub(crate) sum: u64,
}

impl Stamped {
    /// A value of a length that varies with `seq` (1 to `max_len` words), so
    /// buffers grow and shrink while readers read.
    pub(crate) fn new(seq: u64, max_len: usize) -> Self {
        let len = 1 + (seq.wrapping_mul(2_654_435_761) % max_len as u64) as usize;
        let payload: Vec<u64> = (0..len as u64).map(|i| mix(seq, i)).collect();
        let sum = payload.iter().fold(seq, |a, &b| a.wrapping_add(b));
        Self { seq, payload, sum }
    }
}

fn mix(seq: u64, i: u64) -> u64 {
    (seq ^ (i << 32))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

/// Checks an archived `Stamped` in place. Returns its `seq`.
pub(crate) fn check(value: &ArchivedStamped) -> Result<u64, String> {
    let seq = value.seq.to_native();
    let mut sum = seq;
    for (i, word) in value.payload.iter().enumerate() {
        let word = word.to_native();
        if word != mix(seq, i as u64) {
            return Err(format!(
                "seq {seq}: word {i} is {word:#x}, not from this snapshot"
            ));
        }
        sum = sum.wrapping_add(word);
    }
    if sum != value.sum.to_native() {
        return Err(format!("seq {seq}: sum mismatch"));
    }
    Ok(seq)
}
