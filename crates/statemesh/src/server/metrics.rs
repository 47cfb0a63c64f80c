//! What a server reports through the `metrics` facade, sampled from each
//! group's openraft metrics once a second. The program decides where the
//! numbers go (the `statemesh` binary serves them to Prometheus).
//!
//! Per group (label `group`): `statemesh_commits_total` (entries applied
//! here), `statemesh_apply_lag` (entries in the log not yet applied),
//! `statemesh_term`, `statemesh_is_leader`, `statemesh_elections_total`
//! (term changes seen), `statemesh_leader_changes_total`; on the leader, per
//! peer (label `peer`): `statemesh_replication_lag` (entries it lacks). The
//! transport counts `statemesh_connections` (open, by `direction`),
//! `statemesh_connections_refused_total`, `statemesh_bytes_sent_total` and
//! `statemesh_bytes_received_total`; the log, `statemesh_wal_sync_seconds`.

use super::ServerInner;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Seen {
    applied: u64,
    term: u64,
    leader: Option<u64>,
}

pub(super) async fn report(inner: Arc<ServerInner>) {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for (name, group) in inner.all_hosted().await {
            let m = group.raft().metrics().borrow().clone();
            let applied = m.last_applied.map_or(0, |l| l.index);
            let last = m.last_log_index.unwrap_or(0);
            let s = seen.entry(name.clone()).or_default();
            let labels = [("group", name.clone())];
            metrics::counter!("statemesh_commits_total", &labels)
                .increment(applied.saturating_sub(s.applied));
            if s.term != 0 && m.current_term > s.term {
                metrics::counter!("statemesh_elections_total", &labels)
                    .increment(m.current_term - s.term);
            }
            if s.term != 0 && m.current_leader != s.leader {
                metrics::counter!("statemesh_leader_changes_total", &labels).increment(1);
            }
            *s = Seen {
                applied,
                term: m.current_term,
                leader: m.current_leader,
            };
            metrics::gauge!("statemesh_apply_lag", &labels)
                .set(last.saturating_sub(applied) as f64);
            metrics::gauge!("statemesh_term", &labels).set(m.current_term as f64);
            let leads = m.state == openraft::ServerState::Leader;
            metrics::gauge!("statemesh_is_leader", &labels).set(if leads { 1.0 } else { 0.0 });
            for (peer, matched) in m.replication.iter().flatten() {
                let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
                metrics::gauge!(
                    "statemesh_replication_lag",
                    "group" => name.clone(),
                    "peer" => peer.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}
