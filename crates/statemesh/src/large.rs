//! [`Large`]: a value that lives in `statemesh-cache` once its encoding
//! passes a size threshold, so a collection of them may be larger than
//! memory.
//!
//! A `Large<T>` holds the postcard encoding of a `T` and its SHA-256. Below
//! the node's threshold ([`LargeValues::threshold`]) the bytes stay in
//! memory; above it they go to the node's cache pool, which keeps at most
//! [`LargeValues::memory_budget`] bytes in memory and spills the rest to
//! disk. Where a `Large` is encoded decides what is written:
//!
//! - on the wire (commands, replies, other nodes): the bytes themselves;
//! - in a group's snapshot file: a reference to a blob persisted in the
//!   group's cache location, so a snapshot does not copy the values again
//!   and a restart registers them without reading them;
//! - in a snapshot sent to another node: an index into the blobs that
//!   precede the state in the same stream.
//!
//! The group's store picks the form by setting a thread-local context
//! around the encoding (serde offers no other way to pass state to an
//! `impl Serialize` nested inside a user's type).

use serde::de::{self, DeserializeOwned};
use serde::ser;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use statemesh_cache::{CacheError, Handle, Key, Location, Pool};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Where a node keeps [`Large`] values that pass the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeValues {
    /// Encodings longer than this many bytes go to the cache (default
    /// 64 KiB); shorter ones stay in memory with the collection.
    pub threshold: usize,
    /// Bytes of cached values kept in memory before the coldest are
    /// spilled to disk (default 256 MiB), shared by all the node's groups.
    pub memory_budget: usize,
}

impl Default for LargeValues {
    fn default() -> Self {
        Self {
            threshold: 64 << 10,
            memory_budget: 256 << 20,
        }
    }
}

/// Why a [`Large`] value could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LargeError {
    /// The value could not be encoded.
    #[error("the value does not encode: {0}")]
    Encode(#[source] postcard::Error),
    /// The bytes do not decode as the type asked for.
    #[error("the stored value does not decode as {type_name}: {source}")]
    Decode {
        /// The type asked for.
        type_name: &'static str,
        /// The decoder's complaint.
        #[source]
        source: postcard::Error,
    },
    /// The cache could not read the value back from disk.
    #[error("reading the value from the cache: {0}")]
    Cache(#[from] CacheError),
}

/// A value whose encoding lives in the node's cache once it passes
/// [`LargeValues::threshold`], for collections of values that together do
/// not fit in memory: `Map<String, Large<Vec<u8>>>`, say.
///
/// Cloning is cheap (a reference count). Two `Large` values are equal when
/// their encodings are (compared by SHA-256, so `apply` never reads a
/// value from disk to compare it); for most types that is the same as the
/// type's own `==`, but not for floats (`-0.0` and `0.0` differ, `NaN`
/// equals itself). Reading decodes a fresh `T`, from memory or from disk.
pub struct Large<T> {
    bytes: Bytes,
    len: u64,
    digest: [u8; 32],
    _type: PhantomData<fn() -> T>,
}

/// Where a value's encoding is.
#[derive(Clone)]
enum Bytes {
    Inline(Arc<[u8]>),
    Cached(Handle<Vec<u8>>),
}

impl<T> Clone for Large<T> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            len: self.len,
            digest: self.digest,
            _type: PhantomData,
        }
    }
}

impl<T> PartialEq for Large<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.digest == other.digest
    }
}

impl<T> Eq for Large<T> {}

impl<T> fmt::Debug for Large<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest: String = self.digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        f.debug_struct("Large")
            .field("len", &self.len)
            .field("sha256", &format_args!("{digest}…"))
            .field("cached", &self.is_cached())
            .finish()
    }
}

impl<T: Serialize> Large<T> {
    /// Encodes `value`. It stays in memory until a group applies it; the
    /// group moves it to the cache if it passes the threshold.
    ///
    /// # Errors
    ///
    /// [`LargeError::Encode`] if postcard cannot encode the type (a
    /// sequence of unknown length, say).
    pub fn new(value: &T) -> Result<Self, LargeError> {
        let bytes = postcard::to_allocvec(value).map_err(LargeError::Encode)?;
        Ok(Self::inline(bytes.into()))
    }
}

impl<T: DeserializeOwned> Large<T> {
    /// Decodes the value, reading it from disk on this thread if the cache
    /// spilled it.
    ///
    /// # Errors
    ///
    /// [`LargeError::Cache`] if it cannot be read back;
    /// [`LargeError::Decode`] if the bytes are not a `T`.
    pub fn blocking_load(&self) -> Result<T, LargeError> {
        match &self.bytes {
            Bytes::Inline(b) => decode(b),
            Bytes::Cached(h) => decode(&h.blocking_load()?),
        }
    }

