//! Keys: the names of stored object versions.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of one version of an object: 128 bits, unique across processes
/// and restarts. A changed object gets a new key, so the blob stored under
/// a key never changes.
///
/// Written as 32 lowercase hexadecimal digits, which is also its file name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u128);

impl Key {
    /// A fresh key, different from every key made before in this process
    /// and, with overwhelming probability, in any other.
    pub fn random() -> Self {
        // Two SipHash instances keyed from the operating system's entropy
        // (std's `RandomState`) over a process-wide counter: a keyed PRF over
        // distinct inputs, so no system call per key and no extra crate.
        static SEED: OnceLock<(RandomState, RandomState)> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (a, b) = SEED.get_or_init(|| (RandomState::new(), RandomState::new()));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Key((u128::from(a.hash_one(n)) << 64) | u128::from(b.hash_one(n)))
    }

    /// The key as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The key with this number.
    pub fn from_u128(n: u128) -> Self {
        Key(n)
    }

    /// The store's shard directory for this key: its first two hex digits.
    pub(crate) fn shard(self) -> String {
        format!("{:02x}", (self.0 >> 120) as u8)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// A string that is not 32 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a key (32 lowercase hex digits): {0:?}")]
pub struct ParseKeyError(pub String);

impl FromStr for Key {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(ParseKeyError(s.to_owned()));
        }
        u128::from_str_radix(s, 16)
            .map(Key)
            .map_err(|_| ParseKeyError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_are_distinct_and_round_trip_through_text() {
        let keys: HashSet<Key> = (0..10_000).map(|_| Key::random()).collect();
        assert_eq!(keys.len(), 10_000);
        for k in keys.iter().take(100) {
            let text = k.to_string();
            assert_eq!(text.len(), 32);
            assert_eq!(text.parse::<Key>().unwrap(), *k);
            assert_eq!(k.shard(), text[..2]);
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "abc",
            &"A".repeat(32),
            &"g".repeat(32),
            &"0".repeat(33),
            "+0000000000000000000000000000000",
        ] {
            assert_eq!(bad.parse::<Key>(), Err(ParseKeyError(bad.to_owned())));
        }
    }
}
