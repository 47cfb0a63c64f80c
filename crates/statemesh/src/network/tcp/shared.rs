//! The state the accept loop, the sessions and the callers share, and the
//! links to peers kept in it. One module: a link reads the shared
//! addresses and cluster id, and the shared state holds the links, so
//! apart they would import each other.

use super::handler::ClientHandler;
use super::options::TcpOptions;
use crate::network::{
    ConnectionError, Handler,
    connection::Connection,
    handshake::{Hello, Peer},
    reachability::Reachability,
    repeats::Repeats,
};
use crate::types::{ClusterId, NodeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(super) struct Shared {
    pub(super) options: TcpOptions,
    /// The cluster's id, once known: peers of another are refused.
    pub(super) cluster_id: Mutex<Option<ClusterId>>,
    pub(super) local: Mutex<Option<(NodeId, Arc<dyn Handler>)>>,
    pub(super) clients: Mutex<Option<Arc<dyn ClientHandler>>>,
    /// The node's place in the mesh, once started: mesh peers' connections
    /// go to it.
    pub(super) mesh: Mutex<Option<statemesh_mesh::Mesh>>,
    pub(super) addresses: Mutex<HashMap<NodeId, String>>,
    pub(super) links: Mutex<HashMap<NodeId, Arc<Link>>>,
    /// Refusals logged lately, so a peer that keeps retrying is one line.
    pub(super) repeats: Repeats,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The way to one peer.
pub(super) struct Link {
    pub(super) peer: NodeId,
    /// The working connection, read without waiting on `state` (every Raft
    /// message looks here first).
    pub(super) current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so concurrent callers wait for one attempt.
    pub(super) state: tokio::sync::Mutex<LinkState>,
    /// Whether it answers, for the log.
    pub(super) reachability: Reachability,
}

#[derive(Default)]
pub(super) struct LinkState {
    connection: Option<Arc<Connection>>,
    /// After a failed attempt, calls fail at once until this moment.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Why the last attempt failed.
    last_error: String,
}

/// First and longest wait between attempts to reach a peer that is down.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl Link {
    /// The working connection to the peer, made now if there is none and
    /// the backoff allows; or why there is none.
    pub(super) async fn connect(
        &self,
        shared: &Shared,
        from: NodeId,
    ) -> Result<Arc<Connection>, String> {
        if let Some(c) = &*lock(&self.current)
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let mut s = self.state.lock().await;
        if let Some(c) = &s.connection
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        s.connection = None;
        if s.retry_at.is_some_and(|t| Instant::now() < t) {
            return Err(s.last_error.clone());
        }
        let Some(address) = lock(&shared.addresses).get(&self.peer).cloned() else {
            return Err("its address is not known yet".into());
        };
        let o = &shared.options;
        let ours = *lock(&shared.cluster_id);
        let hello = Hello {
            cluster: o.cluster.clone(),
            peer: Peer::Node {
                id: from,
                secret: o.auth.secret().as_bytes().to_vec(),
                cluster_id: ours,
            },
        };
        let peer = self.peer;
        let on_close = move |e: ConnectionError| {
            tracing::debug!(peer, error = %e, "connection to peer closed");
        };
        match Connection::open(&address, &o.security, &hello, o.limits, on_close).await {
            Ok(c)
                if let (Some(ours), Some(theirs)) = (ours, c.cluster_id)
                    && ours != theirs =>
            {
                Err(s.fail(ConnectionError::ClusterId { ours, theirs }.to_string()))
            }
            Ok(c) if c.node == peer => {
                s.backoff = Duration::ZERO;
                s.retry_at = None;
                let c = Arc::new(c);
                s.connection = Some(Arc::clone(&c));
                *lock(&self.current) = Some(Arc::clone(&c));
                Ok(c)
            }
            Ok(c) => Err(s.fail(format!("node {} answered there instead", c.node))),
            Err(e) => {
                tracing::debug!(peer, %address, error = %e, "cannot reach peer");
                Err(s.fail(e.to_string()))
            }
        }
    }
}

impl LinkState {
    /// Notes a failed attempt and waits longer before the next; returns
    /// `why`.
    fn fail(&mut self, why: String) -> String {
        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.last_error.clone_from(&why);
        why
    }
}

/// Notes how a call to a peer ended; one dropped unsettled (its caller
/// stopped waiting) did not answer in time.
pub(super) struct Outcome<'a> {
    pub(super) link: &'a Link,
    pub(super) shared: &'a Shared,
    pub(super) settled: bool,
}

impl Outcome<'_> {
    pub(super) fn answered(&mut self) {
        self.settled = true;
        self.link.reachability.answered();
    }

    pub(super) fn failed(&mut self, why: &dyn std::fmt::Display) {
        self.settled = true;
        let address = lock(&self.shared.addresses).get(&self.link.peer).cloned();
        self.link.reachability.failed(address.as_deref(), why);
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.failed(&"no answer in time");
        }
    }
}
