//! The driver of every fuzz target: a decoder that reads bytes it did not
//! write is handed valid encodings changed by a few random edits (and, now
//! and then, bytes with no seed at all), and must return without panicking.
//!
//! Starting from valid encodings matters: random bytes rarely get past a
//! format's magic and checksum, so they test the first ten lines of a
//! decoder. A target that wants the edits to reach what a checksum guards
//! passes a `reseal` that recomputes it after the edits.
//!
//! The run is bounded by time: `STATEMESH_FUZZ_SECS` seconds per target
//! (default 1, what CI runs; `scripts/fuzz.sh` runs longer). Each target
//! prints how many inputs it ran. A failure prints the input and bolero's
//! `BOLERO_RANDOM_SEED`, which replays it; keep the input as a regression
//! test beside the target.

use bolero::generator::TypeGenerator;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One change to an encoding, at an offset taken modulo its length.
#[derive(Debug, Clone, TypeGenerator)]
pub enum Edit {
    /// Flip one bit.
    Flip {
        /// Where.
        at: u32,
        /// Which bit (modulo 8).
        bit: u8,
    },
    /// Overwrite one byte.
    Set {
        /// Where.
        at: u32,
        /// The new byte.
        byte: u8,
    },
    /// Overwrite four bytes with a little-endian number (lengths, counts,
    /// offsets: where decoders trust what they read).
    Word {
        /// Where.
        at: u32,
        /// The number.
        value: u32,
    },
    /// Cut the encoding short.
    Truncate {
        /// The new length.
        at: u32,
    },
    /// Insert bytes.
    Insert {
        /// Where.
        at: u32,
        /// What.
        bytes: Vec<u8>,
    },
    /// Remove up to `len` bytes.
    Remove {
        /// Where.
        at: u32,
        /// How many.
        len: u8,
    },
}

impl Edit {
    /// Applies this edit to `bytes`.
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        let at = |at: u32, len: usize| if len == 0 { 0 } else { at as usize % (len + 1) };
        match self {
            Edit::Flip { at: a, bit } if !bytes.is_empty() => {
                let i = *a as usize % bytes.len();
                bytes[i] ^= 1 << (bit % 8);
            }
            Edit::Set { at: a, byte } if !bytes.is_empty() => {
                let i = *a as usize % bytes.len();
                bytes[i] = *byte;
            }
            Edit::Word { at: a, value } if bytes.len() >= 4 => {
                let i = *a as usize % (bytes.len() - 3);
                bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
            Edit::Truncate { at: a } => bytes.truncate(at(*a, bytes.len())),
            Edit::Insert { at: a, bytes: new } => {
                let i = at(*a, bytes.len());
                bytes.splice(i..i, new.iter().copied());
            }
            Edit::Remove { at: a, len } => {
                let i = at(*a, bytes.len());
                let end = (i + *len as usize).min(bytes.len());
                bytes.drain(i..end);
            }
            _ => {}
        }
    }
}

/// How long each target runs.
#[must_use]
pub fn duration() -> Duration {
    std::env::var("STATEMESH_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
}

/// Runs target `name`: `decode` gets edited copies of `seeds` (and raw
/// random bytes) until the time is up, and must not panic. Returns how
/// many inputs it ran.
///
/// # Panics
///
/// When `decode` panics on some input (bolero prints the input), or when
/// `seeds` is empty.
pub fn run(name: &str, seeds: &[Vec<u8>], decode: impl Fn(&[u8])) -> u64 {
    run_resealed(name, seeds, |_| {}, decode)
}

/// Like [`run`], with `reseal` applied after the edits (for example to
/// recompute a checksum), so that the edits reach what it guards. Half
/// the inputs are resealed, half left as edited.
///
/// # Panics
///
/// As [`run`].
pub fn run_resealed(
    name: &str,
    seeds: &[Vec<u8>],
    reseal: impl Fn(&mut Vec<u8>),
    decode: impl Fn(&[u8]),
) -> u64 {
    assert!(!seeds.is_empty(), "fuzz target {name} needs a valid seed");
    let runs = AtomicU64::new(0);
    let started = Instant::now();
    // A panic fails the run, so whatever the closures hold is never seen
    // half-updated afterwards.
    let (reseal, decode) = (AssertUnwindSafe(reseal), AssertUnwindSafe(decode));
    // `check!` returns early under a fuzzing engine, so it needs a
    // function of its own.
    let drive = || {
        bolero::check!()
            .with_type::<(u16, bool, Vec<Edit>, Vec<u8>)>()
            .with_test_time(duration())
            .for_each(|(which, resealed, edits, raw)| {
                runs.fetch_add(1, Ordering::Relaxed);
                let mut input = Vec::new();
                // One input in sixteen is raw bytes: the decoder's first checks.
                if which % 16 == 15 {
                    input.extend_from_slice(raw);
                } else {
                    input.extend_from_slice(&seeds[*which as usize % seeds.len()]);
                    for edit in edits.iter().take(8) {
                        edit.apply(&mut input);
                    }
                    if *resealed {
                        (*reseal)(&mut input);
                    }
                }
                (*decode)(&input);
            });
    };
    drive();
    let runs = runs.into_inner();
    eprintln!(
        "fuzz {name}: {runs} inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_stay_in_bounds() {
        let edits = [
            Edit::Flip { at: 9, bit: 9 },
            Edit::Set { at: 100, byte: 1 },
            Edit::Word { at: 7, value: 1 },
            Edit::Insert {
                at: 99,
                bytes: vec![1, 2],
            },
            Edit::Remove { at: 3, len: 200 },
            Edit::Truncate { at: 2 },
        ];
        for len in 0..8 {
            let mut bytes = vec![0u8; len];
            for edit in &edits {
                edit.apply(&mut bytes);
            }
        }
        let mut bytes = vec![0u8; 4];
        Edit::Flip { at: 5, bit: 9 }.apply(&mut bytes);
        assert_eq!(bytes, [0, 2, 0, 0]);
    }

    #[test]
    fn a_panicking_decoder_fails_the_run() {
        let outcome = std::panic::catch_unwind(|| {
            run("panics", &[vec![1, 2, 3]], |bytes| {
                assert!(bytes.len() < 3 || bytes[0] == 1, "found it");
            })
        });
        assert!(outcome.is_err());
    }

    #[test]
    fn a_sound_decoder_runs_many_inputs() {
        assert!(run("sound", &[vec![1, 2, 3]], |_| {}) > 100);
    }
}
