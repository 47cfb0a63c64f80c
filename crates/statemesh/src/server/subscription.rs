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
    unacked: Unacked,
    /// Nothing was pushed yet: a whole state now means the mirror asked
    /// from before the history, not that it was too slow.
    first: bool,
    pub(super) pushes: Pushes,
}

impl Cursor {
    /// Whether another push may go out now (a full window first forgets
    /// what was acknowledged).
    pub(super) fn window_open(&mut self) -> bool {
        // The acknowledgements are looked at only when the window is full:
        // the reader of the mirror's connection writes them, on another
        // thread, and the fan-out reading them for every mirror at every
        // version was a cache miss each.
        if self.unacked.len < WINDOW {
            return true;
        }
        self.unacked.forget_through(self.pushes.acked());
        self.unacked.len < WINDOW
    }

    /// Notes a push that takes the mirror to `to` (the window must be
    /// open).
    pub(super) fn pushed(&mut self, to: u64) {
        self.at = to;
        self.unacked.push(to);
        self.first = false;
    }
}

/// The versions pushes took a mirror to that it has not acknowledged,
/// oldest first: a ring in the cursor itself, since the fan-out looks at
/// every mirror's at every version, and a queue on the heap was one cache
/// miss more each time.
#[derive(Default)]
struct Unacked {
    versions: [u64; WINDOW],
    first: usize,
    len: usize,
}

impl Unacked {
    /// Adds the newest; a full ring forgets its oldest (which only lets
    /// the mirror have one more push outstanding).
    fn push(&mut self, version: u64) {
        if self.len == WINDOW {
            self.first = (self.first + 1) % WINDOW;
            self.len -= 1;
        }
        self.versions[(self.first + self.len) % WINDOW] = version;
        self.len += 1;
    }

    /// Forgets those up to `acked`, which the mirror has applied.
    fn forget_through(&mut self, acked: u64) {
        while self.len > 0 && self.versions[self.first] <= acked {
            self.first = (self.first + 1) % WINDOW;
            self.len -= 1;
        }
    }
}

/// Serves the subscription of a mirror at version `from` until the mirror
/// goes away.
pub(crate) async fn serve(h: Arc<dyn Hosted>, from: u64, pushes: Pushes) -> Response {
    let _connected = h.fanout().connect();
    let mut c = Cursor {
        at: from,
        unacked: Unacked::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unacknowledged_ring_keeps_order_across_its_end() {
        let mut u = Unacked::default();
        for v in 1..=WINDOW as u64 {
            u.push(v);
        }
        assert_eq!(u.len, WINDOW);
        u.forget_through(3);
        assert_eq!(u.len, WINDOW - 3);
        // Wraps around the array's end.
        for v in 9..=11 {
            u.push(v);
        }
        assert_eq!(u.len, WINDOW);
        u.forget_through(8);
        assert_eq!((u.len, u.versions[u.first]), (3, 9));
        u.forget_through(100);
        assert_eq!(u.len, 0);
    }

    #[test]
    fn a_full_ring_forgets_its_oldest() {
        let mut u = Unacked::default();
        for v in 1..=WINDOW as u64 + 2 {
            u.push(v);
        }
        assert_eq!((u.len, u.versions[u.first]), (WINDOW, 3));
    }
}
