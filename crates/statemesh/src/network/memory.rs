//! An in-process network with fault injection, for tests and benchmarks.

use super::{BoxFuture, Handler, Network, NetworkError};
use crate::types::NodeId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Nodes in one process, connected by function calls, with faults on
/// demand: drop a share of requests, delay every request, cut links, pause
/// nodes.
///
/// A dropped request is never delivered ([`NetworkError::Unreachable`]); a
/// reply is lost ([`NetworkError::ReplyLost`]) when the link was cut while
/// the request was being handled. A paused node is what a `SIGSTOP`ped
/// process looks like from outside: requests to it and from it, and its
/// replies, wait (without failing) until it is resumed, then go through.
#[derive(Default)]
pub struct MemoryNetwork {
    state: Arc<Mutex<State>>,
    paused: watch::Sender<HashSet<NodeId>>,
}

#[derive(Default)]
struct State {
    handlers: HashMap<NodeId, Arc<dyn Handler>>,
    /// Directed links that deliver nothing.
    cut: HashSet<(NodeId, NodeId)>,
    drop_rate: f64,
    delay: Duration,
    rng: Option<fastrand::Rng>,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryNetwork")
            .field("nodes", &s.handlers.len())
            .field("cut_links", &s.cut.len())
            .field("drop_rate", &s.drop_rate)
            .field("delay", &s.delay)
            .finish()
    }
}

impl MemoryNetwork {
    /// A network with no nodes and no faults.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Cuts every link between `side` and the other nodes, both ways.
    pub fn partition(&self, side: &[NodeId]) {
        let mut s = self.lock();
        let others: Vec<NodeId> = s
            .handlers
            .keys()
            .copied()
            .filter(|n| !side.contains(n))
            .collect();
        for &a in side {
            for &b in &others {
                s.cut.insert((a, b));
                s.cut.insert((b, a));
            }
        }
    }

    /// Cuts every link of `node`, both ways.
    pub fn isolate(&self, node: NodeId) {
        self.partition(&[node]);
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        let mut s = self.lock();
        s.cut.insert((a, b));
        s.cut.insert((b, a));
    }

    /// Holds every request to or from `node`, and its replies, until
    /// [`MemoryNetwork::resume`].
    pub fn pause(&self, node: NodeId) {
        self.paused.send_modify(|p| {
            p.insert(node);
        });
    }

    /// Lets `node`'s held requests and replies go.
    pub fn resume(&self, node: NodeId) {
        self.paused.send_modify(|p| {
            p.remove(&node);
        });
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// Drops each request with probability `rate` (0 to 1), from a
    /// generator seeded with `seed` so a failing run can be repeated.
    pub fn drop_requests(&self, rate: f64, seed: u64) {
        let mut s = self.lock();
        s.drop_rate = rate.clamp(0.0, 1.0);
        s.rng = Some(fastrand::Rng::with_seed(seed));
    }

    /// Delays every request by `delay` before it is delivered.
    pub fn delay_requests(&self, delay: Duration) {
        self.lock().delay = delay;
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding it; a poisoned lock is still consistent.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Network for MemoryNetwork {
    fn serve(&self, node: NodeId, handler: Arc<dyn Handler>) {
        self.lock().handlers.insert(node, handler);
    }

    fn stop(&self, node: NodeId) {
        self.lock().handlers.remove(&node);
    }

    fn call(
        &self,
        from: NodeId,
        to: NodeId,
        request: Vec<u8>,
    ) -> BoxFuture<Result<Vec<u8>, NetworkError>> {
        let (handler, delay) = {
            let mut s = self.lock();
            let rate = s.drop_rate;
            let dropped = rate > 0.0 && s.rng.as_mut().is_some_and(|r| r.f64() < rate);
            let handler = s.handlers.get(&to).cloned();
            match handler {
                Some(h) if !dropped && !s.cut.contains(&(from, to)) => (h, s.delay),
                _ => return Box::pin(async move { Err(NetworkError::Unreachable(to)) }),
            }
        };
        // The reply travels back over the same link: cut meanwhile, it is lost.
        let state = Arc::clone(&self.state);
        let mut paused = self.paused.subscribe();
        Box::pin(async move {
            let running = |p: &HashSet<NodeId>| !p.contains(&from) && !p.contains(&to);
            let _ = paused.wait_for(running).await;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let reply = handler.handle(from, request).await;
            let _ = paused.wait_for(running).await;
            let linked = !lock(&state).cut.contains(&(to, from));
            if linked {
                Ok(reply)
            } else {
                Err(NetworkError::ReplyLost(to))
            }
        })
    }
}
