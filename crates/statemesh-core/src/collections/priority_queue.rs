//! `PriorityQueue<P, K, V>`: replicated entries ordered by priority,
//! addressed by key, bounded or not.

use super::{Key, Value};
use crate::state_machine::merge_keyed;
use crate::{Changes, Mirrored, Queryable, StateMachine};
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// One entry of a priority queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<P, K, V> {
    /// Its priority.
    pub priority: P,
    /// Its key.
    pub key: K,
    /// Its value.
    pub value: V,
}

/// The state machine behind a `PriorityQueue`.
///
/// Entries are ordered by `(priority, key)`, so ties in priority break the
/// same way on every replica. Two persistent indexes, by key and by
/// priority, make a snapshot O(1) and `Writer::remove_range` proportional
/// to what it removes, not to the queue's size. A bounded queue that grows
/// past its capacity evicts its lowest entries.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityQueueState<P: Ord + Clone, K: Ord + Clone, V: Clone> {
    capacity: Option<u64>,
    by_key: OrdMap<K, (P, V)>,
    by_priority: OrdMap<P, OrdSet<K>>,
}

impl<P: Ord + Clone, K: Ord + Clone, V: Clone> Default for PriorityQueueState<P, K, V> {
    fn default() -> Self {
        Self::unbounded()
    }
}

impl<P: Ord + Clone, K: Ord + Clone, V: Clone> PriorityQueueState<P, K, V> {
    /// An empty queue with no capacity limit.
    #[must_use]
    pub fn unbounded() -> Self {
        Self {
            capacity: None,
            by_key: OrdMap::new(),
            by_priority: OrdMap::new(),
        }
    }

    /// An empty queue that holds at most `capacity` entries; inserting into
    /// a full queue evicts the entry with the lowest `(priority, key)`,
    /// which may be the one inserted.
    #[must_use]
    pub fn bounded(capacity: u64) -> Self {
        Self {
            capacity: Some(capacity),
            ..Self::unbounded()
        }
    }

    fn index(&mut self, priority: P, key: K) {
        self.by_priority.entry(priority).or_default().insert(key);
    }

    fn unindex(&mut self, priority: &P, key: &K) {
        if let Some(keys) = self.by_priority.get_mut(priority) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_priority.remove(priority);
            }
        }
    }

    fn take(&mut self, key: &K) -> Option<(P, V)> {
        let (priority, value) = self.by_key.remove(key)?;
        self.unindex(&priority, key);
        Some((priority, value))
    }

    /// Every entry's priority and value, by key.
    #[must_use]
    pub fn by_key(&self) -> &OrdMap<K, (P, V)> {
        &self.by_key
    }

    /// The capacity it was made with (`None`: unbounded).
    #[must_use]
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// The lowest `(priority, key)`.
    #[must_use]
    pub fn lowest(&self) -> Option<(&P, &K)> {
        let (priority, keys) = self.by_priority.get_min()?;
        Some((priority, keys.get_min()?))
    }

    /// The highest `(priority, key)`.
    #[must_use]
    pub fn highest(&self) -> Option<(&P, &K)> {
        let (priority, keys) = self.by_priority.get_max()?;
        Some((priority, keys.get_max()?))
    }

    /// The entry with `key`.
    #[must_use]
    pub fn entry(&self, key: &K) -> Option<Entry<P, K, V>> {
        let (priority, value) = self.by_key.get(key)?;
        Some(Entry {
            priority: priority.clone(),
            key: key.clone(),
            value: value.clone(),
        })
    }

    fn evict_over_capacity(&mut self) -> Vec<Entry<P, K, V>> {
        let mut evicted = Vec::new();
        let Some(capacity) = self.capacity else {
            return evicted;
        };
        while self.by_key.len() as u64 > capacity {
            let Some((_, key)) = self.lowest() else {
                break;
            };
            let key = key.clone();
            if let Some((priority, value)) = self.take(&key) {
                evicted.push(Entry {
                    priority,
                    key,
                    value,
                });
            }
        }
        evicted
    }

    fn remove_range(&mut self, range: (Bound<P>, Bound<P>)) -> Vec<Entry<P, K, V>> {
        if is_empty_range(&range) {
            return Vec::new();
        }
        // Collect the priorities first: the index cannot change while its
        // range iterator borrows it. The work is proportional to the
        // entries removed, never a scan of every key.
        let hit: Vec<(P, OrdSet<K>)> = self
            .by_priority
            .range(range)
            .map(|(p, keys)| (p.clone(), keys.clone()))
            .collect();
        let mut removed = Vec::new();
        for (priority, keys) in hit {
            self.by_priority.remove(&priority);
            for key in keys {
                if let Some((_, value)) = self.by_key.remove(&key) {
                    removed.push(Entry {
                        priority: priority.clone(),
                        key,
                        value,
                    });
                }
            }
        }
        removed
    }
}

