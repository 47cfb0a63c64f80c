//! Applying a command: the one place that decides what a command does, for
//! the log, for snapshots and for the recording path of mirrors.

use super::command::{PriorityQueueCommand, PriorityQueueOutcome};
use super::state::{Entry, PriorityQueueState};
use crate::collections::{Key, Value};
use crate::{Changes, Mirrored, StateMachine};
use imbl::OrdMap;

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

impl<P: Key, K: Key, V: Value> PriorityQueueState<P, K, V> {
    pub(super) fn run(
        &mut self,
        command: PriorityQueueCommand<P, K, V>,
    ) -> PriorityQueueOutcome<P, K, V> {
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
