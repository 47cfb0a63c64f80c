//! Remote sequences.

use super::{Remote, RemoteWritten};
use crate::client::ClientError;
use statemesh_core::collections::vec_ops as ops;
use statemesh_core::collections::{OutOfRange, Value, VecAnswer, VecQuery, VecState};

impl<T: Value> Remote<VecState<T>> {
    async fn item(&self, q: VecQuery<T>, what: &str) -> Result<Option<T>, ClientError> {
        self.ask(q, what, |a| match a {
            VecAnswer::Item(v) => Some(v),
            _ => None,
        })
        .await
    }

    /// The element at `index`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get(&self, index: u64) -> Result<Option<T>, ClientError> {
        self.item(VecQuery::Get(index), "get").await
    }

    /// The first element.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn front(&self) -> Result<Option<T>, ClientError> {
        self.item(VecQuery::Front, "front").await
    }

    /// The last element.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn back(&self) -> Result<Option<T>, ClientError> {
        self.item(VecQuery::Back, "back").await
    }

    /// The number of elements.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn len(&self) -> Result<u64, ClientError> {
        self.ask(VecQuery::Len, "len", |a| match a {
            VecAnswer::Len(n) => Some(n),
            _ => None,
        })
        .await
    }

    /// Whether the sequence is empty.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn is_empty(&self) -> Result<bool, ClientError> {
        Ok(self.len().await? == 0)
    }

    /// The index of the first element equal to `value`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn index_of(&self, value: &T) -> Result<Option<u64>, ClientError> {
        self.ask(VecQuery::IndexOf(value.clone()), "index_of", |a| match a {
            VecAnswer::Index(i) => Some(i),
            _ => None,
        })
        .await
    }

    /// Whether an element equals `value`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn contains(&self, value: &T) -> Result<bool, ClientError> {
        Ok(self.index_of(value).await?.is_some())
    }

    /// Every element in order, a page at a time.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn iter(&self) -> Result<Vec<T>, ClientError> {
        let page = |seen: &[T], limit| VecQuery::Range {
            start: seen.len() as u64,
            limit,
        };
        self.all_pages("iter", page, |a| match a {
            VecAnswer::Items(items) => Some(items),
            _ => None,
        })
        .await
    }

    /// Appends `value`; the new length.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn push_back(&self, value: T) -> RemoteWritten<u64> {
        ops::push_back(self, value).await
    }

    /// Prepends `value`; the new length.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn push_front(&self, value: T) -> RemoteWritten<u64> {
        ops::push_front(self, value).await
    }

    /// Removes and returns the last element.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn pop_back(&self) -> RemoteWritten<Option<T>> {
        ops::pop_back(self).await
    }

    /// Removes and returns the first element.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn pop_front(&self) -> RemoteWritten<Option<T>> {
        ops::pop_front(self).await
    }

    /// Inserts `value` at `index` (up to the length).
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`]; an index out of range is the `Err` inside.
    pub async fn insert(&self, index: u64, value: T) -> RemoteWritten<Result<(), OutOfRange>> {
        ops::insert(self, index, value).await
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`]; an index out of range is the `Err` inside.
    pub async fn remove(&self, index: u64) -> RemoteWritten<Result<T, OutOfRange>> {
        ops::remove(self, index).await
    }

    /// Swaps the elements at `a` and `b`.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`]; an index out of range is the `Err` inside.
    pub async fn swap(&self, a: u64, b: u64) -> RemoteWritten<Result<(), OutOfRange>> {
        ops::swap(self, a, b).await
    }

    /// Keeps the first `len` elements; how many were dropped.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn truncate(&self, len: u64) -> RemoteWritten<u64> {
        ops::truncate(self, len).await
    }

    /// Appends `values`; the new length.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn extend(&self, values: Vec<T>) -> RemoteWritten<u64> {
        ops::extend(self, values).await
    }

    /// Removes every element; how many there were.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<u64> {
        ops::clear(self).await
    }
}
