//! When a producer or consumer is online, and which peers it accepts.

use crate::peer::PeerInfo;
use std::sync::Arc;

/// A test on the other side's catalog entry: a producer accepts a
/// consumer, or a consumer a producer, only if it holds.
pub type Require = Arc<dyn Fn(&PeerInfo) -> bool + Send + Sync>;

/// How many accepted peers, with which tags, make a side online.
///
/// ```
/// use statemesh_mesh::stream::Online;
///
/// let online = Online::default().minimum_of(2).with_tags(["role=validator"]);
/// assert_eq!(online.minimum(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Online {
    minimum: usize,
    tags: Vec<String>,
}

impl Default for Online {
    /// One peer of any tags.
    fn default() -> Self {
        Self {
            minimum: 1,
            tags: Vec::new(),
        }
    }
}

impl Online {
    /// At least `n` peers (0: online with none).
    #[must_use]
    pub fn minimum_of(mut self, n: usize) -> Self {
        self.minimum = n;
        self
    }

    /// Counting only peers with every one of `tags`.
    #[must_use]
    pub fn with_tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The number of peers needed.
    #[must_use]
    pub fn minimum(&self) -> usize {
        self.minimum
    }

    /// Whether `peers` (the accepted ones) satisfy it.
    pub fn holds<'a>(&self, peers: impl IntoIterator<Item = &'a PeerInfo>) -> bool {
        let counted = peers
            .into_iter()
            .filter(|p| p.tags.contains_all(&self.tags))
            .take(self.minimum)
            .count();
        counted >= self.minimum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{PeerId, Role, Tags};

    fn peer(n: u128, tags: &[&str]) -> PeerInfo {
        PeerInfo {
            id: PeerId::from(n),
            address: String::new(),
            tags: tags.iter().copied().collect::<Tags>(),
            streams: Vec::new(),
            role: Role::Process,
            revision: 0,
        }
    }

    #[test]
    fn counts_only_peers_with_the_tags() {
        let two_validators = Online::default()
            .minimum_of(2)
            .with_tags(["role=validator"]);
        let one = [peer(1, &["role=validator"]), peer(2, &["role=observer"])];
        assert!(!two_validators.holds(&one));
        let two = [
            peer(1, &["role=validator"]),
            peer(3, &["role=validator", "x"]),
        ];
        assert!(two_validators.holds(&two));
        assert!(Online::default().minimum_of(0).holds(&[]));
        assert!(!Online::default().holds(&[]));
    }
}
