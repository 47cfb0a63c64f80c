//! What names a stream: its name and the type of its items.

use serde::{Deserialize, Serialize};

/// A stream as the catalog lists it: a name, and the signature of the
/// type its items are (the Rust type's path, as `std::any::type_name`
/// gives it, unless the producer names it).
///
/// Consumers find a stream by name; a consumer of another type than the
/// producer's is refused with [`TypeMismatch`], which names both, instead
/// of decoding one type's bytes as another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    /// What producers and consumers call it.
    pub name: String,
    /// The type of its items.
    pub signature: String,
}

impl StreamId {
    /// The stream `name` of items of type `T`.
    #[must_use]
    pub fn of<T: ?Sized>(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            signature: statemesh_core::type_name::<T>(),
        }
    }

    /// Whether a consumer of `other` may read this stream.
    ///
    /// # Errors
    ///
    /// [`TypeMismatch`] naming both types, if the signatures differ.
    pub fn accepts(&self, other: &StreamId) -> Result<(), TypeMismatch> {
        if self.signature == other.signature {
            Ok(())
        } else {
            Err(TypeMismatch {
                stream: self.name.clone(),
                produced: self.signature.clone(),
                consumed: other.signature.clone(),
            })
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.signature)
    }
}

/// A consumer asked for a stream's items as another type than its
/// producer sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("stream {stream:?} carries {produced}, not {consumed}")]
pub struct TypeMismatch {
    /// The stream's name.
    pub stream: String,
    /// The producer's item type.
    pub produced: String,
    /// The consumer's item type.
    pub consumed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_type_is_refused_naming_both() {
        let produced = StreamId::of::<u64>("prices");
        assert!(produced.accepts(&StreamId::of::<u64>("prices")).is_ok());
        let err = produced
            .accepts(&StreamId::of::<String>("prices"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream \"prices\" carries u64, not alloc::string::String"
        );
    }
}
