//! Codecs: how an object becomes the bytes of a blob and back.

use std::sync::Arc;

/// Turns objects into bytes and back. The pool calls it when it spills or
/// persists an object and when it loads one from the store.
pub trait Codec<T>: Send + Sync + 'static {
    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] if the value cannot be encoded.
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a value from the whole of `bytes`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] if the bytes are not an encoding of a `T`.
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// Decodes a value from a blob the caller no longer needs. The pool
    /// loads through this, so a codec that can reuse the buffer (like
    /// [`Raw`]) saves a copy of every loaded object.
    ///
    /// # Errors
    ///
    /// As [`decode`](Codec::decode).
    fn decode_owned(&self, bytes: Vec<u8>) -> Result<T, CodecError> {
        self.decode(&bytes)
    }
}

/// An object that could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("codec: {0}")]
pub struct CodecError(#[source] pub Arc<dyn std::error::Error + Send + Sync>);

impl CodecError {
    /// Wraps any error, or a message.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CodecError(Arc::from(error.into()))
    }
}

/// Objects that are bytes already: stored as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }

    fn decode_owned(&self, bytes: Vec<u8>) -> Result<Vec<u8>, CodecError> {
        Ok(bytes)
    }
}

/// Any serde type, encoded with `postcard` (compact, no schema in the
/// bytes, so a blob must be decoded as the type it was encoded from).
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

#[cfg(feature = "serde")]
impl<T> Codec<T> for Postcard
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let bytes = postcard::to_stdvec(value).map_err(|e| CodecError(Arc::new(e)))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, rest) =
            postcard::take_from_bytes(bytes).map_err(|e| CodecError(Arc::new(e)))?;
        if !rest.is_empty() {
            return Err(CodecError::new(format!(
                "{} bytes after the value",
                rest.len()
            )));
        }
        Ok(value)
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        name: String,
        body: Vec<u32>,
    }

    #[test]
    fn postcard_round_trips_and_refuses_garbage() {
        let doc = Doc {
            name: "a".into(),
            body: vec![1, 2, 3],
        };
        let mut bytes = Vec::new();
        Postcard.encode(&doc, &mut bytes).unwrap();
        let back: Doc = Postcard.decode(&bytes).unwrap();
        assert_eq!(back, doc);
        bytes.push(0);
        assert!(Codec::<Doc>::decode(&Postcard, &bytes).is_err());
        assert!(Codec::<Doc>::decode(&Postcard, &[0xff; 3]).is_err());
    }

    #[test]
    fn raw_is_the_identity() {
        let mut out = Vec::new();
        Raw.encode(&vec![1, 2, 3], &mut out).unwrap();
        assert_eq!(Raw.decode(&out).unwrap(), vec![1, 2, 3]);
    }
}