/// Whether `range` can hold nothing. `BTreeMap`-like ranges panic on
/// these, and a command from the network must never panic `apply`.
fn is_empty_range<P: Ord>(range: &(Bound<P>, Bound<P>)) -> bool {
    match range {
        (Bound::Included(lo), Bound::Included(hi)) => lo > hi,
        (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi))
        | (Bound::Excluded(lo), Bound::Included(hi)) => lo >= hi,
        _ => false,
    }
}

/// A change to a priority queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PriorityQueueCommand<P, K, V> {
    /// Inserts an entry or replaces the one with its key.
    Insert(Entry<P, K, V>),
    /// Changes the priority of an entry.
    UpdatePriority(K, P),
    /// Changes the value of an entry.
    UpdateValue(K, V),
    /// Changes the value of an entry if it holds `expected`.
    CompareExchangeValue {
        /// The key.
        key: K,
        /// The value it must hold.
        expected: V,
        /// The value to store.
        new: V,
    },
    /// Removes one entry.
    Remove(K),
    /// Removes every entry whose priority is in the range.
    RemoveRange(Bound<P>, Bound<P>),
    /// Removes every entry.
    Clear,
}

/// What a change to a priority queue did.
#[derive(Debug, Serialize, Deserialize)]
pub enum PriorityQueueOutcome<P, K, V> {
    /// An insert: the priority and value the key had before, and the
    /// entries evicted to stay within capacity.
    Inserted {
        /// The key's previous priority and value.
        previous: Option<(P, V)>,
        /// The entries evicted, lowest first.
        evicted: Vec<Entry<P, K, V>>,
    },
    /// The previous priority (`None`: no such key, nothing changed).
    Priority(Option<P>),
    /// The previous value (`None`: no such key, nothing changed).
    Value(Option<V>),
    /// `Ok(previous)` if stored, `Err(current)` if not (`None`: no such key).
    Exchanged(Result<V, Option<V>>),
    /// The entries removed, in ascending order.
    Removed(Vec<Entry<P, K, V>>),
}

impl<P: Key, K: Key, V: Value> StateMachine for PriorityQueueState<P, K, V> {
    type Command = PriorityQueueCommand<P, K, V>;
    type Response = PriorityQueueOutcome<P, K, V>;
    /// The capacity and the entries by key; the priority index is rebuilt
    /// on restore rather than sent twice.
    type Snapshot = (Option<u64>, OrdMap<K, (P, V)>);

    fn signature(&self) -> String {
        let capacity = self
            .capacity
            .map_or_else(|| "unbounded".to_owned(), |c| format!("capacity {c}"));
        format!(
            "statemesh::PriorityQueue<{}, {}, {}>({capacity})",
            crate::type_name::<P>(),
            crate::type_name::<K>(),
            crate::type_name::<V>()
        )
    }

    fn apply(
        &mut self,
        command: PriorityQueueCommand<P, K, V>,
        version: u64,
    ) -> PriorityQueueOutcome<P, K, V> {
        self.apply_recording(command, version, &mut Changes::off())
    }

    fn snapshot(&self) -> Self::Snapshot {
        (self.capacity, self.by_key.clone())
    }

    fn restore(&mut self, (capacity, by_key): Self::Snapshot) {
        self.capacity = capacity;
        self.by_priority = OrdMap::new();
        for (key, (priority, _)) in &by_key {
            self.index(priority.clone(), key.clone());
        }
        self.by_key = by_key;
    }

    fn entries(&self) -> Option<u64> {
        Some(self.by_key.len() as u64)
    }
}

