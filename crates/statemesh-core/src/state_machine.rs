//! What users replicate: a deterministic state machine.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A deterministic state machine that a `Group` replicates.
///
/// Every replica applies the same commands in the same order, so `apply`
/// must depend on nothing but the state and the command: no clock, no
/// randomness, no iteration over a hash map's order. It must not panic on
/// any command; an invalid one (an index out of range, say) is answered
/// with an error inside [`StateMachine::Response`].
///
/// Snapshots should be cheap to take: [`StateMachine::snapshot`] runs on
/// the apply path, and the returned value is encoded and written in the
/// background. Persistent data structures (`im`, `rpds`) make it O(1).
pub trait StateMachine: Send + Sync + 'static {
    /// What a writer asks for.
    type Command: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What `apply` answers.
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The state as it is written to a snapshot.
    type Snapshot: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Names the state machine's type and parameters. Part of the group's
    /// id: nodes whose signatures differ can never join the same group.
    /// The default is the Rust type name; override it to add parameters
    /// (a capacity, say) that change how commands are applied.
    fn signature(&self) -> String {
        type_name::<Self>()
    }

    /// Applies `command`, committed at log index `version`.
    fn apply(&mut self, command: Self::Command, version: u64) -> Self::Response;

    /// The whole state, cheaply.
    fn snapshot(&self) -> Self::Snapshot;

    /// Replaces the whole state with `snapshot`.
    fn restore(&mut self, snapshot: Self::Snapshot);

    /// How many entries the state holds, for listings (`statemesh
    /// collections`); `None` (the default): it does not count them.
    fn entries(&self) -> Option<u64> {
        None
    }
}

/// A state machine that answers reads sent over the network, for a
/// `Client`, which holds no replica. The collections
/// implement it; a custom state machine implements it to be read remotely.
pub trait Queryable: StateMachine {
    /// What a remote reader asks.
    type Query: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What it is told.
    type Answer: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Answers `query` from the state (must not change it).
    fn answer(&self, query: Self::Query) -> Self::Answer;
}

/// A state machine whose changes a `Mirror` can follow:
/// each command says what it changed, in a form a mirror applies without
/// the command's logic, and a run of changes can be folded into a shorter
/// one with the same effect. The collections implement it.
///
/// A node keeps a bounded history of the changes of each version
/// (`ServerOptions::history`); a mirror
/// that asks from a version in that history receives the changes since,
/// one that asks from an older version receives the whole state.
pub trait Mirrored: StateMachine {
    /// One change to the state, as a mirror applies it.
    type Change: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Applies `command` exactly as [`StateMachine::apply`] does, and
    /// records in `changes` what it changed (nothing if it changed
    /// nothing). Applying the recorded changes with
    /// [`Mirrored::apply_change`] to the state before must give the state
    /// after.
    fn apply_recording(
        &mut self,
        command: Self::Command,
        version: u64,
        changes: &mut Changes<Self::Change>,
    ) -> Self::Response;

    /// Applies one recorded change (on a mirror).
    fn apply_change(&mut self, change: Self::Change);

    /// Folds a run of changes, oldest first, into an equivalent run,
    /// shorter where it can be (for keyed collections: the latest change of
    /// each key wins). The default keeps them all.
    fn merge(changes: Vec<Self::Change>) -> Vec<Self::Change> {
        changes
    }
}

/// Where [`Mirrored::apply_recording`] records changes; it may be off
/// (plain [`StateMachine::apply`]), so a change is built only when asked.
pub struct Changes<'a, C> {
    out: Option<&'a mut Vec<C>>,
}

impl<'a, C> Changes<'a, C> {
    /// Records into `out`.
    pub fn into(out: &'a mut Vec<C>) -> Self {
        Self { out: Some(out) }
    }

    /// Records nothing.
    #[must_use]
    pub fn off() -> Self {
        Self { out: None }
    }

    /// Records the change `make` builds, if recording.
    pub fn record(&mut self, make: impl FnOnce() -> C) {
        if let Some(out) = &mut self.out {
            out.push(make());
        }
    }

    /// Whether changes are being recorded.
    #[must_use]
    pub fn recording(&self) -> bool {
        self.out.is_some()
    }
}

/// The merge of keyed changes: after the last `Clear`, the latest change of
/// each key, in key order. `key` names a change's key (`None`: a `Clear`).
pub(crate) fn merge_keyed<K: Ord + Clone, C>(
    changes: Vec<C>,
    key: impl Fn(&C) -> Option<&K>,
) -> Vec<C> {
    let mut cleared = None;
    let mut latest = std::collections::BTreeMap::new();
    for change in changes {
        match key(&change) {
            Some(k) => {
                latest.insert(k.clone(), change);
            }
            None => {
                latest.clear();
                cleared = Some(change);
            }
        }
    }
    cleared.into_iter().chain(latest.into_values()).collect()
}

/// `T`'s type name as a signature spells it. Types of this crate are named
/// by their path in `statemesh`, where they lived when the first data
/// directories were written: a signature is part of every collection's
/// [`GroupId`](crate::GroupId), so the same type must keep the same name across releases.
#[must_use]
pub fn type_name<T: ?Sized>() -> String {
    std::any::type_name::<T>().replace("statemesh_core::", "statemesh::")
}
