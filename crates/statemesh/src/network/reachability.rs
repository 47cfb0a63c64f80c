//! Whether a peer answers, as the log tells it: one line when it stops
//! answering, one when it answers again, and a reminder at most once a
//! minute in between.
//!
//! Raft sends to a silent peer every heartbeat (50 ms by default), so
//! logging each failed call made one dead peer fill the survivors' logs
//! with thousands of lines a minute. The outcome of every call is noted
//! here instead, and only a change of state is logged.

use crate::types::NodeId;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a peer must go without answering before it is reported: one
/// slow answer under load is not an outage.
const DOWN_AFTER: Duration = Duration::from_secs(1);
/// How often a peer that stays silent is mentioned again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// One peer's answers, as seen by this node.
pub(crate) struct Reachability {
    peer: NodeId,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the current run of failures began (`None` after an answer).
    failing_since: Option<Instant>,
    /// Set once the run was reported: when, and when last reminded.
    reported: Option<(Instant, Instant)>,
}

/// What a change of state has to say.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Down,
    StillDown(Duration),
    Back(Duration),
}

impl State {
    fn answered(&mut self, now: Instant) -> Option<Line> {
        self.failing_since = None;
        let (since, _) = self.reported.take()?;
        Some(Line::Back(now.saturating_duration_since(since)))
    }

    fn failed(&mut self, now: Instant) -> Option<Line> {
        let since = *self.failing_since.get_or_insert(now);
        match &mut self.reported {
            None if now.saturating_duration_since(since) >= DOWN_AFTER => {
                self.reported = Some((since, now));
                Some(Line::Down)
            }
            Some((down, reminded)) if now.saturating_duration_since(*reminded) >= REMIND_EVERY => {
                *reminded = now;
                Some(Line::StillDown(now.saturating_duration_since(*down)))
            }
            _ => None,
        }
    }
}

impl Reachability {
    pub(crate) fn new(peer: NodeId) -> Self {
        Self {
            peer,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The peer answered a call.
    pub(crate) fn answered(&self) {
        let line = self.state().answered(Instant::now());
        if let Some(Line::Back(after)) = line {
            tracing::info!(
                "peer {} answers again (after {})",
                self.peer,
                seconds(after)
            );
        }
    }

    /// A call to the peer failed (`why`), at `address` if known.
    pub(crate) fn failed(&self, address: Option<&str>, why: &dyn std::fmt::Display) {
        let line = self.state().failed(Instant::now());
        let address = address.unwrap_or("an unknown address");
        match line {
            Some(Line::Down) => {
                tracing::warn!("peer {} at {address} is not answering: {why}", self.peer)
            }
            Some(Line::StillDown(d)) => tracing::warn!(
                "peer {} at {address} has not answered for {}: {why}",
                self.peer,
                seconds(d)
            ),
            Some(Line::Back(_)) | None => {}
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_peer_is_reported_once_reminded_each_minute_and_welcomed_back_once() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut s = State::default();
        // Failures every 50 ms: nothing until a second has passed.
        let lines: Vec<Line> = (0..=200).filter_map(|k| s.failed(at(k * 50))).collect();
        assert_eq!(lines, vec![Line::Down]);
        // Ten seconds of failures: one line; after the minute, one reminder.
        let lines: Vec<Line> = (200..=1300).filter_map(|k| s.failed(at(k * 50))).collect();
        assert_eq!(lines, vec![Line::StillDown(Duration::from_millis(61_000))]);
        assert_eq!(
            s.answered(at(70_000)),
            Some(Line::Back(Duration::from_secs(70)))
        );
        assert_eq!(s.answered(at(70_050)), None);
    }

    #[test]
    fn failures_shorter_than_the_threshold_say_nothing() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut s = State::default();
        for round in 0..100 {
            let base = round * 1_000;
            for k in 0..18 {
                assert_eq!(s.failed(at(base + k * 50)), None);
            }
            assert_eq!(s.answered(at(base + 900)), None);
        }
    }
}
