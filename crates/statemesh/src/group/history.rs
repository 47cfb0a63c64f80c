//! The changes of a group's recent versions, kept for mirrors: each
//! version's changes encoded once, shared by every mirror that needs them,
//! and bounded by count and bytes.

use statemesh_core::{Changes, Mirrored, StateMachine};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// How much history a group keeps for mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// The most versions with changes kept (default 4096).
    pub versions: usize,
    /// The most bytes of encoded changes kept (default 16 MiB).
    pub bytes: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        Self {
            versions: 4096,
            bytes: 16 << 20,
        }
    }
}

/// One version's changes: a postcard `Vec<SM::Change>`.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) version: u64,
    pub(crate) changes: Arc<[u8]>,
}

/// What the history holds after a version.
#[derive(Debug)]
pub(crate) enum Since {
    /// The copy is at the group's version (or past it: it followed a node
    /// that is ahead of this one).
    Current,
    /// The changes of each version after the one asked for, oldest first,
    /// up to `to`, the group's version.
    Changes { to: u64, items: Vec<Item> },
    /// The version asked for is older than the history: only the whole
    /// state brings the copy up to date.
    Gone,
}

#[derive(Debug)]
struct Inner {
    /// Every change after this version is in `items`.
    start: u64,
    /// The group's version.
    end: u64,
    items: VecDeque<Item>,
    bytes: usize,
}

/// A group's recent changes.
#[derive(Debug)]
pub(crate) struct History {
    inner: Mutex<Inner>,
    limits: HistoryLimits,
}

impl History {
    /// An empty history of a group at `version`.
    pub(crate) fn new(version: u64, limits: HistoryLimits) -> Self {
        Self {
            inner: Mutex::new(Inner {
                start: version,
                end: version,
                items: VecDeque::new(),
                bytes: 0,
            }),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The group's version, as far as the history knows.
    pub(crate) fn version(&self) -> u64 {
        self.lock().end
    }

    /// Adds `version`'s changes (none: the version passed with no change,
    /// as a membership entry does) and drops the oldest past the limits.
    fn push(&self, version: u64, changes: Option<Arc<[u8]>>) {
        let mut h = self.lock();
        if version <= h.end {
            return;
        }
        h.end = version;
        if let Some(changes) = changes {
            h.bytes += changes.len();
            h.items.push_back(Item { version, changes });
        }
        while h.items.len() > self.limits.versions || h.bytes > self.limits.bytes {
            let Some(old) = h.items.pop_front() else {
                break;
            };
            h.bytes -= old.changes.len();
            h.start = old.version;
        }
    }

    /// Forgets everything: the state was replaced by a snapshot at
    /// `version`.
    fn reset(&self, version: u64) {
        let mut h = self.lock();
        h.items.clear();
        h.bytes = 0;
        h.start = version;
        h.end = version;
    }

    /// What a copy at version `from` is missing.
    pub(crate) fn since(&self, from: u64) -> Since {
        let h = self.lock();
        if from >= h.end {
            return Since::Current;
        }
        if from < h.start {
            return Since::Gone;
        }
        // Items are in version order: skip those the copy has.
        let first = h.items.partition_point(|i| i.version <= from);
        Since::Changes {
            to: h.end,
            items: h.items.range(first..).cloned().collect(),
        }
    }
}

/// What a group's store applies commands through when mirrors may follow
/// it: the state machine's recording apply, changes buffered until the
/// store publishes the applied entries. Type-erased so that the store of
/// any state machine can hold one.
pub(crate) trait Recorder<SM: StateMachine>: Send + Sync {
    /// Applies `command` at `version`, keeping its changes.
    fn apply(&self, sm: &mut SM, command: SM::Command, version: u64) -> SM::Response;

    /// Encodes the kept changes into the history; the group is now at
    /// `version`. Called with the state still locked, so that the state
    /// and the history's version always agree.
    fn publish(&self, version: u64);

    /// The state was replaced by a snapshot at `version`.
    fn reset(&self, version: u64);
}

/// The [`Recorder`] of a [`Mirrored`] state machine.
pub(crate) struct Recording<SM: Mirrored> {
    history: Arc<History>,
    /// Changes not yet published, by version.
    pending: Mutex<Vec<(u64, Vec<SM::Change>)>>,
}

impl<SM: Mirrored> Recording<SM> {
    pub(crate) fn new(history: Arc<History>) -> Self {
        Self {
            history,
            pending: Mutex::new(Vec::new()),
        }
    }
}

impl<SM: Mirrored> Recorder<SM> for Recording<SM> {
    fn apply(&self, sm: &mut SM, command: SM::Command, version: u64) -> SM::Response {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.last().is_none_or(|(v, _)| *v != version) {
            pending.push((version, Vec::new()));
        }
        let (_, changes) = pending.last_mut().unwrap_or_else(|| unreachable!());
        sm.apply_recording(command, version, &mut Changes::into(changes))
    }

    fn publish(&self, version: u64) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (v, changes) in pending {
            if changes.is_empty() {
                continue;
            }
            // Our own change types always encode; one that did not would
            // leave the version without changes, and mirrors would resync.
            let bytes = postcard::to_allocvec(&changes).ok().map(Arc::from);
            self.history.push(v, bytes);
        }
        self.history.push(version, None);
    }

    fn reset(&self, version: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.history.reset(version);
    }
}

/// Folds the encoded changes of several versions into one run with
/// [`Mirrored::merge`]: what a mirror that is far behind receives.
pub(crate) fn merge<SM: Mirrored>(items: &[Item]) -> Result<Vec<u8>, postcard::Error> {
    let mut all = Vec::new();
    for item in items {
        all.extend(statemesh_core::decode::from_bytes::<Vec<SM::Change>>(
            &item.changes,
        )?);
    }
    postcard::to_allocvec(&SM::merge(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(bytes: usize) -> Option<Arc<[u8]>> {
        Some(Arc::from(vec![0u8; bytes]))
    }

    #[test]
    fn answers_by_version() {
        let h = History::new(10, HistoryLimits::default());
        assert!(matches!(h.since(10), Since::Current));
        h.push(11, item(1));
        h.push(12, None);
        h.push(13, item(1));
        match h.since(10) {
            Since::Changes { to, items } => {
                assert_eq!(to, 13);
                assert_eq!(
                    items.iter().map(|i| i.version).collect::<Vec<_>>(),
                    [11, 13]
                );
            }
            other => panic!("{other:?}"),
        }
        match h.since(12) {
            Since::Changes { to, items } => {
                assert_eq!((to, items.len(), items[0].version), (13, 1, 13));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(h.since(13), Since::Current));
        assert!(matches!(h.since(99), Since::Current));
        assert!(matches!(h.since(9), Since::Gone));
    }

    #[test]
    fn drops_the_oldest_past_either_limit() {
        let h = History::new(
            0,
            HistoryLimits {
                versions: 3,
                bytes: 100,
            },
        );
        for v in 1..=5 {
            h.push(v, item(10));
        }
        // Five versions, three kept: every change after 2 is known.
        assert!(matches!(h.since(1), Since::Gone));
        assert!(matches!(h.since(2), Since::Changes { .. }));
        h.push(6, item(95));
        // The bytes limit leaves only the last.
        assert!(matches!(h.since(4), Since::Gone));
        assert!(matches!(h.since(5), Since::Changes { ref items, .. } if items.len() == 1));
        h.reset(50);
        assert!(matches!(h.since(6), Since::Gone));
        assert!(matches!(h.since(50), Since::Current));
        // A version that does not advance is ignored.
        h.push(40, item(1));
        assert!(matches!(h.since(50), Since::Current));
    }
}