/// An O(1) snapshot of a priority queue, to read at leisure.
#[derive(Debug, Clone)]
pub struct PriorityQueueSnapshot<P: Ord + Clone, K: Ord + Clone, V: Clone> {
    state: PriorityQueueState<P, K, V>,
}

impl<P: Ord + Clone, K: Ord + Clone, V: Clone> PriorityQueueState<P, K, V> {
    /// An O(1) snapshot of this state (its indexes are persistent).
    #[must_use]
    pub fn to_snapshot(&self) -> PriorityQueueSnapshot<P, K, V> {
        PriorityQueueSnapshot {
            state: self.clone(),
        }
    }
}

impl<P: Key, K: Key, V: Value> PriorityQueueSnapshot<P, K, V> {
    /// How many entries it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.by_key.len()
    }

    /// Whether it holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.state.by_key.is_empty()
    }

    /// The entry with `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<Entry<P, K, V>> {
        self.state.entry(key)
    }

    /// The entries in ascending `(priority, key)` order.
    pub fn ascending(&self) -> impl Iterator<Item = Entry<P, K, V>> + '_ {
        self.state
            .by_priority
            .iter()
            .flat_map(|(_, keys)| keys.iter())
            .filter_map(|key| self.state.entry(key))
    }

    /// The entries in descending `(priority, key)` order.
    pub fn descending(&self) -> impl Iterator<Item = Entry<P, K, V>> + '_ {
        self.state
            .by_priority
            .iter()
            .rev()
            .flat_map(|(_, keys)| keys.iter().rev())
            .filter_map(|key| self.state.entry(key))
    }
}

/// What a priority queue's mirror applies: an entry as it now is, a key
/// that went (removed, popped or evicted), or the removal of every entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PriorityQueueChange<P, K, V> {
    /// The entry now is this (inserted, or its priority or value changed).
    Put(Entry<P, K, V>),
    /// The key is gone.
    Remove(K),
    /// Every entry is gone.
    Clear,
}

impl<P: Key, K: Key, V: Value> Mirrored for PriorityQueueState<P, K, V> {
    type Change = PriorityQueueChange<P, K, V>;

    fn apply_recording(
        &mut self,
        command: PriorityQueueCommand<P, K, V>,
        _version: u64,
        changes: &mut Changes<Self::Change>,
    ) -> PriorityQueueOutcome<P, K, V> {
        use PriorityQueueChange as Ch;
        use PriorityQueueOutcome as O;
        if !changes.recording() {
            return self.run(command);
        }
        let clear = matches!(command, PriorityQueueCommand::Clear);
        let key = match &command {
            PriorityQueueCommand::Insert(e) => Some(e.key.clone()),
            PriorityQueueCommand::UpdatePriority(k, _)
            | PriorityQueueCommand::UpdateValue(k, _)
            | PriorityQueueCommand::CompareExchangeValue { key: k, .. } => Some(k.clone()),
            _ => None,
        };
        let outcome = self.run(command);
        // The state after says what an entry now is; the outcome says
        // which keys went.
        let now = |s: &Self| key.as_ref().and_then(|k| s.entry(k));
        match &outcome {
            O::Inserted { previous, evicted } => {
                match (now(self), &key) {
                    (Some(e), _) => changes.record(|| Ch::Put(e)),
                    // Inserted and at once evicted: only its old self went.
                    (None, Some(k)) if previous.is_some() => {
                        changes.record(|| Ch::Remove(k.clone()))
                    }
                    (None, _) => {}
                }
                for e in evicted.iter().filter(|e| Some(&e.key) != key.as_ref()) {
                    changes.record(|| Ch::Remove(e.key.clone()));
                }
            }
            O::Priority(Some(_)) | O::Value(Some(_)) | O::Exchanged(Ok(_)) => {
                if let Some(e) = now(self) {
                    changes.record(|| Ch::Put(e));
                }
            }
            O::Removed(removed) if clear => {
                if !removed.is_empty() {
                    changes.record(|| Ch::Clear);
                }
            }
            O::Removed(removed) => {
                for e in removed {
                    changes.record(|| Ch::Remove(e.key.clone()));
                }
            }
            O::Priority(None) | O::Value(None) | O::Exchanged(Err(_)) => {}
        }
        outcome
    }

