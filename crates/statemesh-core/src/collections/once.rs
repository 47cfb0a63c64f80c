//! `Once<T>`: a value set once, by whichever writer is first.

use super::Value;
use crate::{Changes, Mirrored, Queryable, StateMachine};
use serde::{Deserialize, Serialize};

/// The state machine behind a `Once`: the first value written stays.
#[derive(Debug, Clone, PartialEq)]
pub struct OnceState<T> {
    value: Option<T>,
}

impl<T> Default for OnceState<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

impl<T> OnceState<T> {
    /// The value, once set.
    #[must_use]
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl<T: Value> StateMachine for OnceState<T> {
    /// The value to set.
    type Command = T;
    /// `Ok(())` if this write set it, `Err(value)` with the value already
    /// set otherwise.
    type Response = Result<(), T>;
    type Snapshot = Option<T>;

    fn signature(&self) -> String {
        format!("statemesh::Once<{}>", crate::type_name::<T>())
    }

    fn apply(&mut self, value: T, version: u64) -> Result<(), T> {
        self.apply_recording(value, version, &mut Changes::off())
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

/// A once-cell's mirror applies the value it was set to.
impl<T: Value> Mirrored for OnceState<T> {
    type Change = T;

    fn apply_recording(
        &mut self,
        value: T,
        _version: u64,
        changes: &mut Changes<T>,
    ) -> Result<(), T> {
        match &self.value {
            Some(v) => Err(v.clone()),
            None => {
                changes.record(|| value.clone());
                self.value = Some(value);
                Ok(())
            }
        }
    }

    fn apply_change(&mut self, value: T) {
        self.value = Some(value);
    }
}

/// A remote read of a once-cell: its value, if set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct OnceQuery;

impl<T: Value> Queryable for OnceState<T> {
    type Query = OnceQuery;
    type Answer = Option<T>;

    fn answer(&self, _query: OnceQuery) -> Option<T> {
        self.value.clone()
    }
}

/// A once-cell's write operation, once for every [`Executor`](super::Executor).
pub mod ops {
    use super::OnceState;
    use crate::collections::{Done, Executor, Value};

    /// Sets the value unless one is set: `Ok(())`, or `Err(existing)`.
    pub async fn set<T: Value, X: Executor<OnceState<T>>>(
        x: &X,
        value: T,
    ) -> Done<Result<(), T>, X::Error> {
        x.run(value).await
    }
}
