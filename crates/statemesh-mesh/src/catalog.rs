//! What a peer knows of the mesh: every live peer's entry, learned by
//! gossip, and the queries streams need (peers by tag, producers of a
//! stream).

use crate::peer::{PeerId, PeerInfo};
use crate::stream::StreamId;
use std::collections::BTreeMap;

/// How a peer's liveness looks from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Liveness {
    /// It answers probes.
    Alive,
    /// It missed a probe; others are asked to reach it before it is
    /// declared down.
    Suspect,
}

/// One peer as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// What it announced.
    pub info: PeerInfo,
    /// Whether it answers.
    pub liveness: Liveness,
}

/// The peers this process knows, by id. Peers declared down are removed.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    peers: BTreeMap<PeerId, Entry>,
}

/// What an update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A peer not known before.
    Joined,
    /// A known peer's entry, replaced by a newer revision.
    Updated,
    /// Nothing: the entry was older than or the same as the one held.
    Unchanged,
}

impl Catalog {
    /// An empty catalog.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `info` if it is newer than what is held of its peer (by
    /// revision), whatever order entries arrive in.
    pub fn update(&mut self, info: PeerInfo) -> Change {
        match self.peers.get_mut(&info.id) {
            None => {
                self.peers.insert(
                    info.id,
                    Entry {
                        info,
                        liveness: Liveness::Alive,
                    },
                );
                Change::Joined
            }
            Some(held) if info.revision > held.info.revision => {
                held.info = info;
                Change::Updated
            }
            Some(_) => Change::Unchanged,
        }
    }

    /// Marks a peer alive or suspect; no effect on an unknown peer.
    pub fn set_liveness(&mut self, id: PeerId, liveness: Liveness) {
        if let Some(entry) = self.peers.get_mut(&id) {
            entry.liveness = liveness;
        }
    }

    /// Drops a peer declared down; returns its last entry.
    pub fn remove(&mut self, id: PeerId) -> Option<Entry> {
        self.peers.remove(&id)
    }

    /// The entry of `id`.
    #[must_use]
    pub fn get(&self, id: PeerId) -> Option<&Entry> {
        self.peers.get(&id)
    }

    /// Every peer, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.peers.values()
    }

    /// How many peers it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Peers with every one of `tags`.
    pub fn with_tags<'a, S: AsRef<str>>(
        &'a self,
        tags: &'a [S],
    ) -> impl Iterator<Item = &'a Entry> {
        self.iter().filter(move |e| e.info.tags.contains_all(tags))
    }

    /// Peers that produce a stream named `name`, with the type each
    /// produces it as.
    pub fn producers_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Entry, &'a StreamId)> {
        self.iter().filter_map(move |e| {
            e.info
                .streams
                .iter()
                .find(|s| s.name == name)
                .map(|s| (e, s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{Role, Tags};

    fn info(id: u128, revision: u64, tags: &[&str], streams: &[&str]) -> PeerInfo {
        PeerInfo {
            id: PeerId::from(id),
            address: format!("10.0.0.{id}:7000"),
            tags: tags.iter().copied().collect::<Tags>(),
            streams: streams.iter().map(|s| StreamId::of::<u64>(*s)).collect(),
            role: Role::Process,
            revision,
        }
    }

    #[test]
    fn newer_revisions_win_in_any_order() {
        let mut c = Catalog::new();
        assert_eq!(c.update(info(1, 2, &["a"], &[])), Change::Joined);
        assert_eq!(c.update(info(1, 1, &["old"], &[])), Change::Unchanged);
        assert_eq!(c.update(info(1, 2, &["same"], &[])), Change::Unchanged);
        assert_eq!(c.update(info(1, 3, &["b"], &[])), Change::Updated);
        assert!(c.get(PeerId::from(1)).unwrap().info.tags.contains("b"));
        c.set_liveness(PeerId::from(1), Liveness::Suspect);
        assert_eq!(c.get(PeerId::from(1)).unwrap().liveness, Liveness::Suspect);
        assert!(c.remove(PeerId::from(1)).is_some());
        assert!(c.is_empty());
    }

    #[test]
    fn queries_by_tag_and_by_stream() {
        let mut c = Catalog::new();
        c.update(info(1, 0, &["role=validator", "region=eu"], &["prices"]));
        c.update(info(2, 0, &["role=validator"], &[]));
        c.update(info(3, 0, &["region=eu"], &["prices", "orders"]));
        let ids = |it: Vec<&Entry>| it.iter().map(|e| e.info.id.as_u128()).collect::<Vec<_>>();
        assert_eq!(ids(c.with_tags(&["role=validator"]).collect()), [1, 2]);
        assert_eq!(
            ids(c.with_tags(&["role=validator", "region=eu"]).collect()),
            [1]
        );
        let producers: Vec<_> = c.producers_of("prices").map(|(e, _)| e).collect();
        assert_eq!(ids(producers), [1, 3]);
        assert_eq!(c.producers_of("nothing").count(), 0);
    }
}
