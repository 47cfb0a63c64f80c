//! The collections' state machines: their states, commands, changes (what
//! a mirror applies), outcomes, remote queries and answers, and each write
//! operation once, over an [`Executor`].

mod cell;
mod executor;
mod json;
mod kind;
mod map;
mod once;
mod priority_queue;
mod set;
mod value;
mod vec;

pub use cell::{CellCommand, CellOutcome, CellQuery, CellState, ops as cell_ops};
pub use executor::{Done, Executor, expect, wrong_shape_message};
pub use json::Json;
pub use kind::describe;
pub use map::{MapAnswer, MapChange, MapCommand, MapOutcome, MapQuery, MapState, ops as map_ops};
pub use once::{OnceQuery, OnceState, ops as once_ops};
pub use priority_queue::{
    Entry, PriorityQueueAnswer, PriorityQueueChange, PriorityQueueCommand, PriorityQueueOutcome,
    PriorityQueueQuery, PriorityQueueSnapshot, PriorityQueueState, ops as priority_queue_ops,
};
pub use set::{SetAnswer, SetChange, SetCommand, SetOutcome, SetQuery, SetState, ops as set_ops};
pub use value::{Key, Value};
pub use vec::{OutOfRange, VecAnswer, VecCommand, VecOutcome, VecQuery, VecState, ops as vec_ops};

#[cfg(test)]
mod tests {
    use super::{Json, MapState};
    use crate::StateMachine;

    /// A signature is part of a collection's group id: the command line's
    /// collections must keep the one that earlier builds wrote.
    #[test]
    fn signatures_keep_the_names_earlier_builds_wrote() {
        assert_eq!(
            MapState::<String, Json>::default().signature(),
            "statemesh::Map<alloc::string::String, statemesh::collections::json::Json>"
        );
    }
}