    /// Decodes the value; a read from disk runs on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`blocking_load`](Large::blocking_load).
    pub async fn load(&self) -> Result<T, LargeError> {
        match &self.bytes {
            Bytes::Inline(b) => decode(b),
            Bytes::Cached(h) => decode(&h.load().await?),
        }
    }
}

impl<T> Large<T> {
    fn inline(bytes: Arc<[u8]>) -> Self {
        Self {
            len: bytes.len() as u64,
            digest: Sha256::digest(&bytes).into(),
            bytes: Bytes::Inline(bytes),
            _type: PhantomData,
        }
    }

    /// The length of the encoding in bytes.
    #[must_use]
    pub fn encoded_len(&self) -> u64 {
        self.len
    }

    /// The SHA-256 of the encoding.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Whether the value is in the node's cache rather than held with the
    /// collection (it passed the threshold when a group applied it).
    #[must_use]
    pub fn is_cached(&self) -> bool {
        matches!(self.bytes, Bytes::Cached(_))
    }

    /// Whether reading it needs no disk: it is held inline, or the cache
    /// has it in memory.
    #[must_use]
    pub fn is_resident(&self) -> bool {
        match &self.bytes {
            Bytes::Inline(_) => true,
            Bytes::Cached(h) => h.is_resident(),
        }
    }

