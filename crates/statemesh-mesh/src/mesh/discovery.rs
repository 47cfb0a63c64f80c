//! The task that runs this peer's gossip: timers, joining through seeds,
//! and sending what the engine asks for over the gossip links.

use super::error::MeshError;
use super::shared::{Shared, lock};
use crate::gossip::Event;
use crate::wire::MeshRequest;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How soon a peer announces itself again to seeds it has not met; the
/// wait doubles up to [`ANNOUNCE_AT_MOST`] while some stay unmet, so a
/// seed that is down or refuses it (another cluster) is not asked every
/// second.
const ANNOUNCE_AGAIN: Duration = Duration::from_secs(1);
const ANNOUNCE_AT_MOST: Duration = Duration::from_secs(30);

/// Runs gossip until the mesh is dropped.
pub(super) async fn drive(shared: Arc<Shared>) {
    let mut announce_at = Instant::now();
    let mut announce_every = ANNOUNCE_AGAIN;
    loop {
        let now = Instant::now();
        let (next, unmet) = {
            let mut gossip = shared.gossip();
            // Seeds not in the catalog: this peer started before them, was
            // cut off from them, or two groups formed apart (nodes that
            // restart together). Announcing to them joins the groups;
            // SWIM alone never would.
            let unmet: Vec<String> = lock(&shared.seeds)
                .iter()
                .filter(|seed| !gossip.catalog().iter().any(|e| e.info.address == **seed))
                .cloned()
                .collect();
            if !unmet.is_empty() && now >= announce_at {
                for seed in &unmet {
                    if let Err(e) = gossip.join(seed, now) {
                        tracing::debug!(%seed, error = %e, "announce failed");
                    }
                }
                announce_at = now + announce_every;
                announce_every = (announce_every * 2).min(ANNOUNCE_AT_MOST);
            } else if unmet.is_empty() {
                announce_every = ANNOUNCE_AGAIN;
            }
            (gossip.tick(now), !unmet.is_empty())
        };
        dispatch(&shared);
        let mut until = next.unwrap_or(now + ANNOUNCE_AGAIN);
        if unmet {
            until = until.min(announce_at);
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            () = shared.wake.notified() => {}
        }
    }
}

/// Sends what the gossip engine has queued, each message on a task of
/// its own (a dead peer's send waits for its dial; nothing else does), and
/// publishes the catalog if it changed; the sends, for a caller that
/// waits for them.
pub(super) fn dispatch(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    take(shared)
        .into_iter()
        .map(|(address, payload)| {
            let shared = Arc::clone(shared);
            tokio::spawn(async move { send(&shared, &address, payload).await })
        })
        .collect()
}

/// Sends what is queued now and waits, at most `patience`, for it to
/// leave; sends still under way go on by themselves.
pub(super) async fn flush_now(shared: &Arc<Shared>, patience: Duration) {
    let sends = dispatch(shared);
    let all = async {
        for send in sends {
            let _ = send.await;
        }
    };
    if tokio::time::timeout(patience, all).await.is_err() {
        tracing::debug!(?patience, "not every peer took the gossip in time");
    }
}

/// The messages queued, encoded, by address; applies catalog changes.
fn take(shared: &Shared) -> Vec<(String, Vec<u8>)> {
    let mut gossip = shared.gossip();
    let from = gossip.member().clone();
    let out = gossip
        .take_outgoing()
        .into_iter()
        .map(|(to, message)| {
            let request = MeshRequest::Gossip {
                from: from.clone(),
                message,
            };
            // Gossip messages are ids, strings and bytes: they encode.
            (
                to.address,
                postcard::to_allocvec(&request).unwrap_or_default(),
            )
        })
        .collect();
    let events = gossip.take_events();
    if !events.is_empty() {
        let before = shared.catalog.borrow().clone();
        for event in &events {
            match event {
                Event::Joined(id) => {
                    if let Some(entry) = gossip.catalog().get(*id) {
                        tracing::info!(peer = %id, address = %entry.info.address, tags = %entry.info.tags, "peer joined the mesh");
                    }
                }
                Event::Updated(id) => tracing::debug!(peer = %id, "peer entry changed"),
                Event::Left(id) => {
                    if let Some(entry) = before.get(*id) {
                        tracing::info!(peer = %id, address = %entry.info.address, "peer left the mesh");
                        shared.gossip_links.forget(&entry.info.address);
                    }
                }
            }
        }
        shared
            .catalog
            .send_replace(Arc::new(gossip.catalog().clone()));
    }
    out
}

async fn send(shared: &Shared, address: &str, payload: Vec<u8>) {
    let timeout = shared.dialer.limits.connect_timeout;
    let attempt = async {
        let link = shared.gossip_links.get(&shared.dialer, address).await?;
        link.connection
            .call(payload)
            .await
            .map_err(|e| MeshError::Config(format!("{e:?}")))
    };
    let failed = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {timeout:?}")),
    };
    // A peer that does not answer is the failure detector's to judge:
    // logged quietly, never retried here. A seed is different: a process
    // that cannot reach its seeds may be alone, so that is said once, and
    // again only when the reason changes or it is reached.
    let seed = lock(&shared.seeds).iter().any(|s| s == address);
    let mut said = lock(&shared.seed_errors);
    match failed {
        Some(why) if seed => {
            if said.get(address) != Some(&why) {
                tracing::warn!(%address, error = %why, "cannot reach the seed");
                said.insert(address.to_owned(), why);
            }
        }
        Some(why) => tracing::debug!(%address, error = %why, "gossip not delivered"),
        None => {
            if said.remove(address).is_some() {
                tracing::info!(%address, "reached the seed");
            }
        }
    }
}
