//! Futures for moments in a group's life, beside the version futures.

use crate::types::NodeId;
use statemesh_client::Versions;
use tokio::sync::watch;

/// Futures for moments in a group's life; see [`Group::when`](super::Group::when). The
/// version futures are [`Versions`]', which it dereferences to.
#[derive(Debug, Clone)]
pub struct When {
    pub(super) versions: Versions,
    pub(super) metrics: watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>,
}

impl std::ops::Deref for When {
    type Target = Versions;
    fn deref(&self) -> &Versions {
        &self.versions
    }
}

impl std::ops::DerefMut for When {
    fn deref_mut(&mut self) -> &mut Versions {
        &mut self.versions
    }
}

impl When {
    /// Resolves once the group has a leader this replica knows of.
    pub async fn online(&mut self) {
        let _ = self.metrics.wait_for(|m| m.current_leader.is_some()).await;
    }

    /// Resolves once this replica knows of no leader.
    pub async fn offline(&mut self) {
        let _ = self.metrics.wait_for(|m| m.current_leader.is_none()).await;
    }

    /// Resolves when the leader this replica knows of changes.
    pub async fn leader_changed(&mut self) {
        let now = self.metrics.borrow().current_leader;
        let _ = self.metrics.wait_for(|m| m.current_leader != now).await;
    }
}
