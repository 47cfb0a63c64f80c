//! Where one mirror's subscription stands, and the pushes that move it.
//!
//! A subscription holds no queue of its own. Its [`Cursor`] remembers the
//! version the mirror will be at once it has applied what was pushed, and
//! the versions pushed but not yet acknowledged; the push is made from the
//! collection's shared history when it may go out.

use crate::group::Item;
use crate::network::Pushes;
use bytes::Bytes;
use statemesh_client::Refusal;
use statemesh_client::protocol::Push;

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
    /// The cursor of a mirror at version `from`, before any push.
    pub(super) fn new(from: u64, pushes: Pushes) -> Self {
        Self {
            at: from,
            unacked: Unacked::default(),
            first: true,
            pushes,
        }
    }

    /// Whether nothing was pushed yet.
    pub(super) fn first(&self) -> bool {
        self.first
    }

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

/// The push that takes a mirror from `from` to `to` with the history's
/// `items` between them; `merge` makes one run of many.
pub(super) fn changes(
    from: u64,
    to: u64,
    items: &[Item],
    merge: impl FnOnce(&[Item]) -> Result<Vec<u8>, Refusal>,
) -> Result<Bytes, Refusal> {
    let merged;
    let parts = if items.len() > MERGE_OVER {
        merged = merge(items)?;
        vec![serde_bytes::Bytes::new(&merged)]
    } else {
        items
            .iter()
            .map(|i| serde_bytes::Bytes::new(&i.changes))
            .collect()
    };
    encode(&Push::Diff { from, to, parts })
}

pub(super) fn encode(push: &Push) -> Result<Bytes, Refusal> {
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
