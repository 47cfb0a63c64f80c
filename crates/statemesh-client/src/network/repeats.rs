//! Warnings that repeat: the first of a kind is logged at once, the rest
//! from the same address within a quiet period are counted and said in
//! one line when the period is over.
//!
//! A listener refuses the same peer over and over when that peer will
//! not change (a stale member of another cluster retrying every few
//! seconds, a client with a wrong certificate in a loop): one line says
//! what is wrong, and the operator's log is not a flood of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a repeated warning stays quiet.
pub const QUIET_FOR: Duration = Duration::from_secs(600);

/// Distinct (address, warning) pairs remembered; past this, the oldest
/// are forgotten (a scan of many addresses cannot grow it without bound).
const REMEMBERED: usize = 1024;

/// What to do with a warning, from [`Repeats::note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// Log it: the first of its kind, or the first after a quiet period
    /// in which `suppressed` more were counted and not logged.
    Warn {
        /// Repeats not logged since this warning was last logged.
        suppressed: u64,
    },
    /// Log it quietly (debug): it was logged less than [`QUIET_FOR`] ago.
    Quiet,
}

/// Remembers which warnings were logged lately, per remote address.
#[derive(Debug, Default)]
pub struct Repeats {
    seen: Mutex<HashMap<(IpAddr, String), Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged: Instant,
    suppressed: u64,
}

impl Say {
    /// What to add to the warning's message: how many were not logged.
    #[must_use]
    pub fn more(self) -> String {
        match self {
            Self::Warn { suppressed: 0 } | Self::Quiet => String::new(),
            Self::Warn { suppressed } => {
                format!(" (and {suppressed} more times from this address, not logged)")
            }
        }
    }
}

impl Repeats {
    /// Notes that `warning` happened for a connection from `from` at
    /// `now`, and says whether to log it.
    pub fn note(&self, from: IpAddr, warning: &str, now: Instant) -> Say {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = seen.get_mut(&(from, warning.to_owned())) {
            if now.saturating_duration_since(s.logged) < QUIET_FOR {
                s.suppressed += 1;
                return Say::Quiet;
            }
            let suppressed = std::mem::take(&mut s.suppressed);
            s.logged = now;
            return Say::Warn { suppressed };
        }
        if seen.len() >= REMEMBERED {
            seen.retain(|_, s| now.saturating_duration_since(s.logged) < QUIET_FOR);
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
        }
        seen.insert(
            (from, warning.to_owned()),
            Seen {
                logged: now,
                suppressed: 0,
            },
        );
        Say::Warn { suppressed: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_repeat_is_quiet_until_the_period_ends_then_counted() {
        let r = Repeats::default();
        let t = Instant::now();
        assert_eq!(r.note(ip(1), "bad CA", t), Say::Warn { suppressed: 0 });
        assert_eq!(
            r.note(ip(1), "bad CA", t + Duration::from_secs(30)),
            Say::Quiet
        );
        assert_eq!(
            r.note(ip(1), "bad CA", t + Duration::from_secs(60)),
            Say::Quiet
        );
        assert_eq!(
            r.note(ip(1), "bad CA", t + QUIET_FOR + Duration::from_secs(1)),
            Say::Warn { suppressed: 2 }
        );
        assert_eq!(
            r.note(ip(1), "bad CA", t + QUIET_FOR + Duration::from_secs(2)),
            Say::Quiet
        );
    }

    #[test]
    fn another_address_or_another_warning_is_said_at_once() {
        let r = Repeats::default();
        let t = Instant::now();
        assert_eq!(r.note(ip(1), "bad CA", t), Say::Warn { suppressed: 0 });
        assert_eq!(r.note(ip(2), "bad CA", t), Say::Warn { suppressed: 0 });
        assert_eq!(r.note(ip(1), "bad token", t), Say::Warn { suppressed: 0 });
    }

    #[test]
    fn many_addresses_do_not_grow_it_without_bound() {
        let r = Repeats::default();
        let t = Instant::now();
        for i in 0..(REMEMBERED as u32 * 3) {
            let from = IpAddr::from(i.to_be_bytes());
            assert_eq!(r.note(from, "scan", t), Say::Warn { suppressed: 0 });
        }
        assert!(r.seen.lock().unwrap().len() <= REMEMBERED);
    }
}