    fn apply_change(&mut self, change: PriorityQueueChange<P, K, V>) {
        match change {
            PriorityQueueChange::Put(Entry {
                priority,
                key,
                value,
            }) => {
                self.take(&key);
                self.by_key.insert(key.clone(), (priority.clone(), value));
                self.index(priority, key);
            }
            PriorityQueueChange::Remove(key) => {
                self.take(&key);
            }
            PriorityQueueChange::Clear => {
                self.by_key = OrdMap::new();
                self.by_priority = OrdMap::new();
            }
        }
    }

    fn merge(changes: Vec<Self::Change>) -> Vec<Self::Change> {
        merge_keyed(changes, |c| match c {
            PriorityQueueChange::Put(e) => Some(&e.key),
            PriorityQueueChange::Remove(k) => Some(k),
            PriorityQueueChange::Clear => None,
        })
    }
}

impl<P: Key, K: Key, V: Value> PriorityQueueState<P, K, V> {
    fn run(&mut self, command: PriorityQueueCommand<P, K, V>) -> PriorityQueueOutcome<P, K, V> {
        use PriorityQueueCommand as C;
        use PriorityQueueOutcome as O;
        match command {
            C::Insert(Entry {
                priority,
                key,
                value,
            }) => {
                let previous = self.take(&key);
                self.by_key.insert(key.clone(), (priority.clone(), value));
                self.index(priority, key);
                O::Inserted {
                    previous,
                    evicted: self.evict_over_capacity(),
                }
            }
            C::UpdatePriority(key, priority) => O::Priority(self.take(&key).map(|(old, value)| {
                self.by_key.insert(key.clone(), (priority.clone(), value));
                self.index(priority, key);
                old
            })),
            C::UpdateValue(key, value) => O::Value(
                self.by_key
                    .get_mut(&key)
                    .map(|(_, v)| std::mem::replace(v, value)),
            ),
            C::CompareExchangeValue { key, expected, new } => {
                O::Exchanged(match self.by_key.get_mut(&key) {
                    Some((_, v)) if *v == expected => Ok(std::mem::replace(v, new)),
                    Some((_, v)) => Err(Some(v.clone())),
                    None => Err(None),
                })
            }
            C::Remove(key) => O::Removed(
                self.take(&key)
                    .map(|(priority, value)| Entry {
                        priority,
                        key,
                        value,
                    })
                    .into_iter()
                    .collect(),
            ),
            C::RemoveRange(lo, hi) => O::Removed(self.remove_range((lo, hi))),
            C::Clear => {
                self.by_priority = OrdMap::new();
                let mut removed: Vec<_> = std::mem::take(&mut self.by_key)
                    .into_iter()
                    .map(|(key, (priority, value))| Entry {
                        priority,
                        key,
                        value,
                    })
                    .collect();
                removed.sort_by(|a, b| (&a.priority, &a.key).cmp(&(&b.priority, &b.key)));
                O::Removed(removed)
            }
        }
    }
}

/// A remote read of a priority queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PriorityQueueQuery<P, K> {
    /// The entry with a key.
    Get(K),
    /// The number of entries.
    Len,
    /// The entry of lowest `(priority, key)`.
    Min,
    /// The entry of highest `(priority, key)`.
    Max,
    /// Up to `limit` entries in ascending `(priority, key)` order after
    /// `after` (from the lowest if `None`), or descending before it.
    Page {
        /// The last `(priority, key)` of the previous page.
        after: Option<(P, K)>,
        /// Descending instead of ascending.
        descending: bool,
        /// The most entries to return.
        limit: usize,
    },
}

/// The answer to a [`PriorityQueueQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PriorityQueueAnswer<P, K, V> {
    /// To `Get`, `Min`, `Max`.
    Entry(Option<Entry<P, K, V>>),
    /// To `Len`.
    Len(usize),
    /// To `Page`.
    Entries(Vec<Entry<P, K, V>>),
}

impl<P: Key, K: Key, V: Value> Queryable for PriorityQueueState<P, K, V> {
    type Query = PriorityQueueQuery<P, K>;
    type Answer = PriorityQueueAnswer<P, K, V>;

