//! The status page: one self-contained HTML file (its script and style
//! inline, nothing fetched from elsewhere) that asks `/status.json` every
//! two seconds and draws members, collections and commit rates from it;
//! and the sampler behind the rates.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::json;
use statemesh::Server;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The page.
pub(super) async fn page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("page.html")),
    )
}

/// How often the applied indices are sampled.
const STEP: Duration = Duration::from_secs(1);
/// How many samples are kept: five minutes.
const KEPT: usize = 301;

/// Each group's applied index on this node, sampled every second over the
/// last five minutes. A group's entries applied per second here are its
/// commits per second (every member applies every committed entry), so the
/// chart reads the same on any node.
#[derive(Clone, Default)]
pub(super) struct Rates(Arc<Mutex<VecDeque<Sample>>>);

struct Sample {
    unix_ms: u64,
    applied: BTreeMap<String, u64>,
}

impl Rates {
    fn push(&self, sample: Sample) {
        let mut samples = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// `{"times_ms": [..], "series": {group: [commits/s, ..]}}`, a point per
    /// interval between two samples, stamped with the later one's time.
    pub(super) fn to_json(&self) -> serde_json::Value {
        let samples = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut times = Vec::new();
        let mut series: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (i, (a, b)) in samples.iter().zip(samples.iter().skip(1)).enumerate() {
            let seconds = b.unix_ms.saturating_sub(a.unix_ms).max(1) as f64 / 1000.0;
            times.push(b.unix_ms);
            for (name, &now) in &b.applied {
                let points = series.entry(name).or_default();
                // A group that appeared later starts at zero.
                points.resize(i, 0.0);
                let before = a.applied.get(name).copied().unwrap_or(now);
                points.push(now.saturating_sub(before) as f64 / seconds);
            }
        }
        for points in series.values_mut() {
            points.resize(times.len(), 0.0);
        }
        json!({ "step_ms": STEP.as_millis() as u64, "times_ms": times, "series": series })
    }
}

/// Samples `server`'s groups every second until aborted.
pub(super) async fn sample(server: Arc<Server>, rates: Rates) {
    let mut tick = tokio::time::interval(STEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let status = server.status().await;
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let applied = status
            .groups
            .into_iter()
            .map(|(name, g)| (name, g.applied))
            .collect();
        rates.push(Sample { unix_ms, applied });
    }
}
