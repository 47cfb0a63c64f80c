//! `Vec<T>`: a replicated sequence.

use super::Value;
use crate::{Changes, Mirrored, Queryable, StateMachine};
use imbl::Vector;
use serde::{Deserialize, Serialize};

/// An index past the end, reported to the writer (never a panic in
/// `apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("index {index} is out of range for a sequence of length {len}")]
pub struct OutOfRange {
    /// The index asked for.
    pub index: u64,
    /// The sequence's length when the change was applied.
    pub len: u64,
}

/// The state machine behind a [`Vec`](type@Vec): a persistent RRB vector, so
/// pushes and pops at both ends, inserts and removes at an index, and
/// snapshots are cheap.
#[derive(Debug, Clone, PartialEq)]
pub struct VecState<T: Clone> {
    items: Vector<T>,
}

impl<T: Clone> Default for VecState<T> {
    fn default() -> Self {
        Self {
            items: Vector::new(),
        }
    }
}

impl<T: Clone> VecState<T> {
    /// The items, in order (for reading a copy with `View::read_with`).
    #[must_use]
    pub fn as_vector(&self) -> &Vector<T> {
        &self.items
    }
}

/// A change to a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VecCommand<T> {
    /// Appends at the back.
    PushBack(T),
    /// Prepends at the front.
    PushFront(T),
    /// Removes the last element.
    PopBack,
    /// Removes the first element.
    PopFront,
    /// Inserts at an index (up to the length).
    Insert(u64, T),
    /// Removes at an index.
    Remove(u64),
    /// Swaps two elements.
    Swap(u64, u64),
    /// Keeps the first `n` elements.
    Truncate(u64),
    /// Appends several elements.
    Extend(std::vec::Vec<T>),
    /// Removes every element.
    Clear,
}

/// What a change to a sequence did.
#[derive(Debug, Serialize, Deserialize)]
pub enum VecOutcome<T> {
    /// The length after the change.
    Len(u64),
    /// The element taken, if any.
    Taken(Option<T>),
    /// The element removed at an index.
    Removed(Result<T, OutOfRange>),
    /// An insert or swap.
    Done(Result<(), OutOfRange>),
    /// How many elements were dropped.
    Dropped(u64),
}

fn index(i: u64, len: usize, inclusive: bool) -> Result<usize, OutOfRange> {
    match usize::try_from(i) {
        Ok(at) if at < len || (inclusive && at == len) => Ok(at),
        _ => Err(OutOfRange {
            index: i,
            len: len as u64,
        }),
    }
}

impl<T: Value> StateMachine for VecState<T> {
    type Command = VecCommand<T>;
    type Response = VecOutcome<T>;
    type Snapshot = Vector<T>;

    fn signature(&self) -> String {
        format!("statemesh::Vec<{}>", crate::type_name::<T>())
    }

    fn apply(&mut self, command: VecCommand<T>, version: u64) -> VecOutcome<T> {
        self.apply_recording(command, version, &mut Changes::off())
    }

    fn snapshot(&self) -> Vector<T> {
        self.items.clone()
    }

    fn restore(&mut self, snapshot: Vector<T>) {
        self.items = snapshot;
    }

    fn entries(&self) -> Option<u64> {
        Some(self.items.len() as u64)
    }
}

/// A sequence's mirror applies the operations that changed it, as
/// commands (an operation that failed or changed nothing is not sent).
impl<T: Value> Mirrored for VecState<T> {
    type Change = VecCommand<T>;

    fn apply_recording(
        &mut self,
        command: VecCommand<T>,
        _version: u64,
        changes: &mut Changes<VecCommand<T>>,
    ) -> VecOutcome<T> {
        // The operation itself is the change: cloned only when recording,
        // and kept only if it did something.
        let change = changes.recording().then(|| command.clone());
        let outcome = self.run(command);
        let changed = match &outcome {
            VecOutcome::Len(_) => true,
            VecOutcome::Taken(t) => t.is_some(),
            VecOutcome::Removed(r) => r.is_ok(),
            VecOutcome::Done(r) => r.is_ok(),
            VecOutcome::Dropped(n) => *n > 0,
        };
        if let Some(change) = change.filter(|_| changed) {
            changes.record(|| change);
        }
        outcome
    }

    fn apply_change(&mut self, change: VecCommand<T>) {
        self.run(change);
    }

    fn merge(mut changes: std::vec::Vec<VecCommand<T>>) -> std::vec::Vec<VecCommand<T>> {
        // Nothing before a clear matters.
        if let Some(last) = changes.iter().rposition(|c| matches!(c, VecCommand::Clear)) {
            changes.drain(..last);
        }
        changes
    }
}

impl<T: Value> VecState<T> {
    fn run(&mut self, command: VecCommand<T>) -> VecOutcome<T> {
        let items = &mut self.items;
        match command {
            VecCommand::PushBack(t) => {
                items.push_back(t);
                VecOutcome::Len(items.len() as u64)
            }
            VecCommand::PushFront(t) => {
                items.push_front(t);
                VecOutcome::Len(items.len() as u64)
            }
            VecCommand::PopBack => VecOutcome::Taken(items.pop_back()),
            VecCommand::PopFront => VecOutcome::Taken(items.pop_front()),
            VecCommand::Insert(i, t) => {
                VecOutcome::Done(index(i, items.len(), true).map(|at| items.insert(at, t)))
            }
            VecCommand::Remove(i) => {
                VecOutcome::Removed(index(i, items.len(), false).map(|at| items.remove(at)))
            }
            VecCommand::Swap(a, b) => VecOutcome::Done(
                index(a, items.len(), false)
                    .and_then(|a| Ok((a, index(b, items.len(), false)?)))
                    .map(|(a, b)| items.swap(a, b)),
            ),
            VecCommand::Truncate(n) => {
                let keep = usize::try_from(n).unwrap_or(usize::MAX).min(items.len());
                let dropped = items.len() - keep;
                items.truncate(keep);
                VecOutcome::Dropped(dropped as u64)
            }
            VecCommand::Extend(ts) => {
                items.extend(ts);
                VecOutcome::Len(items.len() as u64)
            }
            VecCommand::Clear => VecOutcome::Dropped(std::mem::take(items).len() as u64),
        }
    }
}