    /// The encoding, from memory or from disk.
    fn encoded(&self) -> Result<Arc<[u8]>, CacheError> {
        match &self.bytes {
            Bytes::Inline(b) => Ok(Arc::clone(b)),
            Bytes::Cached(h) => Ok(h.blocking_load()?.as_slice().into()),
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, LargeError> {
    statemesh_core::decode::from_bytes(bytes).map_err(|source| LargeError::Decode {
        type_name: std::any::type_name::<T>(),
        source,
    })
}

/// The node's cache of large values, and its threshold.
#[derive(Clone)]
pub(crate) struct ValueStore {
    pub(crate) pool: Pool<Vec<u8>>,
    pub(crate) threshold: usize,
}

impl ValueStore {
    /// Moves `bytes` to the cache if they pass the threshold.
    fn place<T>(&self, bytes: Vec<u8>, digest: [u8; 32]) -> Large<T> {
        let len = bytes.len() as u64;
        let bytes = if bytes.len() > self.threshold {
            match self.pool.insert(bytes) {
                Ok(handle) => Bytes::Cached(handle),
                // No room in time (pinned values fill the budget): applying
                // a command cannot fail, so the value stays inline, in
                // memory like any small one.
                Err(rejected) => Bytes::Inline(rejected.value.into()),
            }
        } else {
            Bytes::Inline(bytes.into())
        };
        Large {
            bytes,
            len,
            digest,
            _type: PhantomData,
        }
    }
}

/// A blob of a snapshot stream: the encoding of one cached value.
#[derive(Clone)]
pub(crate) struct Blob {
    bytes: Bytes,
    pub(crate) len: u64,
    pub(crate) digest: [u8; 32],
}

impl Blob {
    /// The blob's bytes, read from disk if the cache spilled them.
    pub(crate) fn read(&self) -> Result<Arc<[u8]>, CacheError> {
        match &self.bytes {
            Bytes::Inline(b) => Ok(Arc::clone(b)),
            Bytes::Cached(h) => Ok(h.blocking_load()?.as_slice().into()),
        }
    }

    /// A blob received from another node, placed like an applied value.
    pub(crate) fn received(
        store: Option<&ValueStore>,
        location: Option<&Location>,
        bytes: Vec<u8>,
        digest: [u8; 32],
    ) -> Result<Self, CacheError> {
        let large: Large<()> = match store {
            Some(s) => s.place(bytes, digest),
            None => Large {
                len: bytes.len() as u64,
                bytes: Bytes::Inline(bytes.into()),
                digest,
                _type: PhantomData,
            },
        };
        // Durable at once: the snapshot written after the install refers
        // to it, and the cache may then drop it from memory without a spill.
        if let (Bytes::Cached(h), Some(location)) = (&large.bytes, location) {
            h.blocking_persist(location)?;
        }
        Ok(Self {
            bytes: large.bytes,
            len: large.len,
            digest: large.digest,
        })
    }
}

/// What the group's store is encoding or decoding, for [`Large`]'s serde.
pub(crate) enum Context {
    /// Applying commands: incoming values pass the threshold or not.
    Apply(Option<ValueStore>),
    /// Writing the group's own snapshot file: cached values are persisted
    /// in `location` and referred to by key.
    WriteLocal {
        location: Location,
        keys: HashSet<u128>,
    },
    /// Reading the group's own snapshot file: keys are registered with the
    /// pool, not read.
    ReadLocal {
        store: Option<ValueStore>,
        location: Location,
        keys: HashSet<u128>,
    },
    /// Writing a snapshot for another node: cached values become blobs
    /// sent ahead of the state.
    WriteTransfer { blobs: Vec<Blob> },
    /// Reading a snapshot from another node, whose blobs came first.
    ReadTransfer {
        store: Option<ValueStore>,
        blobs: Vec<Blob>,
    },
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
    /// Why the last `Large` failed to encode or decode: postcard keeps only
    /// "custom error", not the message.
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// What [`with_context`] leaves behind.
pub(crate) struct Finished<R> {
    /// What the closure returned.
    pub(crate) result: R,
    /// The context as the closure left it (keys and blobs collected).
    pub(crate) context: Context,
    /// Why a `Large` failed, if one did.
    pub(crate) failure: Option<String>,
}

/// Runs `f` with `context` set on this thread.
pub(crate) fn with_context<R>(context: Context, f: impl FnOnce() -> R) -> Finished<R> {
    struct Restore(Option<Context>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CONTEXT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    FAILURE.with(|f| f.borrow_mut().take());
    let previous = Restore(CONTEXT.with(|c| c.borrow_mut().replace(context)));
    let result = f();
    let context = CONTEXT.with(|c| c.borrow_mut().take());
    drop(previous);
    Finished {
        result,
        // `f` cannot take the context away: `Large`'s serde only borrows it.
        context: context.unwrap_or(Context::Apply(None)),
        failure: FAILURE.with(|f| f.borrow_mut().take()),
    }
}

/// Why the last `Large` on this thread failed, if one did since the last
/// call.
pub(crate) fn take_failure() -> Option<String> {
    FAILURE.with(|f| f.borrow_mut().take())
}

/// Records why a `Large` failed, and says it to serde as well.
fn fail<E: fmt::Display, F: FromMessage>(why: E) -> F {
    let why = why.to_string();
    FAILURE.with(|f| *f.borrow_mut() = Some(why.clone()));
    F::from_message(why)
}

/// Serde's two error traits, as one.
trait FromMessage {
    fn from_message(message: String) -> Self;
}

struct SerError<E>(E);
struct DeError<E>(E);

impl<E: ser::Error> FromMessage for SerError<E> {
    fn from_message(message: String) -> Self {
        Self(E::custom(message))
    }
}

impl<E: de::Error> FromMessage for DeError<E> {
    fn from_message(message: String) -> Self {
        Self(E::custom(message))
    }
}

/// How a `Large` is encoded; which variant depends on the [`Context`].
#[derive(Serialize, Deserialize)]
enum Repr<'a> {
    /// The encoding itself.
    Bytes(#[serde(borrow, with = "serde_bytes")] std::borrow::Cow<'a, [u8]>),
    /// A blob persisted in the group's cache location.
    Stored {
        key: u128,
        len: u64,
        digest: [u8; 32],
    },
    /// The `index`th blob ahead of the state in a snapshot stream.
    Blob { index: u64 },
}

impl<T> Serialize for Large<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = CONTEXT.with(|c| match (&mut *c.borrow_mut(), &self.bytes) {
            (Some(Context::WriteLocal { location, keys }), Bytes::Cached(h)) => {
                h.blocking_persist(location)
                    .map_err(|e| fail::<_, SerError<S::Error>>(e).0)?;
                let key = h.key().as_u128();
                keys.insert(key);
                Ok(Some(Repr::Stored {
                    key,
                    len: self.len,
                    digest: self.digest,
                }))
            }
            (Some(Context::WriteTransfer { blobs }), Bytes::Cached(_)) => {
                blobs.push(Blob {
                    bytes: self.bytes.clone(),
                    len: self.len,
                    digest: self.digest,
                });
                Ok(Some(Repr::Blob {
                    index: blobs.len() as u64 - 1,
                }))
            }
            _ => Ok(None),
        })?;
        match repr {
            Some(r) => r.serialize(serializer),
            None => {
                let bytes = self
                    .encoded()
                    .map_err(|e| fail::<_, SerError<S::Error>>(e).0)?;
                Repr::Bytes(std::borrow::Cow::Borrowed(&bytes)).serialize(serializer)
            }
        }
    }
}

impl<'de, T> Deserialize<'de> for Large<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = Repr::deserialize(deserializer)?;
        CONTEXT.with(|c| match (repr, &mut *c.borrow_mut()) {
            (Repr::Bytes(bytes), context) => {
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                let store = match context {
                    Some(Context::Apply(Some(s))) => Some(&*s),
                    Some(Context::ReadLocal { store: Some(s), .. }) => Some(&*s),
                    Some(Context::ReadTransfer { store: Some(s), .. }) => Some(&*s),
                    _ => None,
                };
                Ok(match store {
                    Some(s) => s.place(bytes.into_owned(), digest),
                    None => Large {
                        len: bytes.len() as u64,
                        bytes: Bytes::Inline(bytes.into()),
                        digest,
                        _type: PhantomData,
                    },
                })
            }
            (
                Repr::Stored { key, len, digest },
                Some(Context::ReadLocal {
                    store,
                    location,
                    keys,
                }),
            ) => {
                let store = store.as_ref().ok_or_else(|| {
                    fail::<_, DeError<D::Error>>(
                        "the snapshot refers to cached values, but this node has large values turned off",
                    )
                    .0
                })?;
                let handle = store
                    .pool
                    .blocking_register(location, Key::from_u128(key))
                    .map_err(|e| fail::<_, DeError<D::Error>>(e).0)?;
                keys.insert(key);
                Ok(Large {
                    bytes: Bytes::Cached(handle),
                    len,
                    digest,
                    _type: PhantomData,
                })
            }
            (Repr::Blob { index }, Some(Context::ReadTransfer { blobs, .. })) => {
                let blob = usize::try_from(index)
                    .ok()
                    .and_then(|i| blobs.get(i))
                    .ok_or_else(|| {
                        fail::<_, DeError<D::Error>>(format!(
                            "blob {index} of a snapshot that has {}",
                            blobs.len()
                        ))
                        .0
                    })?;
                Ok(Large {
                    bytes: blob.bytes.clone(),
                    len: blob.len,
                    digest: blob.digest,
                    _type: PhantomData,
                })
            }
            (Repr::Stored { .. }, _) => Err(fail::<_, DeError<D::Error>>(
                "a reference to a stored value outside the group's own snapshot",
            )
            .0),
            (Repr::Blob { .. }, _) => Err(fail::<_, DeError<D::Error>>(
                "a reference to a snapshot blob outside a received snapshot",
            )
            .0),
        })
    }
}

/// What other modules' tests need to build streams by hand.
#[cfg(test)]
pub(crate) mod tests_support {
    /// The encoding of a reference to the `index`th blob of a stream.
    pub(crate) fn blob_ref(index: u64) -> impl serde::Serialize {
        super::Repr::Blob { index }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_have_equal_encodings() {
        let a = Large::new(&vec![1u8, 2, 3]).unwrap();
        let b = Large::new(&vec![1u8, 2, 3]).unwrap();
        let c = Large::new(&vec![1u8, 2, 4]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.blocking_load().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn on_the_wire_it_is_its_bytes() {
        let a = Large::new(&"hello".to_owned()).unwrap();
        let wire = postcard::to_allocvec(&a).unwrap();
        let back: Large<String> = statemesh_core::decode::from_bytes(&wire).unwrap();
        assert_eq!(back, a);
        assert!(!back.is_cached());
        assert_eq!(back.blocking_load().unwrap(), "hello");
    }

    #[test]
    fn references_are_refused_outside_their_context() {
        let stored = postcard::to_allocvec(&Repr::Stored {
            key: 1,
            len: 1,
            digest: [0; 32],
        })
        .unwrap();
        let blob = postcard::to_allocvec(&Repr::Blob { index: 0 }).unwrap();
        for bytes in [stored, blob] {
            let done = with_context(Context::Apply(None), || {
                statemesh_core::decode::from_bytes::<Large<u8>>(&bytes)
            });
            assert!(done.result.is_err());
            let why = done.failure.unwrap();
            assert!(why.contains("reference"), "{why}");
        }
    }

    #[test]
    fn a_wrong_type_is_a_decode_error() {
        let a = Large::new(&300u32).unwrap();
        let as_string = Large::<String>::inline(postcard::to_allocvec(&300u32).unwrap().into());
        assert!(matches!(
            as_string.blocking_load(),
            Err(LargeError::Decode { .. })
        ));
        assert_eq!(a.blocking_load().unwrap(), 300);
    }
}
