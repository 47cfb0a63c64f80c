//! How each kind of collection the command line follows prints as JSON
//! lines, so following stays generic over the kind.

use super::json::show;
use statemesh::collections::{CellState, MapChange, MapState};
use statemesh::hooks::Hooked;
use statemesh::{Json, Mirrored};
use statemesh_cli::kinds::JsonEvents;

/// How a collection the command line follows prints: the body of each JSON
/// line (without braces and version).
pub(super) trait Printed: Mirrored {
    /// The whole state.
    fn lines(&self) -> Vec<String>;
    /// One change.
    fn change_line(change: &Self::Change) -> String;
}

fn key(k: &str) -> String {
    serde_json::Value::String(k.to_owned()).to_string()
}

impl Printed for MapState<String, Json> {
    fn lines(&self) -> Vec<String> {
        self.as_map()
            .iter()
            .map(|(k, v)| format!(r#""key":{},"value":{v}"#, key(k)))
            .collect()
    }

    fn change_line(change: &MapChange<String, Json>) -> String {
        match change {
            MapChange::Put(k, v) => format!(r#""key":{},"value":{v}"#, key(k)),
            MapChange::Remove(k) => format!(r#""key":{},"removed":true"#, key(k)),
            MapChange::Clear => r#""cleared":true"#.to_owned(),
        }
    }
}

impl Printed for CellState<Json> {
    fn lines(&self) -> Vec<String> {
        vec![format!(r#""value":{}"#, show(self.value()))]
    }

    fn change_line(change: &Option<Json>) -> String {
        format!(r#""value":{}"#, show(change.as_ref()))
    }
}

impl Printed for Hooked<JsonEvents> {
    fn lines(&self) -> Vec<String> {
        self.state().lines()
    }

    fn change_line(change: &MapChange<String, Json>) -> String {
        MapState::<String, Json>::change_line(change)
    }
}
