//! Serves one mirror: pushes what it is missing, then every change as it
//! is applied, never more than a few pushes ahead of its acknowledgements.
//!
//! A subscription holds no queue of its own. Its `Cursor` remembers the
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

use super::cursor::{Cursor, changes, encode};
use super::fanout::{Fanout, Follow, Followed};
use crate::group::Since;
use crate::network::Pushes;
use statemesh_client::Resync;
use statemesh_client::protocol::{ClientReply, Push, Response};
use std::sync::Arc;

/// Serves the subscription of a mirror at version `from` until the mirror
/// goes away.
pub(crate) async fn serve(h: Arc<dyn Followed>, from: u64, pushes: Pushes) -> Response {
    let _connected = h.fanout().connect();
    let mut c = Cursor::new(from, pushes);
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
            Since::Current if c.first() => {
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
            Since::Changes { to, items } => (to, changes(c.at, to, &items, |i| h.merge(i))?),
            Since::Gone => {
                let (version, state) = h.full_state()?;
                let reason = if c.first() {
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
