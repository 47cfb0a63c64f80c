//! Who takes part in a mesh: a peer's id, its tags, and the entry every
//! other peer learns about it.

use crate::stream::StreamId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// A peer's identity in the mesh: 128 bits, shown as 32 hex digits.
///
/// Give a process a stable id ([`PeerId::from_name`]) when consumers
/// should recognise it across restarts (a producer that keeps its replay
/// buffer on disk needs one); otherwise [`PeerId::random`] will do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(u128);

impl PeerId {
    /// A fresh random id.
    ///
    /// # Errors
    ///
    /// The operating system gave no random bytes.
    pub fn random() -> std::io::Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self(u128::from_le_bytes(bytes)))
    }

    /// The id named `name`: the same name gives the same id in every
    /// process, so a restarted process is the same peer.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"statemesh peer id\0")
            .chain_update(name.as_bytes())
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(u128::from_le_bytes(id))
    }

    /// The id as 128 bits.
    #[must_use]
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl From<u128> for PeerId {
    fn from(id: u128) -> Self {
        Self(id)
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::fmt::Debug for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Eight digits tell peers apart in logs; Display has them all.
        write!(f, "PeerId({:08x}..)", self.0 >> 96)
    }
}

impl std::str::FromStr for PeerId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{s:?} is not a peer id (32 hexadecimal digits)"));
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|e| format!("{s:?} is not a peer id: {e}"))
    }
}

/// Free-form labels a peer announces (`region=eu`, `role=validator`),
/// which others select it by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tags(BTreeSet<String>);

impl Tags {
    /// No tags.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tag.
    #[must_use]
    pub fn with(mut self, tag: impl Into<String>) -> Self {
        self.0.insert(tag.into());
        self
    }

    /// Whether it has `tag`.
    #[must_use]
    pub fn contains(&self, tag: &str) -> bool {
        self.0.contains(tag)
    }

    /// Whether it has every one of `tags`.
    #[must_use]
    pub fn contains_all<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        tags.iter().all(|t| self.contains(t.as_ref()))
    }

    /// The tags, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: Into<String>> FromIterator<S> for Tags {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

impl std::fmt::Display for Tags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for tag in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(tag)?;
        }
        Ok(())
    }
}

/// What a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A node of the cluster, with its node id.
    Node(u64),
    /// Any other process that joined the mesh.
    Process,
}

/// What every peer learns about another by gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its id.
    pub id: PeerId,
    /// Where it accepts mesh connections (`host:port`).
    pub address: String,
    /// Its labels.
    pub tags: Tags,
    /// The streams it produces.
    pub streams: Vec<StreamId>,
    /// A node or another process.
    pub role: Role,
    /// Bumped by the peer each time it changes its entry: a newer entry
    /// replaces an older one everywhere, whatever order they arrive in.
    pub revision: u64,
}

impl PeerInfo {
    /// Whether it produces the stream named `name` (of any type).
    #[must_use]
    pub fn produces(&self, name: &str) -> bool {
        self.streams.iter().any(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_by_name_and_round_trip_as_text() {
        assert_eq!(PeerId::from_name("a"), PeerId::from_name("a"));
        assert_ne!(PeerId::from_name("a"), PeerId::from_name("b"));
        let id = PeerId::random().unwrap();
        assert_eq!(id.to_string().parse::<PeerId>(), Ok(id));
        assert!("nope".parse::<PeerId>().is_err());
        assert!(format!("{id:?}").starts_with("PeerId("));
    }

    #[test]
    fn tags_select() {
        let tags: Tags = ["role=validator", "region=eu"].into_iter().collect();
        assert!(tags.contains("region=eu"));
        assert!(tags.contains_all(&["role=validator", "region=eu"]));
        assert!(!tags.contains_all(&["role=validator", "region=us"]));
        assert_eq!(tags.to_string(), "region=eu,role=validator");
    }
}
