//! Identities shared by every layer: nodes and clusters.

/// A node's id in every group it belongs to.
pub type NodeId = u64;

/// A cluster's identity: random, made when the cluster is bootstrapped,
/// kept in every member's data directory and checked whenever two nodes
/// connect, so two clusters that share a name (and secret) never exchange
/// Raft traffic, and a data directory is never joined to another cluster.
/// Written as 32 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClusterId(u128);

impl ClusterId {
    /// A new random id.
    ///
    /// # Errors
    ///
    /// The operating system's random source failed.
    pub fn random() -> std::io::Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self(u128::from_le_bytes(bytes)))
    }
}

impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for ClusterId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a cluster id (32 hexadecimal digits)");
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u128::from_str_radix(s, 16).map(Self).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterId;

    #[test]
    fn cluster_ids_round_trip_as_text() {
        let id = ClusterId::random().unwrap();
        assert_eq!(id.to_string().len(), 32);
        assert_eq!(id.to_string().parse::<ClusterId>(), Ok(id));
        assert_eq!(ClusterId(1).to_string(), format!("{:032}", 1));
        assert!("xyz".parse::<ClusterId>().is_err());
        assert!(
            "+0000000000000000000000000000001"
                .parse::<ClusterId>()
                .is_err()
        );
    }
}
