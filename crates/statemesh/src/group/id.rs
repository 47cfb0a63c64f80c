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

#[cfg(test)]
mod tests {
    use super::GroupId;

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
