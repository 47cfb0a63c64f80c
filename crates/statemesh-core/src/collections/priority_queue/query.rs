//! Remote reads: answered from the priority index so a page costs what it
//! returns.

use super::state::{Entry, PriorityQueueState};
use crate::Queryable;
use crate::collections::{Key, Value};
use serde::{Deserialize, Serialize};
use std::ops::Bound;

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
