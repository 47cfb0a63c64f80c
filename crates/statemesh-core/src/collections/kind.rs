//! A collection's kind in words, from its state machine's signature: what
//! error messages say instead of Rust type paths.

/// `statemesh::Map<alloc::string::String, statemesh::collections::json::Json>`
/// reads "a map (string → JSON)"; a collection changed by hooks reads as
/// its state and the hooks' name; a kind without a plain name reads as its
/// signature without module paths (`a Set<u64>`).
#[must_use]
pub fn describe(signature: &str) -> String {
    let short = without_paths(signature);
    match short.as_str() {
        "Map<String, Json>" => "a map (string → JSON)".to_owned(),
        "Map<Vec<u8>, Vec<u8>>" => "a map (bytes → bytes)".to_owned(),
        "Cell<Json>" => "a cell (JSON)".to_owned(),
        s => match hooked(signature) {
            Some((state, hooks)) => format!("{} changed by the hooks {hooks:?}", describe(state)),
            None => format!("a {s}"),
        },
    }
}

/// `statemesh::Hooked<STATE>(NAME)` as its state's signature and the hooks'
/// name.
fn hooked(signature: &str) -> Option<(&str, &str)> {
    let rest = signature.strip_prefix("statemesh::Hooked<")?;
    let (state, name) = rest.rsplit_once(">(")?;
    Some((state, name.strip_suffix(')')?))
}

/// `a::b::C<d::E>` as `C<E>`.
fn without_paths(signature: &str) -> String {
    let mut out = String::with_capacity(signature.len());
    let mut word = String::new();
    for ch in signature.chars().chain(std::iter::once('\0')) {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            word.push(ch);
            continue;
        }
        out.push_str(word.rsplit("::").next().unwrap_or(""));
        word.clear();
        if ch != '\0' {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::describe;
    use crate::StateMachine;
    use crate::collections::{CellState, Json, MapState, SetState};

    #[test]
    fn kinds_read_as_words() {
        let map = MapState::<String, Json>::default().signature();
        assert_eq!(describe(&map), "a map (string → JSON)");
        let cell = CellState::<Json>::default().signature();
        assert_eq!(describe(&cell), "a cell (JSON)");
        let events = format!("statemesh::Hooked<{map}>(bank/1)");
        assert_eq!(
            describe(&events),
            "a map (string → JSON) changed by the hooks \"bank/1\""
        );
        let set = SetState::<u64>::default().signature();
        assert_eq!(describe(&set), "a Set<u64>");
    }
}
