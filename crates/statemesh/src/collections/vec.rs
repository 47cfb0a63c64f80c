//! `Vec<T>`: a replicated sequence.

use super::handle::{Reader, Writer, Written};
use crate::error::QueryError;
use imbl::Vector;
use statemesh_core::collections::{OutOfRange, VecState};
use statemesh_core::collections::{Value, vec_ops};

/// The writer handle of a replicated sequence.
pub type Vec<T> = Writer<VecState<T>>;
/// The read-only handle of a replicated sequence.
pub type VecReader<T> = Reader<VecState<T>>;

impl<T: Value> Reader<VecState<T>> {
    /// The elements as of now, cluster-wide (read index).
    ///
    /// # Errors
    ///
    /// See [`Group::query`](crate::Group::query).
    pub async fn snapshot_linearizable(&self) -> Result<Vector<T>, QueryError> {
        self.linearizable(|s| s.as_vector().clone()).await
    }
}

impl<T: Value> Writer<VecState<T>> {
    /// Appends `value`; returns the new length.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn push_back(&self, value: T) -> Written<u64> {
        vec_ops::push_back(self, value).await
    }

    /// Prepends `value`; returns the new length.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn push_front(&self, value: T) -> Written<u64> {
        vec_ops::push_front(self, value).await
    }

    /// Removes and returns the last element.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn pop_back(&self) -> Written<Option<T>> {
        vec_ops::pop_back(self).await
    }

    /// Removes and returns the first element.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn pop_front(&self) -> Written<Option<T>> {
        vec_ops::pop_front(self).await
    }

    /// Inserts `value` at `index` (at most the length).
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute); an index past the end
    /// is the inner `Err`.
    pub async fn insert(&self, index: u64, value: T) -> Written<Result<(), OutOfRange>> {
        vec_ops::insert(self, index, value).await
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute); an index past the end
    /// is the inner `Err`.
    pub async fn remove(&self, index: u64) -> Written<Result<T, OutOfRange>> {
        vec_ops::remove(self, index).await
    }

    /// Swaps the elements at `a` and `b`.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute); an index past the end
    /// is the inner `Err`.
    pub async fn swap(&self, a: u64, b: u64) -> Written<Result<(), OutOfRange>> {
        vec_ops::swap(self, a, b).await
    }

    /// Keeps the first `len` elements; returns how many were dropped.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn truncate(&self, len: u64) -> Written<u64> {
        vec_ops::truncate(self, len).await
    }

    /// Appends `values` in one change; returns the new length.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn extend(&self, values: std::vec::Vec<T>) -> Written<u64> {
        vec_ops::extend(self, values).await
    }

    /// Removes every element; returns how many there were.
    ///
    /// # Errors
    ///
    /// See [`Group::execute`](crate::Group::execute).
    pub async fn clear(&self) -> Written<u64> {
        vec_ops::clear(self).await
    }
}
