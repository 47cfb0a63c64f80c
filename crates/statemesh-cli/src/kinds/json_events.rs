//! The hooks of the command line's event collections: a map of JSON values
//! changed by JSON events.
//!
//! The hooks' name, `statemesh.json-events/1`, is part of every event
//! map's signature: changing it would orphan the groups already created.

use serde_json::Value;
use statemesh::collections::{Json, MapCommand, MapOutcome, MapState};
use statemesh::hooks::{Edit, HookError, Hooks};

/// Hooks over a `Map<String, Json>` whose events are JSON objects, what
/// `statemesh event NAME JSON` sends (every `statemesh` node hosts them):
///
/// * `{"op":"put","key":K,"value":V}` stores V at K; answers the previous
///   value (or `null`);
/// * `{"op":"remove","key":K}` removes K; answers the previous value;
/// * `{"op":"add","key":K,"by":N}` adds the integer N to the integer at K
///   (absent: 0); answers the sum;
/// * `{"op":"move","from":A,"to":B,"amount":N}` moves N from the integer
///   at A to the one at B, refused if A holds less; answers what A has left.
///
/// Anything else is refused with a message saying why, and changes
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonEvents;

fn field<'a>(event: &'a Value, name: &str) -> Result<&'a Value, HookError> {
    event
        .get(name)
        .ok_or_else(|| HookError::new(format!("the event has no {name:?}")))
}

fn text<'a>(event: &'a Value, name: &str) -> Result<&'a str, HookError> {
    field(event, name)?
        .as_str()
        .ok_or_else(|| HookError::new(format!("{name:?} must be a string")))
}

fn integer(event: &Value, name: &str) -> Result<i64, HookError> {
    field(event, name)?
        .as_i64()
        .ok_or_else(|| HookError::new(format!("{name:?} must be an integer")))
}

/// The integer at `key` (absent: 0).
fn held(state: &Edit<'_, MapState<String, Json>>, key: &str) -> Result<i64, HookError> {
    match state.get().as_map().get(key) {
        None => Ok(0),
        Some(Json(v)) => v
            .as_i64()
            .ok_or_else(|| HookError::new(format!("{key:?} holds {v}, not an integer"))),
    }
}

fn previous(outcome: MapOutcome<String, Json>) -> Json {
    match outcome {
        MapOutcome::Previous(Some(v)) => v,
        _ => Json(Value::Null),
    }
}

impl Hooks for JsonEvents {
    type State = MapState<String, Json>;
    type Event = Json;
    type Output = Json;

    fn name(&self) -> String {
        "statemesh.json-events/1".into()
    }

    fn on_event(
        &self,
        state: &mut Edit<'_, Self::State>,
        Json(event): Json,
    ) -> Result<Json, HookError> {
        match text(&event, "op")? {
            "put" => {
                let key = text(&event, "key")?.to_owned();
                let value = Json(field(&event, "value")?.clone());
                Ok(previous(state.apply(MapCommand::Insert(key, value))))
            }
            "remove" => {
                let key = text(&event, "key")?.to_owned();
                Ok(previous(state.apply(MapCommand::Remove(key))))
            }
            "add" => {
                let key = text(&event, "key")?;
                let sum = held(state, key)?
                    .checked_add(integer(&event, "by")?)
                    .ok_or_else(|| HookError::new("the sum overflows"))?;
                state.apply(MapCommand::Insert(key.to_owned(), Json(sum.into())));
                Ok(Json(sum.into()))
            }
            "move" => {
                let (from, to) = (text(&event, "from")?, text(&event, "to")?);
                let amount = integer(&event, "amount")?;
                if amount < 0 {
                    return Err(HookError::new("the amount must not be negative"));
                }
                let left = held(state, from)? - amount;
                if left < 0 {
                    return Err(HookError::new(format!(
                        "{from:?} holds {}, less than {amount}",
                        left + amount
                    )));
                }
                let arrived = held(state, to)?
                    .checked_add(amount)
                    .ok_or_else(|| HookError::new("the sum overflows"))?;
                state.apply(MapCommand::Insert(from.to_owned(), Json(left.into())));
                state.apply(MapCommand::Insert(to.to_owned(), Json(arrived.into())));
                Ok(Json(left.into()))
            }
            other => Err(HookError::new(format!(
                "unknown op {other:?} (put, remove, add or move)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statemesh::StateMachine;
    use statemesh::hooks::{Event, Hooked};

    fn send(h: &mut Hooked<JsonEvents>, event: &str, version: u64) -> Result<Json, HookError> {
        h.apply(Event(event.parse().unwrap()), version)
    }

    #[test]
    fn events_change_the_map_and_refusals_change_nothing() {
        let mut h = Hooked::new(JsonEvents).unwrap();
        let put = send(&mut h, r#"{"op":"put","key":"a","value":{"x":1}}"#, 1);
        assert_eq!(put.unwrap(), Json(Value::Null));
        assert_eq!(
            send(&mut h, r#"{"op":"add","key":"n","by":5}"#, 2).unwrap(),
            Json(5.into())
        );
        assert_eq!(
            send(&mut h, r#"{"op":"move","from":"n","to":"m","amount":2}"#, 3).unwrap(),
            Json(3.into())
        );
        let before = h.snapshot();
        for bad in [
            r#"{"op":"move","from":"n","to":"m","amount":4}"#,
            r#"{"op":"add","key":"a","by":1}"#,
            r#"{"op":"add","key":"n","by":"one"}"#,
            r#"{"op":"fly"}"#,
            r#"{"key":"a"}"#,
            r#"[1,2]"#,
        ] {
            assert!(send(&mut h, bad, 4).is_err(), "{bad}");
        }
        assert_eq!(h.snapshot(), before);
        assert_eq!(
            send(&mut h, r#"{"op":"remove","key":"a"}"#, 5).unwrap(),
            Json(serde_json::json!({"x":1}))
        );
    }
}
