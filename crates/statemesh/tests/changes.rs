//! What a mirror applies: for random commands on every collection, the
//! recorded changes, applied one by one or merged into one run, rebuild
//! exactly the state the commands built, and merging never grows a run.

use proptest::prelude::*;
use statemesh::collections::{
    CellCommand, CellState, Entry, MapCommand, MapState, OnceState, PriorityQueueCommand,
    PriorityQueueState, SetCommand, SetState, VecCommand, VecState,
};
use statemesh::{Changes, Mirrored};
use std::fmt::Debug;
use std::ops::Bound;

/// Applies `commands` to `initial()` recording changes, then checks that a
/// replay of the changes, and of their merge, give the same state.
fn check<SM>(initial: impl Fn() -> SM, commands: Vec<SM::Command>)
where
    SM: Mirrored + PartialEq + Debug,
{
    let mut leader = initial();
    let mut changes = Vec::new();
    for (i, c) in commands.into_iter().enumerate() {
        leader.apply_recording(c, i as u64 + 1, &mut Changes::into(&mut changes));
    }
    let count = changes.len();
    // The changes go over the wire: encode and decode them as a node does.
    let bytes = postcard::to_allocvec(&changes).unwrap();
    let changes: Vec<SM::Change> = postcard::from_bytes(&bytes).unwrap();
    let bytes_again = postcard::to_allocvec(&changes).unwrap();

    let mut one_by_one = initial();
    for c in changes {
        one_by_one.apply_change(c);
    }
    assert_eq!(one_by_one, leader, "replaying the changes");

    let merged = SM::merge(postcard::from_bytes(&bytes_again).unwrap());
    assert!(
        merged.len() <= count,
        "merging grew {count} changes to {}",
        merged.len()
    );
    let mut from_merged = initial();
    for c in merged {
        from_merged.apply_change(c);
    }
    assert_eq!(from_merged, leader, "replaying the merged changes");
}

/// A plain apply gives the same state and outcome shape as a recording one.
fn same_as_apply<SM>(initial: impl Fn() -> SM, commands: Vec<SM::Command>)
where
    SM: Mirrored + PartialEq + Debug,
    SM::Command: Clone,
{
    let mut plain = initial();
    let mut recording = initial();
    let mut sink = Vec::new();
    for (i, c) in commands.into_iter().enumerate() {
        plain.apply(c.clone(), i as u64);
        recording.apply_recording(c, i as u64, &mut Changes::into(&mut sink));
    }
    assert_eq!(plain, recording);
}

fn small_key() -> impl Strategy<Value = u8> {
    0u8..12
}

fn map_command() -> impl Strategy<Value = MapCommand<u8, u16>> {
    prop_oneof![
        6 => (small_key(), any::<u16>()).prop_map(|(k, v)| MapCommand::Insert(k, v)),
        3 => small_key().prop_map(MapCommand::Remove),
        1 => prop::collection::vec(small_key(), 0..4).prop_map(MapCommand::RemoveMany),
        2 => prop::collection::vec((small_key(), any::<u16>()), 0..4).prop_map(MapCommand::Extend),
        2 => (small_key(), prop::option::of(0u16..3), prop::option::of(any::<u16>()))
            .prop_map(|(key, expected, new)| MapCommand::CompareExchange { key, expected, new }),
        1 => Just(MapCommand::Clear),
    ]
}

fn set_command() -> impl Strategy<Value = SetCommand<u8>> {
    prop_oneof![
        5 => small_key().prop_map(SetCommand::Insert),
        3 => small_key().prop_map(SetCommand::Remove),
        1 => prop::collection::vec(small_key(), 0..4).prop_map(SetCommand::RemoveMany),
        2 => prop::collection::vec(small_key(), 0..4).prop_map(SetCommand::Extend),
        1 => Just(SetCommand::Clear),
    ]
}

fn vec_command() -> impl Strategy<Value = VecCommand<u8>> {
    prop_oneof![
        4 => any::<u8>().prop_map(VecCommand::PushBack),
        2 => any::<u8>().prop_map(VecCommand::PushFront),
        2 => Just(VecCommand::PopBack),
        1 => Just(VecCommand::PopFront),
        2 => (0u64..8, any::<u8>()).prop_map(|(i, t)| VecCommand::Insert(i, t)),
        2 => (0u64..8).prop_map(VecCommand::Remove),
        1 => (0u64..8, 0u64..8).prop_map(|(a, b)| VecCommand::Swap(a, b)),
        1 => (0u64..8).prop_map(VecCommand::Truncate),
        1 => prop::collection::vec(any::<u8>(), 0..4).prop_map(VecCommand::Extend),
        1 => Just(VecCommand::Clear),
    ]
}

fn cell_command() -> impl Strategy<Value = CellCommand<u8>> {
    prop_oneof![
        3 => (0u8..4).prop_map(CellCommand::Write),
        2 => (prop::option::of(0u8..4), prop::option::of(0u8..4))
            .prop_map(|(expected, new)| CellCommand::CompareExchange { expected, new }),
        1 => Just(CellCommand::Clear),
    ]
}

fn bound() -> impl Strategy<Value = Bound<i8>> {
    prop_oneof![
        (0i8..10).prop_map(Bound::Included),
        (0i8..10).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn queue_command() -> impl Strategy<Value = PriorityQueueCommand<i8, u8, u16>> {
    prop_oneof![
        6 => (0i8..10, small_key(), any::<u16>()).prop_map(|(priority, key, value)| {
            PriorityQueueCommand::Insert(Entry { priority, key, value })
        }),
        2 => (small_key(), 0i8..10).prop_map(|(k, p)| PriorityQueueCommand::UpdatePriority(k, p)),
        2 => (small_key(), any::<u16>()).prop_map(|(k, v)| PriorityQueueCommand::UpdateValue(k, v)),
        1 => (small_key(), 0u16..3, any::<u16>()).prop_map(|(key, expected, new)| {
            PriorityQueueCommand::CompareExchangeValue { key, expected, new }
        }),
        2 => small_key().prop_map(PriorityQueueCommand::Remove),
        1 => (bound(), bound()).prop_map(|(lo, hi)| PriorityQueueCommand::RemoveRange(lo, hi)),
        1 => Just(PriorityQueueCommand::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn map_changes_rebuild_the_map(commands in prop::collection::vec(map_command(), 0..40)) {
        check(MapState::<u8, u16>::default, commands);
    }

    #[test]
    fn set_changes_rebuild_the_set(commands in prop::collection::vec(set_command(), 0..40)) {
        check(SetState::<u8>::default, commands);
    }

    #[test]
    fn vec_changes_rebuild_the_vec(commands in prop::collection::vec(vec_command(), 0..40)) {
        same_as_apply(VecState::<u8>::default, commands.clone());
        check(VecState::<u8>::default, commands);
    }

    #[test]
    fn cell_changes_rebuild_the_cell(commands in prop::collection::vec(cell_command(), 0..20)) {
        check(CellState::<u8>::default, commands);
    }

    #[test]
    fn once_changes_rebuild_the_once(values in prop::collection::vec(any::<u8>(), 0..5)) {
        check(OnceState::<u8>::default, values);
    }

    #[test]
    fn queue_changes_rebuild_the_queue(
        commands in prop::collection::vec(queue_command(), 0..40),
        capacity in prop::option::of(1u64..6),
    ) {
        let initial = || match capacity {
            Some(c) => PriorityQueueState::<i8, u8, u16>::bounded(c),
            None => PriorityQueueState::unbounded(),
        };
        check(initial, commands);
    }
}