    fn answer(&self, query: PriorityQueueQuery<P, K>) -> PriorityQueueAnswer<P, K, V> {
        use PriorityQueueAnswer as A;
        match query {
            PriorityQueueQuery::Get(k) => A::Entry(self.entry(&k)),
            PriorityQueueQuery::Len => A::Len(self.by_key.len()),
            PriorityQueueQuery::Min => A::Entry(self.lowest().and_then(|(_, k)| self.entry(k))),
            PriorityQueueQuery::Max => A::Entry(self.highest().and_then(|(_, k)| self.entry(k))),
            PriorityQueueQuery::Page {
                after,
                descending,
                limit,
            } => {
                // Walks the priority index from the bound: a page costs what
                // it returns, whatever the queue's size.
                let past = |p: &P, k: &K| match &after {
                    None => true,
                    Some((ap, ak)) if descending => (p, k) < (ap, ak),
                    Some((ap, ak)) => (p, k) > (ap, ak),
                };
                let from = after.as_ref().map(|(p, _)| p.clone());
                let keys: Box<dyn Iterator<Item = (&P, &K)>> = match (&from, descending) {
                    (Some(p), false) => Box::new(
                        self.by_priority
                            .range::<_, P>((Bound::Included(p), Bound::Unbounded))
                            .flat_map(|(p, ks)| ks.iter().map(move |k| (p, k))),
                    ),
                    (Some(p), true) => Box::new(
                        self.by_priority
                            .range::<_, P>((Bound::Unbounded, Bound::Included(p)))
                            .rev()
                            .flat_map(|(p, ks)| ks.iter().rev().map(move |k| (p, k))),
                    ),
                    (None, false) => Box::new(
                        self.by_priority
                            .iter()
                            .flat_map(|(p, ks)| ks.iter().map(move |k| (p, k))),
                    ),
                    (None, true) => Box::new(
                        self.by_priority
                            .iter()
                            .rev()
                            .flat_map(|(p, ks)| ks.iter().rev().map(move |k| (p, k))),
                    ),
                };
                A::Entries(
                    keys.filter(|(p, k)| past(p, k))
                        .take(limit)
                        .filter_map(|(_, k)| self.entry(k))
                        .collect(),
                )
            }
        }
    }
}

/// A priority queue's write operations, once for every
/// [`Executor`](super::Executor).
pub mod ops {
    use super::{
        Entry, Key, PriorityQueueCommand, PriorityQueueOutcome, PriorityQueueState, Value,
    };
    use crate::collections::{Done, Executor};
    use std::ops::RangeBounds;

    /// What an insert returns: the replaced entry's priority and value,
    /// and the entries evicted.
    pub type Evicting<P, K, V> = (Option<(P, V)>, Vec<Entry<P, K, V>>);