/// A remote read of a sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VecQuery<T> {
    /// The element at an index.
    Get(u64),
    /// The first element.
    Front,
    /// The last element.
    Back,
    /// The number of elements.
    Len,
    /// The index of the first element equal to a value.
    IndexOf(T),
    /// Up to `limit` elements from index `start`.
    Range {
        /// The first index.
        start: u64,
        /// The most elements to return.
        limit: usize,
    },
}

/// The answer to a [`VecQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VecAnswer<T> {
    /// To `Get`, `Front`, `Back`.
    Item(Option<T>),
    /// To `Len`.
    Len(u64),
    /// To `IndexOf`.
    Index(Option<u64>),
    /// To `Range`.
    Items(std::vec::Vec<T>),
}

impl<T: Value> Queryable for VecState<T> {
    type Query = VecQuery<T>;
    type Answer = VecAnswer<T>;

    fn answer(&self, query: VecQuery<T>) -> VecAnswer<T> {
        let at = |i: u64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.items.get(i))
                .cloned()
        };
        match query {
            VecQuery::Get(i) => VecAnswer::Item(at(i)),
            VecQuery::Front => VecAnswer::Item(self.items.front().cloned()),
            VecQuery::Back => VecAnswer::Item(self.items.back().cloned()),
            VecQuery::Len => VecAnswer::Len(self.items.len() as u64),
            VecQuery::IndexOf(v) => VecAnswer::Index(self.items.index_of(&v).map(|i| i as u64)),
            VecQuery::Range { start, limit } => VecAnswer::Items(
                self.items
                    .iter()
                    .skip(usize::try_from(start).unwrap_or(usize::MAX))
                    .take(limit)
                    .cloned()
                    .collect(),
            ),
        }
    }
}

/// A vector's write operations, once for every [`Executor`](super::Executor).
pub mod ops {
    use super::{OutOfRange, VecCommand, VecOutcome, VecState};
    use crate::collections::{Done, Executor, Value, expect};

    fn len<T>(o: VecOutcome<T>) -> Option<u64> {
        match o {
            VecOutcome::Len(n) => Some(n),
            _ => None,
        }
    }

    fn taken<T>(o: VecOutcome<T>) -> Option<Option<T>> {
        match o {
            VecOutcome::Taken(t) => Some(t),
            _ => None,
        }
    }

    fn done<T>(o: VecOutcome<T>) -> Option<Result<(), OutOfRange>> {
        match o {
            VecOutcome::Done(d) => Some(d),
            _ => None,
        }
    }

    fn dropped<T>(o: VecOutcome<T>) -> Option<u64> {
        match o {
            VecOutcome::Dropped(n) => Some(n),
            _ => None,
        }
    }

    /// Appends `value`; the new length.
    pub async fn push_back<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        value: T,
    ) -> Done<u64, X::Error> {
        expect(x, VecCommand::PushBack(value), "push_back", len).await
    }

    /// Prepends `value`; the new length.
    pub async fn push_front<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        value: T,
    ) -> Done<u64, X::Error> {
        expect(x, VecCommand::PushFront(value), "push_front", len).await
    }

    /// Removes the last element; it.
    pub async fn pop_back<T: Value, X: Executor<VecState<T>>>(x: &X) -> Done<Option<T>, X::Error> {
        expect(x, VecCommand::PopBack, "pop_back", taken).await
    }

    /// Removes the first element; it.
    pub async fn pop_front<T: Value, X: Executor<VecState<T>>>(x: &X) -> Done<Option<T>, X::Error> {
        expect(x, VecCommand::PopFront, "pop_front", taken).await
    }

    /// Inserts `value` at `index`.
    pub async fn insert<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        index: u64,
        value: T,
    ) -> Done<Result<(), OutOfRange>, X::Error> {
        expect(x, VecCommand::Insert(index, value), "insert", done).await
    }

    /// Removes the element at `index`; it.
    pub async fn remove<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        index: u64,
    ) -> Done<Result<T, OutOfRange>, X::Error> {
        expect(x, VecCommand::Remove(index), "remove", |o| match o {
            VecOutcome::Removed(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// Swaps the elements at `a` and `b`.
    pub async fn swap<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        a: u64,
        b: u64,
    ) -> Done<Result<(), OutOfRange>, X::Error> {
        expect(x, VecCommand::Swap(a, b), "swap", done).await
    }

    /// Keeps the first `len` elements; how many it dropped.
    pub async fn truncate<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        len: u64,
    ) -> Done<u64, X::Error> {
        expect(x, VecCommand::Truncate(len), "truncate", dropped).await
    }

    /// Appends `values` in one change; the new length.
    pub async fn extend<T: Value, X: Executor<VecState<T>>>(
        x: &X,
        values: Vec<T>,
    ) -> Done<u64, X::Error> {
        expect(x, VecCommand::Extend(values), "extend", len).await
    }

    /// Removes every element; how many there were.
    pub async fn clear<T: Value, X: Executor<VecState<T>>>(x: &X) -> Done<u64, X::Error> {
        expect(x, VecCommand::Clear, "clear", dropped).await
    }
}
