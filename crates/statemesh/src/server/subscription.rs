//! Serves one mirror: pushes what it is missing, then every change as it
//! is applied, never more than a few pushes ahead of its acknowledgements.
//!
//! A subscription holds no queue of its own. It remembers the version the
//! mirror will be at once it has applied what was pushed, and each time it
//! may push, it takes what the collection's shared history holds after that
//! version: one version's changes when it keeps up, several (merged into
//! one run when many) when it lags, the whole state when it has fallen out
//! of the history. So a slow mirror costs its own bandwidth, not memory on
//! the node, and never holds up a commit.

use super::kinds::Hosted;
use crate::client::Refusal;
use crate::client::Resync;
use crate::client::protocol::{ClientReply, Push, Response};
use crate::group::Since;
use crate::network::Pushes;
use std::collections::VecDeque;

/// Pushes a mirror may have unacknowledged.
const WINDOW: usize = 4;

/// Versions' changes sent as they are, each already encoded, before they
/// are merged into one run instead.
const MERGE_OVER: usize = 8;

/// Serves the subscription of a mirror at version `from` until the mirror
/// goes away.
pub(crate) async fn serve(h: &dyn Hosted, from: u64, mut pushes: Pushes) -> Response {
    let mut when = h.when();
    let mut at = from;
    let mut first = true;
    // The versions pushes took the mirror to, not yet acknowledged.
    let mut unacked: VecDeque<u64> = VecDeque::new();
    loop {
        loop {
            let acked = pushes.acked();
            while unacked.front().is_some_and(|&v| v <= acked) {
                unacked.pop_front();
            }
            if unacked.len() < WINDOW {
                break;
            }
            if !pushes.next_ack().await {
                return Ok(ClientReply::Done);
            }
        }
        let push = match h.since(at) {
            Since::Current => {
                // Past what the mirror has: published by the store after
                // the history, so `since` then finds it.
                // Acknowledgements do not wake it here: with a thousand
                // mirrors, each push would cost two wake-ups.
                tokio::select! {
                    () = when.reaches(at + 1) => {}
                    () = pushes.closed() => return Ok(ClientReply::Done),
                }
                continue;
            }
            Since::Changes { to, items } => {
                let parts = if items.len() > MERGE_OVER {
                    vec![h.merge(&items)?]
                } else {
                    items.iter().map(|i| i.changes.to_vec()).collect()
                };
                let push = Push::Diff {
                    from: at,
                    to,
                    parts: parts.into_iter().map(serde_bytes::ByteBuf::from).collect(),
                };
                at = to;
                push
            }
            Since::Gone => {
                let (version, state) = h.full_state()?;
                at = version;
                Push::Full {
                    version,
                    reason: if first {
                        Resync::Behind
                    } else {
                        Resync::TooSlow
                    },
                    state,
                }
            }
        };
        first = false;
        let bytes = postcard::to_allocvec(&push)
            .map_err(|e| Refusal::BadRequest(format!("encoding a push: {e}")))?;
        metrics::counter!("statemesh_mirror_pushes_total").increment(1);
        if !pushes.push(bytes).await {
            return Ok(ClientReply::Done);
        }
        unacked.push_back(at);
    }
}
