//! The collections every `statemesh` node hosts, chosen here rather than in
//! the library: a node embedded in another program hosts what that
//! program registers.

mod json_events;

pub use json_events::JsonEvents;

use statemesh::collections::{
    CellState, Json, MapState, OnceState, PriorityQueueState, SetState, VecState,
};
use statemesh::hooks::Hooked;
use statemesh::{Kinds, StateMachine};

/// What the `statemesh` node hosts: JSON collections of every kind
/// (`Map<String, Json>`, `Cell<Json>`, `Once<Json>`, `Set<String>`,
/// `Vec<Json>`, `PriorityQueue<i64, String, Json>` unbounded),
/// `Map<Vec<u8>, Vec<u8>>` for raw bytes (what `statemesh bench` writes),
/// and maps changed by JSON events ([`JsonEvents`], what `statemesh event`
/// sends).
#[must_use]
pub fn standard() -> Kinds {
    let mut k = Kinds::new();
    k.register(MapState::<String, Json>::default);
    k.register(MapState::<Vec<u8>, Vec<u8>>::default);
    k.register(CellState::<Json>::default);
    k.register(OnceState::<Json>::default);
    k.register(SetState::<String>::default);
    k.register(VecState::<Json>::default);
    k.register(PriorityQueueState::<i64, String, Json>::unbounded);
    // Its init hook is the default one, which cannot fail.
    let _ = k.register_hooks(JsonEvents);
    k
}

/// A collection's kind in words, as the command line names them: the
/// library's wording, except that an event map is called one.
#[must_use]
pub fn describe(signature: &str) -> String {
    match Hooked::new(JsonEvents) {
        Ok(events) if events.signature() == signature => {
            "a map changed by JSON events (string → JSON)".to_owned()
        }
        _ => statemesh::collections::describe(signature),
    }
}