    /// Inserts an entry (replacing the one with its key); the replaced
    /// priority and value, and the entries evicted past the capacity.
    pub async fn insert<P: Key, K: Key, V: Value, X>(
        x: &X,
        priority: P,
        key: K,
        value: V,
    ) -> Done<Evicting<P, K, V>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        let entry = Entry {
            priority,
            key,
            value,
        };
        match x.run(PriorityQueueCommand::Insert(entry)).await? {
            (PriorityQueueOutcome::Inserted { previous, evicted }, v) => {
                Ok(((previous, evicted), v))
            }
            _ => Err(X::wrong_shape("insert")),
        }
    }

    /// Moves `key` to `priority`; its previous priority.
    pub async fn update_priority<P: Key, K: Key, V: Value, X>(
        x: &X,
        key: K,
        priority: P,
    ) -> Done<Option<P>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        match x
            .run(PriorityQueueCommand::UpdatePriority(key, priority))
            .await?
        {
            (PriorityQueueOutcome::Priority(p), v) => Ok((p, v)),
            _ => Err(X::wrong_shape("update_priority")),
        }
    }

    /// Replaces the value at `key`; the previous one.
    pub async fn update_value<P: Key, K: Key, V: Value, X>(
        x: &X,
        key: K,
        value: V,
    ) -> Done<Option<V>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        match x.run(PriorityQueueCommand::UpdateValue(key, value)).await? {
            (PriorityQueueOutcome::Value(p), v) => Ok((p, v)),
            _ => Err(X::wrong_shape("update_value")),
        }
    }

    /// Replaces the value at `key` if it is `expected`: `Ok(previous)`
    /// or `Err(current)`.
    pub async fn compare_exchange_value<P: Key, K: Key, V: Value, X>(
        x: &X,
        key: K,
        expected: V,
        new: V,
    ) -> Done<Result<V, Option<V>>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        match x
            .run(PriorityQueueCommand::CompareExchangeValue { key, expected, new })
            .await?
        {
            (PriorityQueueOutcome::Exchanged(r), v) => Ok((r, v)),
            _ => Err(X::wrong_shape("compare_exchange_value")),
        }
    }

    /// Removes the entry with `key`; it.
    pub async fn remove<P: Key, K: Key, V: Value, X>(
        x: &X,
        key: K,
    ) -> Done<Option<Entry<P, K, V>>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        let (removed, v) = removed::<P, K, V, X>(x.run(PriorityQueueCommand::Remove(key)).await?)?;
        Ok((removed.into_iter().next(), v))
    }

    /// Removes the entries whose priority is in `range`; them.
    pub async fn remove_range<P: Key, K: Key, V: Value, X>(
        x: &X,
        range: impl RangeBounds<P>,
    ) -> Done<Vec<Entry<P, K, V>>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        let command = PriorityQueueCommand::RemoveRange(
            range.start_bound().cloned(),
            range.end_bound().cloned(),
        );
        removed::<P, K, V, X>(x.run(command).await?)
    }

    /// Removes every entry; them.
    pub async fn clear<P: Key, K: Key, V: Value, X>(x: &X) -> Done<Vec<Entry<P, K, V>>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        removed::<P, K, V, X>(x.run(PriorityQueueCommand::Clear).await?)
    }

    fn removed<P: Key, K: Key, V: Value, X>(
        r: (PriorityQueueOutcome<P, K, V>, u64),
    ) -> Done<Vec<Entry<P, K, V>>, X::Error>
    where
        X: Executor<PriorityQueueState<P, K, V>>,
    {
        match r {
            (PriorityQueueOutcome::Removed(e), v) => Ok((e, v)),
            _ => Err(X::wrong_shape("a removal")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(q: &mut PriorityQueueState<u8, u8, u8>, p: u8, k: u8) -> Vec<Entry<u8, u8, u8>> {
        let entry = Entry {
            priority: p,
            key: k,
            value: k,
        };
        match q.apply(PriorityQueueCommand::Insert(entry), 0) {
            PriorityQueueOutcome::Inserted { evicted, .. } => evicted,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_full_queue_evicts_its_lowest_entry() {
        let mut q = PriorityQueueState::bounded(2);
        assert!(insert(&mut q, 5, 1).is_empty());
        assert!(insert(&mut q, 5, 2).is_empty());
        let evicted = insert(&mut q, 7, 3);
        assert_eq!(evicted.iter().map(|e| e.key).collect::<Vec<_>>(), [1]);
        let evicted = insert(&mut q, 1, 4);
        assert_eq!(evicted.iter().map(|e| e.key).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn inverted_and_empty_ranges_remove_nothing_and_do_not_panic() {
        let mut q = PriorityQueueState::unbounded();
        for k in 0..10 {
            insert(&mut q, k, k);
        }
        for (lo, hi) in [
            (Bound::Included(5), Bound::Included(2)),
            (Bound::Excluded(5), Bound::Excluded(5)),
            (Bound::Included(5), Bound::Excluded(5)),
            (Bound::Excluded(5), Bound::Included(5)),
        ] {
            match q.apply(PriorityQueueCommand::RemoveRange(lo, hi), 0) {
                PriorityQueueOutcome::Removed(r) => assert!(r.is_empty()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(q.by_key.len(), 10);
    }

    #[test]
    fn restore_rebuilds_the_priority_index() {
        let mut q = PriorityQueueState::bounded(3);
        for k in 0..5 {
            insert(&mut q, 10 - k, k);
        }
        let mut r = PriorityQueueState::unbounded();
        r.restore(q.snapshot());
        assert_eq!(q, r);
    }
}
