//! Remote sets.

use super::{Remote, RemoteWritten};
use crate::client::ClientError;
use statemesh_core::collections::set_ops as ops;
use statemesh_core::collections::{Key, SetAnswer, SetQuery, SetState};

impl<T: Key> Remote<SetState<T>> {
    /// Whether `value` is in the set.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn contains(&self, value: &T) -> Result<bool, ClientError> {
        self.ask(SetQuery::Contains(value.clone()), "contains", |a| match a {
            SetAnswer::Contains(b) => Some(b),
            _ => None,
        })
        .await
    }

    /// The number of elements.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn len(&self) -> Result<usize, ClientError> {
        self.ask(SetQuery::Len, "len", |a| match a {
            SetAnswer::Len(n) => Some(n),
            _ => None,
        })
        .await
    }

    /// Whether the set is empty.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn is_empty(&self) -> Result<bool, ClientError> {
        Ok(self.len().await? == 0)
    }

    /// Every element in order, a page at a time.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn iter(&self) -> Result<Vec<T>, ClientError> {
        let page = |seen: &[T], limit| SetQuery::Elements {
            after: seen.last().cloned(),
            limit,
        };
        self.all_pages("iter", page, |a| match a {
            SetAnswer::Elements(e) => Some(e),
            _ => None,
        })
        .await
    }

    /// Whether every element of the set is among `other`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn is_subset<'a>(
        &self,
        other: impl IntoIterator<Item = &'a T>,
    ) -> Result<bool, ClientError>
    where
        T: 'a,
    {
        let other: std::collections::BTreeSet<&T> = other.into_iter().collect();
        Ok(self.iter().await?.iter().all(|v| other.contains(v)))
    }

    /// Adds `value`; whether it was new.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn insert(&self, value: T) -> RemoteWritten<bool> {
        ops::insert(self, value).await
    }

    /// Removes `value`; whether it was there.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove(&self, value: T) -> RemoteWritten<bool> {
        ops::remove(self, value).await
    }

    /// Removes `values`; how many were there.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove_many(&self, values: Vec<T>) -> RemoteWritten<usize> {
        ops::remove_many(self, values).await
    }

    /// Adds `values`; how many were new.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn extend(&self, values: Vec<T>) -> RemoteWritten<usize> {
        ops::extend(self, values).await
    }

    /// Removes every element; how many there were.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<usize> {
        ops::clear(self).await
    }
}
