//! Versions and how they are packed into the shared words.
//!
//! A published snapshot is named by a [`Version`]: a sequence number that
//! starts at 1 and grows by one with every publish. In shared memory the
//! version travels together with the index of the buffer that holds its bytes,
//! packed into one 64-bit word so that a single atomic load tells a reader
//! both *which* snapshot is current and *where* it lives:
//!
//! ```text
//!  63 62                                              8 7        0
//! +--+-------------------------------------------------+----------+
//! |I |              sequence number (55 bits)          |  buffer  |
//! +--+-------------------------------------------------+----------+
//! ```
//!
//! Bit 63 (`I`) is only ever set in a reader slot's pin word, where it marks
//! an *idle* pin (see the protocol in the crate docs). The all-ones word is the
//! slot's `REQUEST` marker and the all-zeros word means "nothing": both are
//! outside the range of valid packed versions, which is what
//! [`PackedVersion::new`] guarantees.

use std::fmt;
use std::num::NonZeroU64;

/// The version of a published snapshot: 1 for the first publish, then one more
/// for each publish after it. Versions of one region never repeat, even across
/// writer restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(NonZeroU64);

impl Version {
    /// The largest sequence number a region can reach. At one publish per
    /// nanosecond it lasts more than a year; at realistic rates, centuries.
    pub const MAX: u64 = (1 << 55) - 2;

    /// The version of the first snapshot a region publishes.
    pub const FIRST: Version = Version(NonZeroU64::MIN);

    /// Makes a version from its sequence number, if it is in range
    /// (`1..=Version::MAX`).
    #[must_use]
    pub fn new(seq: u64) -> Option<Self> {
        if seq > Self::MAX {
            return None;
        }
        NonZeroU64::new(seq).map(Self)
    }

    /// The sequence number: 1 for the first snapshot ever published.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The version after this one, or `None` past [`Version::MAX`].
    #[must_use]
    pub fn next(self) -> Option<Self> {
        Self::new(self.get() + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Largest number of buffers one region may have: the buffer index takes the
/// low 8 bits of a packed word.
pub(crate) const MAX_BUFFERS: u32 = 256;

const BUFFER_BITS: u32 = 8;
const IDLE_BIT: u64 = 1 << 63;

/// A version and the index of the buffer that holds it, packed into one word.
/// Never zero, never `REQUEST`, never has the idle bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedVersion(u64);

impl PackedVersion {
    pub(crate) fn new(version: Version, buffer: u32) -> Self {
        debug_assert!(buffer < MAX_BUFFERS);
        Self((version.get() << BUFFER_BITS) | u64::from(buffer))
    }

    /// Interprets a word read from shared memory. Returns `None` for words a
    /// correct writer never stores as a version (zero, the idle bit, a
    /// sequence number of zero), so corrupt memory is detected, not trusted.
    pub(crate) fn from_word(word: u64) -> Option<Self> {
        if word & IDLE_BIT != 0 {
            return None;
        }
        Version::new(word >> BUFFER_BITS)?;
        Some(Self(word))
    }

    pub(crate) fn word(self) -> u64 {
        self.0
    }

    pub(crate) fn version(self) -> Version {
        // `new` and `from_word` only admit in-range, non-zero sequences.
        Version::new(self.0 >> BUFFER_BITS).unwrap_or(Version(NonZeroU64::MIN))
    }

    pub(crate) fn buffer(self) -> u32 {
        (self.0 & ((1 << BUFFER_BITS) - 1)) as u32
    }
}

/// The value of a reader slot's pin word, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pin {
    /// The slot protects nothing.
    Empty,
    /// A reader announced that it is about to read the current version; the
    /// writer must resolve it (see the protocol) before reusing any buffer.
    Request,
    /// A reader holds a guard on this version: its buffer must not be reused.
    Active(PackedVersion),
    /// A reader's guard on this version was dropped; the reader may take it
    /// back without the full protocol while it is still current, and the
    /// writer may revoke it at any time.
    Idle(PackedVersion),
    /// A word no correct participant writes.
    Corrupt(u64),
}

pub(crate) const PIN_EMPTY: u64 = 0;
pub(crate) const PIN_REQUEST: u64 = u64::MAX;

impl Pin {
    pub(crate) fn decode(word: u64) -> Self {
        match word {
            PIN_EMPTY => Self::Empty,
            PIN_REQUEST => Self::Request,
            w if w & IDLE_BIT != 0 => match PackedVersion::from_word(w & !IDLE_BIT) {
                Some(p) => Self::Idle(p),
                None => Self::Corrupt(w),
            },
            w => match PackedVersion::from_word(w) {
                Some(p) => Self::Active(p),
                None => Self::Corrupt(w),
            },
        }
    }

    pub(crate) fn encode(self) -> u64 {
        match self {
            Self::Empty => PIN_EMPTY,
            Self::Request => PIN_REQUEST,
            Self::Active(p) => p.word(),
            Self::Idle(p) => p.word() | IDLE_BIT,
            Self::Corrupt(w) => w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn packed_roundtrip(seq in 1..=Version::MAX, buffer in 0..MAX_BUFFERS) {
            let v = Version::new(seq).unwrap();
            let p = PackedVersion::new(v, buffer);
            prop_assert_eq!(p.version(), v);
            prop_assert_eq!(p.buffer(), buffer);
            prop_assert_eq!(PackedVersion::from_word(p.word()), Some(p));
            prop_assert_ne!(p.word(), PIN_EMPTY);
            prop_assert_ne!(p.word(), PIN_REQUEST);
            prop_assert_eq!(Pin::decode(Pin::Active(p).encode()), Pin::Active(p));
            prop_assert_eq!(Pin::decode(Pin::Idle(p).encode()), Pin::Idle(p));
        }

        #[test]
        fn packed_order_follows_version(a in 1..=Version::MAX, b in 1..=Version::MAX,
                                        ba in 0..MAX_BUFFERS, bb in 0..MAX_BUFFERS) {
            let pa = PackedVersion::new(Version::new(a).unwrap(), ba);
            let pb = PackedVersion::new(Version::new(b).unwrap(), bb);
            if a < b {
                prop_assert!(pa.word() < pb.word());
            }
        }

        #[test]
        fn any_word_decodes_without_panic(w in any::<u64>()) {
            let pin = Pin::decode(w);
            prop_assert_eq!(pin.encode(), w);
            if let Some(p) = PackedVersion::from_word(w) {
                prop_assert!(p.version().get() >= 1 && p.version().get() <= Version::MAX);
                prop_assert!(p.buffer() < MAX_BUFFERS);
            }
        }
    }

    #[test]
    fn version_bounds() {
        assert!(Version::new(0).is_none());
        assert!(Version::new(Version::MAX + 1).is_none());
        assert_eq!(Version::new(Version::MAX).unwrap().next(), None);
        assert_eq!(Version::new(1).unwrap().to_string(), "v1");
    }
}
