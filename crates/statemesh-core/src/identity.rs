//! A group's identity.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Names one group everywhere: the first 16 bytes of SHA-256 over the
/// group's name and its state machine's signature (each length-prefixed),
/// so two nodes that disagree on a group's type address different groups
/// and can never replicate into each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId([u8; 16]);

impl GroupId {
    /// The id of group `name` running a state machine with `signature`.
    #[must_use]
    pub fn new(name: &str, signature: &str) -> Self {
        let mut h = Sha256::new();
        for part in [name, signature] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// The id of incarnation `n` of group `name`: a group dropped and made
    /// again under the same name and type is another group, so a node
    /// that missed the drop can never mix the old log into the new one.
    /// Incarnation 0 is [`GroupId::new`].
    #[must_use]
    pub fn incarnation(name: &str, signature: &str, n: u64) -> Self {
        if n == 0 {
            return Self::new(name, signature);
        }
        let mut h = Sha256::new();
        for part in [name.as_bytes(), signature.as_bytes(), &n.to_le_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// The id as lowercase hex (also the name of its directory).
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupId({})", self.to_hex())
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a collection is, checked before a client or mirror is served: the
/// SHA-256 over its name, its state machine's signature and the encoding
/// of its initial state (each length-prefixed). Two copies with the same
/// identity apply the same changes to the same starting point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity([u8; 32]);

impl Identity {
    /// The identity of collection `name`, of a state machine with
    /// `signature`, starting from the state whose snapshot encodes as
    /// `initial`.
    #[must_use]
    pub fn new(name: &str, signature: &str, initial: &[u8]) -> Self {
        let mut h = Sha256::new();
        for part in [name.as_bytes(), signature.as_bytes(), initial] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        Self(h.finalize().into())
    }

    /// The identity of collection `name` starting from `initial`.
    #[must_use]
    pub fn of<SM: crate::StateMachine>(name: &str, initial: &SM) -> Self {
        // Snapshot types are serde types of our collections or of the
        // user's; one that does not encode has no state to compare, and
        // the name and signature still are.
        let state = postcard::to_allocvec(&initial.snapshot()).unwrap_or_default();
        Self::new(name, &initial.signature(), &state)
    }

    /// The identity as lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.to_hex())
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::{GroupId, Identity};

    #[test]
    fn the_initial_state_is_part_of_the_identity() {
        let a = Identity::new("m", "Map", b"");
        assert_eq!(a, Identity::new("m", "Map", b""));
        assert_ne!(a, Identity::new("m", "Map", b"\x01"));
        assert_ne!(a, Identity::new("n", "Map", b""));
        assert_ne!(a, Identity::new("m", "Set", b""));
        // Length prefixes: moving a byte between parts changes it.
        assert_ne!(Identity::new("ab", "c", b""), Identity::new("a", "bc", b""));
        assert_eq!(a.to_hex().len(), 64);
    }

    #[test]
    fn the_signature_is_part_of_the_id() {
        assert_eq!(
            GroupId::new("a", "Cell<u64>"),
            GroupId::new("a", "Cell<u64>")
        );
        assert_ne!(
            GroupId::new("a", "Cell<u64>"),
            GroupId::new("a", "Cell<String>")
        );
        // Length prefixes keep the boundary between name and signature.
        assert_ne!(GroupId::new("ab", "c"), GroupId::new("a", "bc"));
    }
}
