use super::command::{PriorityQueueCommand, PriorityQueueOutcome};
use super::state::{Entry, PriorityQueueState};
use crate::StateMachine;
use std::ops::Bound;

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
