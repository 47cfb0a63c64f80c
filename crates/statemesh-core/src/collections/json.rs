//! `Json`: any JSON value, as a collection's value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JSON value that can live in a collection: the command line's
/// collections hold these. In compact binary encodings (postcard, which
/// cannot describe a value of unknown shape) it travels as JSON text; in
/// human-readable ones, as itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Json(pub serde_json::Value);

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Json {
    type Err = serde_json::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s).map(Json)
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Self {
        Self(v)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.0.serialize(s)
        } else {
            s.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            serde_json::Value::deserialize(d).map(Json)
        } else {
            let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
            serde_json::from_str(&text)
                .map(Json)
                .map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travels_through_postcard_as_text() {
        let v: Json = r#"{"a":[1,2.5,"x",null,true]}"#.parse().unwrap();
        let bytes = postcard::to_allocvec(&v).unwrap();
        assert_eq!(postcard::from_bytes::<Json>(&bytes).unwrap(), v);
        assert_eq!(serde_json::to_string(&v).unwrap(), v.to_string());
        let bad = postcard::to_allocvec("{not json").unwrap();
        assert!(postcard::from_bytes::<Json>(&bad).is_err());
    }
}
