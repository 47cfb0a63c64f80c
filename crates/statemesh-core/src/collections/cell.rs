//! `Cell<T>`: one replicated value.

use super::Value;
use crate::{Changes, Mirrored, Queryable, StateMachine};
use serde::{Deserialize, Serialize};

/// The state machine behind a `Cell`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellState<T> {
    value: Option<T>,
}

impl<T> Default for CellState<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

impl<T> CellState<T> {
    /// The value (for reading a copy with `View::read_with`).
    #[must_use]
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

/// A change to a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CellCommand<T> {
    /// Sets the value.
    Write(T),
    /// Sets the value to `new` if it is `expected`.
    CompareExchange {
        /// The value the cell must hold (`None`: empty).
        expected: Option<T>,
        /// The value to store (`None`: empty it).
        new: Option<T>,
    },
    /// Empties the cell.
    Clear,
}

/// What a change to a cell did.
#[derive(Debug, Serialize, Deserialize)]
pub enum CellOutcome<T> {
    /// The value before the change.
    Previous(Option<T>),
    /// A compare-exchange: `Ok(previous)` if it stored, else `Err(current)`.
    Exchanged(Result<Option<T>, Option<T>>),
}

impl<T: Value> StateMachine for CellState<T> {
    type Command = CellCommand<T>;
    type Response = CellOutcome<T>;
    type Snapshot = Option<T>;

    fn signature(&self) -> String {
        format!("statemesh::Cell<{}>", crate::type_name::<T>())
    }

    fn apply(&mut self, command: CellCommand<T>, version: u64) -> CellOutcome<T> {
        self.apply_recording(command, version, &mut Changes::off())
    }

    fn snapshot(&self) -> Option<T> {
        self.value.clone()
    }

    fn restore(&mut self, snapshot: Option<T>) {
        self.value = snapshot;
    }

    fn entries(&self) -> Option<u64> {
        Some(usize::from(self.value.is_some()) as u64)
    }
}

/// A cell's mirror applies its new value (`None`: emptied).
impl<T: Value> Mirrored for CellState<T> {
    type Change = Option<T>;

    fn apply_recording(
        &mut self,
        command: CellCommand<T>,
        _version: u64,
        changes: &mut Changes<Option<T>>,
    ) -> CellOutcome<T> {
        match command {
            CellCommand::Write(v) => {
                changes.record(|| Some(v.clone()));
                CellOutcome::Previous(self.value.replace(v))
            }
            CellCommand::Clear => {
                if self.value.is_some() {
                    changes.record(|| None);
                }
                CellOutcome::Previous(self.value.take())
            }
            CellCommand::CompareExchange { expected, new } => {
                CellOutcome::Exchanged(if self.value == expected {
                    changes.record(|| new.clone());
                    Ok(std::mem::replace(&mut self.value, new))
                } else {
                    Err(self.value.clone())
                })
            }
        }
    }

    fn apply_change(&mut self, change: Option<T>) {
        self.value = change;
    }

    fn merge(mut changes: Vec<Option<T>>) -> Vec<Option<T>> {
        changes.drain(..changes.len().saturating_sub(1));
        changes
    }
}

/// A remote read of a cell: its value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CellQuery;

impl<T: Value> Queryable for CellState<T> {
    type Query = CellQuery;
    type Answer = Option<T>;

    fn answer(&self, _query: CellQuery) -> Option<T> {
        self.value.clone()
    }
}

/// A cell's write operations, once for every [`Executor`](super::Executor).
pub mod ops {
    use super::{CellCommand, CellOutcome, CellState};
    use crate::collections::{Done, Executor, Value, expect};

    fn previous<T>(o: CellOutcome<T>) -> Option<Option<T>> {
        match o {
            CellOutcome::Previous(p) => Some(p),
            CellOutcome::Exchanged(_) => None,
        }
    }

    /// Stores `value`; the previous one.
    pub async fn write<T: Value, X: Executor<CellState<T>>>(
        x: &X,
        value: T,
    ) -> Done<Option<T>, X::Error> {
        expect(x, CellCommand::Write(value), "write", previous).await
    }

    /// Empties the cell; the previous value.
    pub async fn clear<T: Value, X: Executor<CellState<T>>>(x: &X) -> Done<Option<T>, X::Error> {
        expect(x, CellCommand::Clear, "clear", previous).await
    }

    /// Stores `new` if the cell holds `expected`: `Ok(previous)` or
    /// `Err(current)`.
    pub async fn compare_exchange<T: Value, X: Executor<CellState<T>>>(
        x: &X,
        expected: Option<T>,
        new: Option<T>,
    ) -> Done<Result<Option<T>, Option<T>>, X::Error> {
        let command = CellCommand::CompareExchange { expected, new };
        expect(x, command, "compare_exchange", |o| match o {
            CellOutcome::Exchanged(r) => Some(r),
            CellOutcome::Previous(_) => None,
        })
        .await
    }
}
