//! `Set<T>`: a replicated ordered set.

use super::Key;
use crate::state_machine::merge_keyed;
use crate::{Changes, Mirrored, Queryable, StateMachine};
use imbl::OrdSet;
use serde::{Deserialize, Serialize};

/// The state machine behind a `Set`: a persistent ordered set.
#[derive(Debug, Clone, PartialEq)]
pub struct SetState<T: Ord + Clone> {
    set: OrdSet<T>,
}

impl<T: Ord + Clone> Default for SetState<T> {
    fn default() -> Self {
        Self { set: OrdSet::new() }
    }
}

impl<T: Ord + Clone> SetState<T> {
    /// The elements, in order (for reading a copy with
    /// `View::read_with`).
    #[must_use]
    pub fn as_set(&self) -> &OrdSet<T> {
        &self.set
    }
}

/// A change to a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SetCommand<T> {
    /// Adds one element.
    Insert(T),
    /// Removes one element.
    Remove(T),
    /// Removes several elements.
    RemoveMany(Vec<T>),
    /// Adds several elements.
    Extend(Vec<T>),
    /// Removes every element.
    Clear,
}

/// What a set's mirror applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SetChange<T> {
    /// The element is now present.
    Insert(T),
    /// The element is gone.
    Remove(T),
    /// Every element is gone.
    Clear,
}

/// What a change to a set did.
#[derive(Debug, Serialize, Deserialize)]
pub enum SetOutcome {
    /// Whether the element was new (insert) or present (remove).
    Changed(bool),
    /// How many elements were added or removed.
    Count(usize),
}

impl<T: Key> StateMachine for SetState<T> {
    type Command = SetCommand<T>;
    type Response = SetOutcome;
    type Snapshot = OrdSet<T>;

    fn signature(&self) -> String {
        format!("statemesh::Set<{}>", crate::type_name::<T>())
    }

    fn apply(&mut self, command: SetCommand<T>, version: u64) -> SetOutcome {
        self.apply_recording(command, version, &mut Changes::off())
    }

    fn snapshot(&self) -> OrdSet<T> {
        self.set.clone()
    }

    fn restore(&mut self, snapshot: OrdSet<T>) {
        self.set = snapshot;
    }

    fn entries(&self) -> Option<u64> {
        Some(self.set.len() as u64)
    }
}

impl<T: Key> Mirrored for SetState<T> {
    type Change = SetChange<T>;

    fn apply_recording(
        &mut self,
        command: SetCommand<T>,
        _version: u64,
        changes: &mut Changes<SetChange<T>>,
    ) -> SetOutcome {
        let mut insert = |set: &mut OrdSet<T>, t: T| {
            let new = !set.contains(&t);
            if new {
                changes.record(|| SetChange::Insert(t.clone()));
                set.insert(t);
            }
            new
        };
        match command {
            SetCommand::Insert(t) => SetOutcome::Changed(insert(&mut self.set, t)),
            SetCommand::Extend(ts) => SetOutcome::Count(
                ts.into_iter()
                    .filter(|t| insert(&mut self.set, t.clone()))
                    .count(),
            ),
            SetCommand::Remove(t) => {
                let present = self.set.remove(&t).is_some();
                if present {
                    changes.record(|| SetChange::Remove(t));
                }
                SetOutcome::Changed(present)
            }
            SetCommand::RemoveMany(ts) => {
                let mut count = 0;
                for t in ts {
                    if self.set.remove(&t).is_some() {
                        count += 1;
                        changes.record(|| SetChange::Remove(t));
                    }
                }
                SetOutcome::Count(count)
            }
            SetCommand::Clear => {
                if !self.set.is_empty() {
                    changes.record(|| SetChange::Clear);
                }
                SetOutcome::Count(std::mem::take(&mut self.set).len())
            }
        }
    }

    fn apply_change(&mut self, change: SetChange<T>) {
        match change {
            SetChange::Insert(t) => {
                self.set.insert(t);
            }
            SetChange::Remove(t) => {
                self.set.remove(&t);
            }
            SetChange::Clear => self.set.clear(),
        }
    }

    fn merge(changes: Vec<SetChange<T>>) -> Vec<SetChange<T>> {
        merge_keyed(changes, |c| match c {
            SetChange::Insert(t) | SetChange::Remove(t) => Some(t),
            SetChange::Clear => None,
        })
    }
}

/// A remote read of a set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SetQuery<T> {
    /// Whether an element is present.
    Contains(T),
    /// The number of elements.
    Len,
    /// Up to `limit` elements in order, after `after` (from the first if
    /// `None`).
    Elements {
        /// The last element of the previous page.
        after: Option<T>,
        /// The most elements to return.
        limit: usize,
    },
}

/// The answer to a [`SetQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SetAnswer<T> {
    /// To `Contains`.
    Contains(bool),
    /// To `Len`.
    Len(usize),
    /// To `Elements`.
    Elements(Vec<T>),
}

impl<T: Key> Queryable for SetState<T> {
    type Query = SetQuery<T>;
    type Answer = SetAnswer<T>;

    fn answer(&self, query: SetQuery<T>) -> SetAnswer<T> {
        match query {
            SetQuery::Contains(v) => SetAnswer::Contains(self.set.contains(&v)),
            SetQuery::Len => SetAnswer::Len(self.set.len()),
            SetQuery::Elements { after, limit } => SetAnswer::Elements(match after {
                Some(a) => self
                    .set
                    .range::<_, T>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .take(limit)
                    .cloned()
                    .collect(),
                None => self.set.iter().take(limit).cloned().collect(),
            }),
        }
    }
}

/// A set's write operations, once for every [`Executor`](super::Executor).
pub mod ops {
    use super::{SetCommand, SetOutcome, SetState};
    use crate::collections::{Done, Executor, Key, expect};

    fn changed(o: SetOutcome) -> Option<bool> {
        match o {
            SetOutcome::Changed(b) => Some(b),
            SetOutcome::Count(_) => None,
        }
    }

    fn count(o: SetOutcome) -> Option<usize> {
        match o {
            SetOutcome::Count(n) => Some(n),
            SetOutcome::Changed(_) => None,
        }
    }

    /// Adds `value`; whether it was new.
    pub async fn insert<T: Key, X: Executor<SetState<T>>>(x: &X, value: T) -> Done<bool, X::Error> {
        expect(x, SetCommand::Insert(value), "insert", changed).await
    }

    /// Removes `value`; whether it was there.
    pub async fn remove<T: Key, X: Executor<SetState<T>>>(x: &X, value: T) -> Done<bool, X::Error> {
        expect(x, SetCommand::Remove(value), "remove", changed).await
    }

    /// Removes `values` in one change; how many were there.
    pub async fn remove_many<T: Key, X: Executor<SetState<T>>>(
        x: &X,
        values: Vec<T>,
    ) -> Done<usize, X::Error> {
        expect(x, SetCommand::RemoveMany(values), "remove_many", count).await
    }

    /// Adds `values` in one change; how many were new.
    pub async fn extend<T: Key, X: Executor<SetState<T>>>(
        x: &X,
        values: Vec<T>,
    ) -> Done<usize, X::Error> {
        expect(x, SetCommand::Extend(values), "extend", count).await
    }

    /// Removes every element; how many there were.
    pub async fn clear<T: Key, X: Executor<SetState<T>>>(x: &X) -> Done<usize, X::Error> {
        expect(x, SetCommand::Clear, "clear", count).await
    }
}
