//! What a mesh's tasks, producers and consumers share.

use super::links::{Dialer, Links};
use super::serving::ProducerCore;
use crate::catalog::Catalog;
use crate::gossip::Gossip;
use crate::pass::Grant;
use crate::peer::PeerInfo;
use statemesh_client::network::repeats::Repeats;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Ends the mesh's tasks when the last handle goes.
pub(crate) struct Running(pub(crate) Vec<JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What the mesh's tasks share.
pub(crate) struct Shared {
    /// How this peer dials others (and what it shows them).
    pub(crate) dialer: Dialer,
    /// What this peer's own pass grants.
    pub(crate) grant: Grant,
    /// Where others dial this peer.
    pub(crate) address: String,
    pub(crate) gossip: Mutex<Gossip>,
    /// Wakes the discovery task: the gossip engine has something to send
    /// or a new timer.
    pub(crate) wake: Notify,
    pub(crate) catalog: watch::Sender<Arc<Catalog>>,
    /// Connections for gossip alone, so probes never queue behind stream
    /// data (a probe that waits is a peer wrongly suspected).
    pub(crate) gossip_links: Links,
    pub(crate) stream_links: Links,
    /// The peers it joins through (never itself); a node replaces them
    /// as the cluster's members change.
    pub(crate) seeds: Mutex<Vec<String>>,
    /// The last failure said about each seed (see `discovery::send`).
    pub(crate) seed_errors: Mutex<HashMap<String, String>>,
    /// The streams this process produces, by name.
    pub(crate) producers: Mutex<HashMap<String, Arc<ProducerCore>>>,
    /// Refusals logged lately, so a peer that keeps retrying is one line.
    pub(crate) repeats: Repeats,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn gossip(&self) -> MutexGuard<'_, Gossip> {
        lock(&self.gossip)
    }

    pub(crate) fn me(&self) -> PeerInfo {
        self.gossip().me().clone()
    }

    /// Changes this peer's entry and tells the mesh.
    pub(crate) fn update_entry(&self, change: impl FnOnce(&mut PeerInfo)) {
        let mut gossip = self.gossip();
        let mut info = gossip.me().clone();
        change(&mut info);
        if let Err(e) = gossip.update(info, Instant::now()) {
            tracing::warn!(error = %e, "the mesh entry could not be broadcast");
        }
        drop(gossip);
        self.wake.notify_one();
    }
}
