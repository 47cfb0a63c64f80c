//! Serves one mirror: pushes what it is missing, then every change as it
//! is applied, never more than a few pushes ahead of its acknowledgements.
//!
//! A subscription holds no queue of its own. Its [`Cursor`] remembers the
//! version the mirror will be at once it has applied what was pushed, and
//! each time it may push, it takes what the collection's shared history
//! holds after that version: several versions' changes (merged into one
//! run when many) when it lags, the whole state when it has fallen out of
//! the history. So a slow mirror costs its own bandwidth, not memory on the
//! node, and never holds up a commit.
//!
//! Once the mirror is up to date, its task hands the cursor to the
//! collection's [`Fanout`], which pushes each new version to every
//! up-to-date mirror at once, and waits until the fan-out hands it back
//! (the mirror fell behind: its window or its connection's queue is full).

use super::fanout::{Fanout, Follow};
use super::kinds::Hosted;
use crate::client::Refusal;
use crate::client::Resync;
use crate::client::protocol::{ClientReply, Push, Response};
use crate::group::{Item, Since};
use crate::network::Pushes;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;

/// Pushes a mirror may have unacknowledged.
const WINDOW: usize = 8;

/// Versions' changes sent as they are, each already encoded, before they
/// are merged into one run instead.
pub(super) const MERGE_OVER: usize = 8;

/// Where one subscription stands.
pub(super) struct Cursor {
    /// The version the mirror will be at once it has applied every push.
    pub(super) at: u64,
    /// The versions pushes took the mirror to, not yet acknowledged.
    unacked: VecDeque<u64>,
    /// Nothing was pushed yet: a whole state now means the mirror asked
    /// from before the history, not that it was too slow.
    first: bool,
    pub(super) pushes: Pushes,
}

impl Cursor {
    /// Whether another push may go out now (what was acknowledged is
    /// forgotten first).
    pub(super) fn window_open(&mut self) -> bool {
        let acked = self.pushes.acked();
        while self.unacked.front().is_some_and(|&v| v <= acked) {
            self.unacked.pop_front();
        }
        self.unacked.len() < WINDOW
    }

    /// Notes a push that takes the mirror to `to`.
    pub(super) fn pushed(&mut self, to: u64) {
        self.at = to;
        self.unacked.push_back(to);
        self.first = false;
    }
}

/// Serves the subscription of a mirror at version `from` until the mirror
/// goes away.
pub(crate) async fn serve(h: Arc<dyn Hosted>, from: u64, pushes: Pushes) -> Response {
    let mut c = Cursor {
        at: from,
        unacked: VecDeque::new(),
        first: true,
        pushes,
    };
    loop {
        while !c.window_open() {
            if !c.pushes.next_ack().await {
                return Ok(ClientReply::Done);
            }
        }
        let (to, push) = match h.since(c.at) {
            // A mirror that asks from the collection's version (its copy
            // on disk is current) hears so at once: it would otherwise
            // wait for the next write to know it subscribed.
            Since::Current if c.first => {
                let push = Push::Diff {
                    from: c.at,
                    to: c.at,
                    parts: Vec::new(),
                };
                (c.at, encode(&push)?)
            }
            Since::Current => {
                let closed = c.pushes.closed();
                match Fanout::follow(&h, c) {
                    Follow::Behind(back) => c = back,
                    Follow::Following(back) => {
                        tokio::select! {
                            back = back => match back {
                                Ok(back) => c = back,
                                // The fan-out found the connection gone.
                                Err(_) => return Ok(ClientReply::Done),
                            },
                            () = closed => return Ok(ClientReply::Done),
                        }
                    }
                }
                continue;
            }
            Since::Changes { to, items } => (to, changes(&*h, c.at, to, &items)?),
            Since::Gone => {
                let (version, state) = h.full_state()?;
                let reason = if c.first {
                    Resync::Behind
                } else {
                    Resync::TooSlow
                };
                let push = Push::Full {
                    version,
                    reason,
                    state: serde_bytes::Bytes::new(&state),
                };
                (version, encode(&push)?)
            }
        };
        metrics::counter!("statemesh_mirror_pushes_total").increment(1);
        if !c.pushes.push(push).await {
            return Ok(ClientReply::Done);
        }
        c.pushed(to);
    }
}

/// The push that takes a mirror from `from` to `to` with the history's
/// `items` between them.
pub(super) fn changes(
    h: &dyn Hosted,
    from: u64,
    to: u64,
    items: &[Item],
) -> Result<Bytes, Refusal> {
    let merged;
    let parts = if items.len() > MERGE_OVER {
        merged = h.merge(items)?;
        vec![serde_bytes::Bytes::new(&merged)]
    } else {
        items
            .iter()
            .map(|i| serde_bytes::Bytes::new(&i.changes))
            .collect()
    };
    encode(&Push::Diff { from, to, parts })
}

fn encode(push: &Push) -> Result<Bytes, Refusal> {
    postcard::to_allocvec(push)
        .map(Bytes::from)
        .map_err(|e| Refusal::BadRequest(format!("encoding a push: {e}")))
}
