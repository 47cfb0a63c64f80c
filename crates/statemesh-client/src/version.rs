//! The version a copy of a collection has applied, and waiting for it.
//!
//! A watch channel did this before. Its sender wakes waiters through eight
//! notifiers (spread for many receivers), eight locks for every applied
//! version; with a thousand mirrors in one process that was 9 % of the
//! CPU of the commit-to-mirror benchmark. Here the version is an atomic and
//! one notifier wakes whoever waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

#[derive(Debug)]
struct Cell {
    version: AtomicU64,
    /// The copy is gone: no version will come.
    closed: AtomicBool,
    changed: Notify,
}

/// The copy's side: sets the version; closes it when dropped.
#[derive(Debug)]
pub struct VersionSender(Arc<Cell>);

/// The version has no sender any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl VersionSender {
    /// A copy at `version`.
    #[must_use]
    pub fn new(version: u64) -> Self {
        Self(Arc::new(Cell {
            version: AtomicU64::new(version),
            closed: AtomicBool::new(false),
            changed: Notify::new(),
        }))
    }

    /// The version now.
    pub fn get(&self) -> u64 {
        self.0.version.load(Ordering::Acquire)
    }

    /// Sets the version and wakes whoever waits.
    pub fn set(&self, version: u64) {
        self.0.version.store(version, Ordering::Release);
        self.0.changed.notify_waiters();
    }

    /// A receiver that has seen the version as it is now.
    pub fn subscribe(&self) -> VersionReceiver {
        VersionReceiver {
            cell: Arc::clone(&self.0),
            seen: self.get(),
        }
    }
}

impl Drop for VersionSender {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.changed.notify_waiters();
    }
}

/// Waits for versions.
#[derive(Debug, Clone)]
pub struct VersionReceiver {
    cell: Arc<Cell>,
    /// The version last seen, for [`VersionReceiver::changed`].
    seen: u64,
}

impl VersionReceiver {
    /// The version now, noted as seen.
    pub(crate) fn borrow_and_update(&mut self) -> u64 {
        self.seen = self.cell.version.load(Ordering::Acquire);
        self.seen
    }

    /// Waits until `ready` holds for the version, and returns it.
    pub async fn wait_for(&mut self, mut ready: impl FnMut(u64) -> bool) -> Result<u64, Closed> {
        loop {
            // Looked at before registering: a waiter just woken nearly
            // always finds its version here, and registering (then
            // unregistering) is two turns of the notifier's lock, which
            // every waiter shares.
            if let Some(version) = check(&self.cell, &mut self.seen, &mut ready) {
                return Ok(version);
            }
            // Registered before the version is read again: a version set
            // after that read wakes it.
            let notified = self.cell.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(version) = check(&self.cell, &mut self.seen, &mut ready) {
                return Ok(version);
            }
            if self.cell.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            notified.await;
        }
    }

    /// Waits until the version differs from the one last seen.
    pub(crate) async fn changed(&mut self) -> Result<(), Closed> {
        let seen = self.seen;
        self.wait_for(|v| v != seen).await.map(|_| ())
    }
}

/// The version now, noted as `seen`, if `ready` holds for it.
fn check(cell: &Cell, seen: &mut u64, ready: &mut impl FnMut(u64) -> bool) -> Option<u64> {
    let version = cell.version.load(Ordering::Acquire);
    ready(version).then(|| {
        *seen = version;
        version
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Versions;

    #[tokio::test]
    async fn waits_for_a_version_and_sees_the_sender_go() {
        let sender = VersionSender::new(3);
        let mut receiver = sender.subscribe();
        assert_eq!(receiver.wait_for(|v| v >= 3).await, Ok(3));
        let waiting = tokio::spawn({
            let mut r = receiver.clone();
            async move { r.wait_for(|v| v >= 5).await }
        });
        tokio::task::yield_now().await;
        sender.set(4);
        sender.set(5);
        assert_eq!(waiting.await.unwrap(), Ok(5));
        assert_eq!(receiver.borrow_and_update(), 5);
        let changed = tokio::spawn({
            let mut r = receiver.clone();
            async move { r.changed().await }
        });
        drop(sender);
        assert_eq!(changed.await.unwrap(), Err(Closed));
        assert_eq!(receiver.wait_for(|v| v >= 9).await, Err(Closed));
    }

    #[tokio::test]
    async fn updated_gives_each_version_and_ends_when_the_copy_closes() {
        let sender = VersionSender::new(1);
        let mut versions = Versions::new(sender.subscribe());
        let waiting = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(v) = versions.updated().await {
                seen.push(v);
            }
            seen
        });
        // On this one-thread runtime a yield lets the waiting task run
        // until it waits again: it sees each version before the next.
        for v in 2..=4 {
            tokio::task::yield_now().await;
            sender.set(v);
        }
        tokio::task::yield_now().await;
        drop(sender);
        assert_eq!(waiting.await.unwrap(), vec![2, 3, 4]);
    }
}

/// Futures for a copy's versions: a replica's (inside a node's `When`) or a
/// mirror's.
#[derive(Debug, Clone)]
pub struct Versions {
    version: VersionReceiver,
}

impl Versions {
    /// Futures over `version`.
    #[must_use]
    pub fn new(version: VersionReceiver) -> Self {
        Self { version }
    }

    /// Resolves once this copy has applied `version`: a local read then
    /// sees every write up to it.
    pub async fn reaches(&mut self, version: u64) {
        let _ = self.version.wait_for(|v| v >= version).await;
    }

    /// Resolves once this copy has applied `version` (`true`) or will
    /// apply nothing more (`false`: it was closed).
    pub async fn reached(&mut self, version: u64) -> bool {
        self.version.wait_for(|v| v >= version).await.is_ok()
    }

    /// Resolves at the next change this copy applies, with the version
    /// the copy has then; `None` once it will apply nothing more (it was
    /// closed), so that a loop over it ends.
    pub async fn updated(&mut self) -> Option<u64> {
        self.version.borrow_and_update();
        self.version.changed().await.ok()?;
        Some(self.version.borrow_and_update())
    }
}
