//! Writer sessions: what makes a retried command apply once.
//!
//! Every writer (a `Client`, or a `Group`
//! handle on a node) draws a random 128-bit session id and numbers its
//! commands 1, 2, 3, ... Each command travels with a [`Stamp`]: the session,
//! its number, and the lowest number the writer still waits for (every
//! command below it has been answered or abandoned). The group's state
//! machine keeps the last outcomes of each session (`group::sessions`) and
//! answers a command it has already applied with the outcome it had then,
//! so a writer may send a command again whenever it does not know whether
//! the first try was applied: to another node, after a leader change, after
//! a lost reply.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

/// A command's place in its writer's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The writer's session id.
    pub session: u128,
    /// The command's number in the session (from 1).
    pub seq: u64,
    /// Every command of the session numbered below this one has been
    /// answered or abandoned: its outcome need not be kept.
    pub acked: u64,
    /// How long ago the writer first sent this command, in milliseconds:
    /// a retry older than a session's lifetime cannot be told from a new
    /// command once the session expired, and is refused instead.
    pub age_ms: u64,
}

/// Hands out a session's command numbers and remembers which are still
/// waiting for an answer.
pub struct Sequencer {
    session: u128,
    state: Mutex<Numbers>,
}

struct Numbers {
    next: u64,
    waiting: BTreeSet<u64>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("session", &format_args!("{:032x}", self.session))
            .finish_non_exhaustive()
    }
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequencer {
    /// A new session with a random id.
    pub fn new() -> Self {
        Self {
            session: random_id(),
            state: Mutex::new(Numbers {
                next: 1,
                waiting: BTreeSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Numbers> {
        // Nothing panics while holding it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers one command; it counts as waiting until the ticket drops.
    pub fn ticket(&self) -> Ticket<'_> {
        let mut n = self.lock();
        let seq = n.next;
        n.next += 1;
        n.waiting.insert(seq);
        Ticket {
            sequencer: self,
            seq,
            first_sent: Instant::now(),
        }
    }
}

/// One numbered command of a session, waiting for its answer.
pub struct Ticket<'a> {
    sequencer: &'a Sequencer,
    seq: u64,
    first_sent: Instant,
}

impl Ticket<'_> {
    /// The stamp to send now (a retry carries a newer `acked` and age).
    pub fn stamp(&self) -> Stamp {
        let n = self.sequencer.lock();
        Stamp {
            session: self.sequencer.session,
            seq: self.seq,
            // This ticket is waiting, so the set is not empty.
            acked: n.waiting.first().copied().unwrap_or(self.seq),
            age_ms: u64::try_from(self.first_sent.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.sequencer.lock().waiting.remove(&self.seq);
    }
}

/// 128 random bits from the operating system; if it cannot give them, a
/// mix of the time, the process id and a counter, which two writers of one
/// cluster will not share either.
fn random_id() -> u128 {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_ok() {
        return u128::from_le_bytes(bytes);
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    now ^ (u128::from(std::process::id()) << 64) ^ (u128::from(count) << 96)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_is_the_lowest_number_still_waiting() {
        let s = Sequencer::new();
        let a = s.ticket();
        let b = s.ticket();
        let c = s.ticket();
        assert_eq!((a.stamp().seq, b.stamp().seq, c.stamp().seq), (1, 2, 3));
        assert_eq!(c.stamp().acked, 1);
        drop(b);
        assert_eq!(c.stamp().acked, 1, "1 still waits");
        drop(a);
        assert_eq!(c.stamp().acked, 3);
        let d = s.ticket();
        assert_eq!(d.stamp().acked, 3);
        drop(c);
        assert_eq!(d.stamp().acked, 4);
    }

    #[test]
    fn sessions_have_distinct_ids() {
        assert_ne!(Sequencer::new().session, Sequencer::new().session);
    }
}
