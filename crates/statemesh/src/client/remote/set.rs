//! Remote sets.

use super::{Remote, RemoteWritten, wrong};
use crate::client::ClientError;
use crate::collections::{Key, SetAnswer, SetCommand, SetOutcome, SetQuery, SetState};

impl<T: Key> Remote<SetState<T>> {
    async fn ask(&self, q: SetQuery<T>) -> Result<SetAnswer<T>, ClientError> {
        Ok(self.query(q).await?.0)
    }

    /// Whether `value` is in the set.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn contains(&self, value: &T) -> Result<bool, ClientError> {
        match self.ask(SetQuery::Contains(value.clone())).await? {
            SetAnswer::Contains(b) => Ok(b),
            _ => wrong("contains"),
        }
    }

    /// The number of elements.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn len(&self) -> Result<usize, ClientError> {
        match self.ask(SetQuery::Len).await? {
            SetAnswer::Len(n) => Ok(n),
            _ => wrong("len"),
        }
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
        const PAGE: usize = 1024;
        let mut all: Vec<T> = Vec::new();
        loop {
            let after = all.last().cloned();
            let SetAnswer::Elements(page) =
                self.ask(SetQuery::Elements { after, limit: PAGE }).await?
            else {
                return wrong("iter");
            };
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
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
        changed(self.execute(SetCommand::Insert(value)).await?, "insert")
    }

    /// Removes `value`; whether it was there.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove(&self, value: T) -> RemoteWritten<bool> {
        changed(self.execute(SetCommand::Remove(value)).await?, "remove")
    }

    /// Removes `values`; how many were there.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn remove_many(&self, values: Vec<T>) -> RemoteWritten<usize> {
        count(
            self.execute(SetCommand::RemoveMany(values)).await?,
            "remove_many",
        )
    }

    /// Adds `values`; how many were new.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn extend(&self, values: Vec<T>) -> RemoteWritten<usize> {
        count(self.execute(SetCommand::Extend(values)).await?, "extend")
    }

    /// Removes every element; how many there were.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<usize> {
        count(self.execute(SetCommand::Clear).await?, "clear")
    }
}

fn changed(r: (SetOutcome, u64), what: &str) -> RemoteWritten<bool> {
    match r {
        (SetOutcome::Changed(b), v) => Ok((b, v)),
        _ => wrong(what),
    }
}

fn count(r: (SetOutcome, u64), what: &str) -> RemoteWritten<usize> {
    match r {
        (SetOutcome::Count(n), v) => Ok((n, v)),
        _ => wrong(what),
    }
}
