//! Waiting for a producer or consumer to come online or go offline.

use tokio::sync::watch;

/// A producer's or consumer's online state, to test or wait on; from
/// [`Producer::when`](super::Producer::when) or
/// [`Consumer::when`](super::Consumer::when).
///
/// It is a separate handle so a task can wait for a change while another
/// sends or receives: `producer.when().offline().await`.
#[derive(Debug, Clone)]
pub struct When {
    online: watch::Receiver<bool>,
}

impl When {
    pub(super) fn new(online: watch::Receiver<bool>) -> Self {
        Self { online }
    }

    /// Whether the online condition holds now.
    #[must_use]
    pub fn is_online(&self) -> bool {
        *self.online.borrow()
    }

    /// Waits until the online condition holds (at once if it does now).
    pub async fn online(&self) {
        self.wait(true).await;
    }

    /// Waits until the online condition stops holding (at once if it does
    /// not hold now).
    pub async fn offline(&self) {
        self.wait(false).await;
    }

    async fn wait(&self, online: bool) {
        let mut state = self.online.clone();
        // The sender lives as long as the producer or consumer it belongs
        // to, and this handle may outlive both: then the state is final.
        let _ = state.wait_for(|o| *o == online).await;
    }
}
