//! The table of writer sessions that a group's state machine keeps, so
//! that a command sent twice is applied once (see `crate::session` for the
//! writer's side).
//!
//! It is replicated state: every replica applies the same entries to it in
//! the same order, it is written into every snapshot, and it changes only
//! with the log. Its clock is the time the leader wrote into each entry,
//! never a replica's own, and only moves forward.

use serde::{Deserialize, Serialize};
use statemesh_core::session::Stamp;
use std::collections::BTreeMap;

/// How long a session lives after its last command: a writer's retries
/// must end well within it (a client's deadline is far shorter). A retry
/// older than this is refused, since its session may have expired and
/// taken the command's outcome with it.
pub(crate) const SESSION_TTL_MS: u64 = 10 * 60 * 1000;
/// Outcomes kept per session above its `acked` mark; past this the oldest
/// are forgotten and a retry of one is refused (a writer with more
/// commands in flight than this gets them answered, not deduplicated).
const MAX_KEPT: usize = 4096;
/// Sessions kept at most; past this the least recently active goes.
const MAX_SESSIONS: usize = 100_000;

/// What a group knows of its writers' sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sessions {
    /// The latest leader time seen, in milliseconds since the epoch.
    now_ms: u64,
    /// When expired sessions are next looked for.
    next_sweep_ms: u64,
    table: BTreeMap<u128, Session>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// When it last sent a command (leader time).
    last_ms: u64,
    /// Commands numbered below this are done: a copy of one that still
    /// arrives is not applied.
    floor: u64,
    /// The outcomes of its commands from `floor` on, by number.
    outcomes: BTreeMap<u64, Kept>,
}

/// A command's outcome as it was first answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Kept {
    /// The encoded response.
    #[serde(with = "serde_bytes")]
    pub(crate) reply: Vec<u8>,
    /// The log index it was applied at.
    pub(crate) index: u64,
}

/// What to do with a stamped command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not applied before: apply it, then [`Sessions::record`] it.
    Apply,
    /// Applied before; this was its outcome.
    Done(Kept),
    /// Its session no longer knows whether it was applied: do not apply.
    Expired,
}

impl Sessions {
    /// Moves the clock to the time the leader wrote into an entry, and
    /// forgets sessions idle for longer than their lifetime.
    pub(crate) fn tick(&mut self, time_ms: u64) {
        self.now_ms = self.now_ms.max(time_ms);
        if self.now_ms < self.next_sweep_ms {
            return;
        }
        let now = self.now_ms;
        self.table
            .retain(|_, s| now.saturating_sub(s.last_ms) <= SESSION_TTL_MS);
        self.next_sweep_ms = now + SESSION_TTL_MS / 8;
    }

    /// Whether the command stamped `stamp` is to be applied.
    pub(crate) fn check(&mut self, stamp: &Stamp) -> Check {
        let Some(s) = self.table.get_mut(&stamp.session) else {
            return if stamp.age_ms >= SESSION_TTL_MS {
                Check::Expired
            } else {
                Check::Apply
            };
        };
        s.last_ms = self.now_ms;
        if stamp.acked > s.floor {
            s.floor = stamp.acked;
            s.outcomes = s.outcomes.split_off(&stamp.acked);
        }
        if stamp.seq < s.floor {
            Check::Expired
        } else if let Some(kept) = s.outcomes.get(&stamp.seq) {
            Check::Done(kept.clone())
        } else {
            Check::Apply
        }
    }

    /// Keeps the outcome of a command just applied.
    pub(crate) fn record(&mut self, stamp: &Stamp, reply: &[u8], index: u64) {
        if !self.table.contains_key(&stamp.session) && self.table.len() >= MAX_SESSIONS {
            self.evict_idlest();
        }
        let s = self.table.entry(stamp.session).or_insert(Session {
            last_ms: self.now_ms,
            floor: stamp.acked,
            outcomes: BTreeMap::new(),
        });
        s.outcomes.insert(
            stamp.seq,
            Kept {
                reply: reply.to_vec(),
                index,
            },
        );
        while s.outcomes.len() > MAX_KEPT {
            if let Some((seq, _)) = s.outcomes.pop_first() {
                s.floor = s.floor.max(seq + 1);
            }
        }
    }

    fn evict_idlest(&mut self) {
        let idlest = self
            .table
            .iter()
            .min_by_key(|(id, s)| (s.last_ms, **id))
            .map(|(id, _)| *id);
        if let Some(id) = idlest {
            self.table.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Sessions {
        fn len(&self) -> usize {
            self.table.len()
        }
    }

    fn stamp(session: u128, seq: u64, acked: u64) -> Stamp {
        Stamp {
            session,
            seq,
            acked,
            age_ms: 0,
        }
    }

    #[test]
    fn a_command_seen_again_gets_its_first_outcome() {
        let mut s = Sessions::default();
        s.tick(1_000);
        assert_eq!(s.check(&stamp(7, 1, 1)), Check::Apply);
        s.record(&stamp(7, 1, 1), b"first", 5);
        let again = s.check(&stamp(7, 1, 1));
        assert_eq!(
            again,
            Check::Done(Kept {
                reply: b"first".to_vec(),
                index: 5
            })
        );
        // Another session's command 1 is its own.
        assert_eq!(s.check(&stamp(8, 1, 1)), Check::Apply);
    }

    #[test]
    fn outcomes_below_acked_are_forgotten_and_their_copies_refused() {
        let mut s = Sessions::default();
        s.record(&stamp(1, 1, 1), b"a", 1);
        s.record(&stamp(1, 2, 1), b"b", 2);
        // The writer has its answer to 1 and says so with command 3.
        assert_eq!(s.check(&stamp(1, 3, 2)), Check::Apply);
        s.record(&stamp(1, 3, 2), b"c", 3);
        assert_eq!(s.check(&stamp(1, 1, 2)), Check::Expired);
        assert!(matches!(s.check(&stamp(1, 2, 2)), Check::Done(_)));
    }

    #[test]
    fn idle_sessions_expire_by_leader_time_and_old_retries_are_refused() {
        let mut s = Sessions::default();
        s.tick(1_000);
        s.record(&stamp(1, 1, 1), b"a", 1);
        s.tick(1_000 + SESSION_TTL_MS + 1);
        assert_eq!(s.len(), 0);
        // A retry of command 1 that old cannot be told from a new one.
        let mut old = stamp(1, 1, 1);
        old.age_ms = SESSION_TTL_MS;
        assert_eq!(s.check(&old), Check::Expired);
        // A clock that goes back does not revive anything.
        s.tick(0);
        assert_eq!(s.now_ms, 1_000 + SESSION_TTL_MS + 1);
    }

    #[test]
    fn a_session_keeps_a_bounded_number_of_outcomes() {
        let mut s = Sessions::default();
        for seq in 1..=(MAX_KEPT as u64 + 10) {
            s.record(&stamp(1, seq, 1), b"x", seq);
        }
        assert_eq!(s.table[&1].outcomes.len(), MAX_KEPT);
        assert_eq!(s.check(&stamp(1, 1, 1)), Check::Expired);
        assert!(matches!(s.check(&stamp(1, 11, 1)), Check::Done(_)));
    }
}
