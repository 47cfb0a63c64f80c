//! What mirrors receive: each command recorded as the entries it left or
//! removed, so a mirror never has to re-run eviction or range logic.

use super::command::{PriorityQueueCommand, PriorityQueueOutcome};
use super::state::{Entry, PriorityQueueState};
use crate::collections::{Key, Value};
use crate::state_machine::merge_keyed;
use crate::{Changes, Mirrored};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};

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
