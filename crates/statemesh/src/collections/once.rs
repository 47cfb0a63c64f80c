//! `Once<T>`: a value set once, by whichever writer is first.

use super::handle::{Reader, View, Writer};
use super::{Value, Written};
use crate::error::QueryError;
use crate::state_machine::{Changes, Mirrored, Queryable, StateMachine};
use serde::{Deserialize, Serialize};

/// The writer handle of a set-once value.
pub type Once<T> = Writer<OnceState<T>>;
/// The read-only handle of a set-once value.
pub type OnceReader<T> = Reader<OnceState<T>>;

/// The state machine behind a [`Once`]: the first value written stays.
#[derive(Debug, Clone, PartialEq)]
pub struct OnceState<T> {
    value: Option<T>,
}

impl<T> Default for OnceState<T> {
    fn default() -> Self {
        Self { value: None }
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
        format!("statemesh::Once<{}>", std::any::type_name::<T>())
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

impl<T: Value> View<OnceState<T>> {
    /// This replica's value, if it has seen one.
    #[must_use]
    pub fn get(&self) -> Option<T> {
        self.local(|s| s.value.clone())
    }

    /// Waits until this replica has a value, and returns it.
    pub async fn wait_value(&self) -> T {
        let mut when = self.when();
        loop {
            // The version is read before the value: a value set after this
            // read raises the version past it, so the wait cannot miss it.
            let seen = self.version();
            if let Some(v) = self.get() {
                return v;
            }
            when.reaches(seen + 1).await;
        }
    }
}

impl<T: Value> Reader<OnceState<T>> {
    /// The value as of now, cluster-wide.
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn get_linearizable(&self) -> Result<Option<T>, QueryError> {
        self.linearizable(|s| s.value.clone()).await
    }
}

impl<T: Value> Writer<OnceState<T>> {
    /// Sets the value unless one is set: `Ok(())` if this call set it,
    /// `Err(existing)` if not (the write is ignored).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn set(&self, value: T) -> Written<Result<(), T>> {
        let (r, v) = self.execute(value).await?;
        Ok((r, v))
    }
}
