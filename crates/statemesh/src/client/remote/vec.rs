//! Remote sequences.

use super::{Remote, RemoteWritten, wrong};
use crate::client::ClientError;
use crate::collections::{
    OutOfRange, Value, VecAnswer, VecCommand, VecOutcome, VecQuery, VecState,
};

impl<T: Value> Remote<VecState<T>> {
    async fn item(&self, q: VecQuery<T>, what: &str) -> Result<Option<T>, ClientError> {
        match self.query(q).await?.0 {
            VecAnswer::Item(v) => Ok(v),
            _ => wrong(what),
        }
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
        match self.query(VecQuery::Len).await?.0 {
            VecAnswer::Len(n) => Ok(n),
            _ => wrong("len"),
        }
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
        match self.query(VecQuery::IndexOf(value.clone())).await?.0 {
            VecAnswer::Index(i) => Ok(i),
            _ => wrong("index_of"),
        }
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
        const PAGE: usize = 1024;
        let mut all = Vec::new();
        loop {
            let start = all.len() as u64;
            let VecAnswer::Items(page) =
                self.query(VecQuery::Range { start, limit: PAGE }).await?.0
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

    /// Appends `value`; the new length.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn push_back(&self, value: T) -> RemoteWritten<u64> {
        len(
            self.execute(VecCommand::PushBack(value)).await?,
            "push_back",
        )
    }

    /// Prepends `value`; the new length.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn push_front(&self, value: T) -> RemoteWritten<u64> {
        len(
            self.execute(VecCommand::PushFront(value)).await?,
            "push_front",
        )
    }

    /// Removes and returns the last element.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn pop_back(&self) -> RemoteWritten<Option<T>> {
        taken(self.execute(VecCommand::PopBack).await?, "pop_back")
    }

    /// Removes and returns the first element.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn pop_front(&self) -> RemoteWritten<Option<T>> {
        taken(self.execute(VecCommand::PopFront).await?, "pop_front")
    }

    /// Inserts `value` at `index` (up to the length).
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`]; an index out of range is the `Err` inside.
    pub async fn insert(&self, index: u64, value: T) -> RemoteWritten<Result<(), OutOfRange>> {
        done(
            self.execute(VecCommand::Insert(index, value)).await?,
            "insert",
        )
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`]; an index out of range is the `Err` inside.
    pub async fn remove(&self, index: u64) -> RemoteWritten<Result<T, OutOfRange>> {
        match self.execute(VecCommand::Remove(index)).await? {
            (VecOutcome::Removed(r), v) => Ok((r, v)),
            _ => wrong("remove"),
        }
    }

    /// Swaps the elements at `a` and `b`.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`]; an index out of range is the `Err` inside.
    pub async fn swap(&self, a: u64, b: u64) -> RemoteWritten<Result<(), OutOfRange>> {
        done(self.execute(VecCommand::Swap(a, b)).await?, "swap")
    }

    /// Keeps the first `len` elements; how many were dropped.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn truncate(&self, len: u64) -> RemoteWritten<u64> {
        dropped(self.execute(VecCommand::Truncate(len)).await?, "truncate")
    }

    /// Appends `values`; the new length.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn extend(&self, values: Vec<T>) -> RemoteWritten<u64> {
        len(self.execute(VecCommand::Extend(values)).await?, "extend")
    }

    /// Removes every element; how many there were.
    ///
    /// # Errors
    ///
    /// See [`Remote::execute`].
    pub async fn clear(&self) -> RemoteWritten<u64> {
        dropped(self.execute(VecCommand::Clear).await?, "clear")
    }
}

fn len<T>(r: (VecOutcome<T>, u64), what: &str) -> RemoteWritten<u64> {
    match r {
        (VecOutcome::Len(n), v) => Ok((n, v)),
        _ => wrong(what),
    }
}

fn taken<T>(r: (VecOutcome<T>, u64), what: &str) -> RemoteWritten<Option<T>> {
    match r {
        (VecOutcome::Taken(t), v) => Ok((t, v)),
        _ => wrong(what),
    }
}

fn done<T>(r: (VecOutcome<T>, u64), what: &str) -> RemoteWritten<Result<(), OutOfRange>> {
    match r {
        (VecOutcome::Done(d), v) => Ok((d, v)),
        _ => wrong(what),
    }
}

fn dropped<T>(r: (VecOutcome<T>, u64), what: &str) -> RemoteWritten<u64> {
    match r {
        (VecOutcome::Dropped(n), v) => Ok((n, v)),
        _ => wrong(what),
    }
}
