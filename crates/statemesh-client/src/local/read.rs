//! The reader side: a typed, wait-free view of a published collection.

use super::publish::Publish;
use super::snapshot::{ArchivedSnapshot, Snapshot};
use super::{LocalError, LocalOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use statemesh_core::collections::{
    CellState, Key, MapState, OnceState, PriorityQueueState, SetState, Value, VecState,
};
use statemesh_shm::ReadGuard;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A reader of a collection published on this host (see
/// [`View::publish_local`](crate::View::publish_local)). Each read pins
/// the latest published version in shared memory and reads it in place:
/// no copy, no lock, no system call, whatever the publisher is doing.
pub struct Local<SM> {
    reader: statemesh_shm::Reader<Snapshot>,
    name: String,
    signature: String,
    /// The region version whose snapshot passed [`ArchivedSnapshot::check`]
    /// and the signature check.
    checked: Option<statemesh_shm::Version>,
    /// Read what a publisher that has gone left behind.
    allow_stale: bool,
    /// When the publisher was last seen alive.
    alive_at: Option<Instant>,
    _state: PhantomData<fn() -> SM>,
}

/// How long a reader trusts that the publisher it saw alive still is: the
/// check asks the kernel, and a read must not.
const ALIVE_FOR: Duration = Duration::from_millis(100);

impl<SM> std::fmt::Debug for Local<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

impl<SM: Publish + Default> Local<SM> {
    /// Opens region `name` in the default directory.
    ///
    /// # Errors
    ///
    /// See [`Local::open_with`].
    pub fn open(name: &str) -> Result<Self, LocalError> {
        Self::open_with(name, &LocalOptions::new(), &SM::default())
    }
}

impl<SM: Publish> Local<SM> {
    /// Opens region `name` for collections of `initial`'s signature (for
    /// state machines with parameters, or without a default).
    ///
    /// # Errors
    ///
    /// [`LocalError::Open`] if the region does not exist or is not one.
    /// A region of another state machine is refused at the first read.
    pub fn open_with(name: &str, options: &LocalOptions, initial: &SM) -> Result<Self, LocalError> {
        let reader = statemesh_shm::Reader::<Snapshot>::with_options(name, options.reader())
            .map_err(|source| LocalError::Open {
                name: name.to_owned(),
                source,
            })?;
        Ok(Self {
            reader,
            name: name.to_owned(),
            signature: initial.signature(),
            checked: None,
            allow_stale: options.allow_stale,
            alive_at: None,
            _state: PhantomData,
        })
    }

    /// Reads the latest published version, in place.
    ///
    /// # Errors
    ///
    /// [`LocalError::Read`] before the first publish or if the region is
    /// damaged; [`LocalError::PublisherGone`] if the process that
    /// published it has stopped or died (unless
    /// [`LocalOptions::allow_stale`]), noticed within 100 ms;
    /// [`LocalError::Dropped`] if the collection was dropped;
    /// [`LocalError::Signature`] if it holds another state machine;
    /// [`LocalError::Corrupt`] if its entries are inconsistent.
    pub fn read(&mut self) -> Result<LocalRead<'_, SM>, LocalError> {
        let alive = self.allow_stale || self.publisher_alive();
        let guard = self.reader.read().map_err(|source| LocalError::Read {
            name: self.name.clone(),
            source,
        })?;
        if guard.dropped {
            return Err(LocalError::Dropped {
                name: self.name.clone(),
            });
        }
        if !alive {
            let published = guard.published_ms.to_native();
            return Err(LocalError::PublisherGone {
                name: self.name.clone(),
                version: guard.version.to_native(),
                age: Duration::from_millis(super::publish::unix_ms().saturating_sub(published)),
            });
        }
        if self.checked != Some(guard.version()) {
            if guard.signature.as_str() != self.signature {
                return Err(LocalError::Signature {
                    name: self.name.clone(),
                    published: guard.signature.as_str().to_owned(),
                    expected: self.signature.clone(),
                });
            }
            guard.check().map_err(|detail| LocalError::Corrupt {
                name: self.name.clone(),
                detail,
            })?;
            self.checked = Some(guard.version());
        }
        Ok(LocalRead {
            guard,
            _state: PhantomData,
        })
    }

    /// The collection version of the latest publish.
    ///
    /// # Errors
    ///
    /// As [`Local::read`].
    pub fn version(&mut self) -> Result<u64, LocalError> {
        Ok(self.read()?.version())
    }

    /// Blocks until a version at least `version` is published, or
    /// `timeout` passes; returns the version published by then. Sleeps in
    /// the kernel between publishes.
    ///
    /// # Errors
    ///
    /// As [`Local::read`], except that nothing published yet is waited
    /// out.
    pub fn wait_for(&mut self, version: u64, timeout: Duration) -> Result<u64, LocalError> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = match self.read() {
                Ok(r) => r.version(),
                Err(LocalError::Read {
                    source: statemesh_shm::ReadError::NothingPublished { .. },
                    ..
                }) => 0,
                Err(e) => return Err(e),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if now >= version || left.is_zero() {
                return Ok(now);
            }
            self.reader
                .wait_for_change(left)
                .map_err(|source| LocalError::Read {
                    name: self.name.clone(),
                    source,
                })?;
        }
    }

    /// Whether a publisher is attached to the region now.
    #[must_use]
    pub fn publisher_attached(&self) -> bool {
        self.reader.writer_attached()
    }

    /// Whether the publisher is alive, asking the kernel at most every
    /// [`ALIVE_FOR`].
    fn publisher_alive(&mut self) -> bool {
        let now = Instant::now();
        if self
            .alive_at
            .is_some_and(|t| now.duration_since(t) < ALIVE_FOR)
        {
            return true;
        }
        let alive = self.reader.writer_attached();
        self.alive_at = alive.then_some(now);
        alive
    }
}

/// One published version, pinned while this lives (keep it short: a
/// publisher needs a free buffer for each version it writes while readers
/// hold older ones).
pub struct LocalRead<'a, SM> {
    guard: ReadGuard<'a, ArchivedSnapshot>,
    _state: PhantomData<fn() -> SM>,
}

impl<SM> std::fmt::Debug for LocalRead<'_, SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRead")
            .field("version", &self.version())
            .field("len", &self.len())
            .finish()
    }
}

/// Encodes a lookup key on the stack when it fits (the common case), so a
/// read allocates nothing.
fn with_encoded<K: Serialize + ?Sized, R>(
    key: &K,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, LocalError> {
    let mut buffer = [0u8; 128];
    match postcard::to_slice(key, &mut buffer) {
        Ok(bytes) => Ok(f(bytes)),
        Err(postcard::Error::SerializeBufferFull) => postcard::to_allocvec(key)
            .map(|bytes| f(&bytes))
            .map_err(|e| LocalError::Encode(format!("encoding the key: {e}"))),
        Err(e) => Err(LocalError::Encode(format!("encoding the key: {e}"))),
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, LocalError> {
    statemesh_core::decode::from_bytes(bytes).map_err(|e| LocalError::Decode(e.to_string()))
}

impl<SM> LocalRead<'_, SM> {
    /// The collection version this is the state at.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.guard.version.to_native()
    }

    /// How many entries the state has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.guard.spans.len()
    }

    /// Whether it has none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded value under encoded key `key`, in shared memory.
    #[must_use]
    pub fn get_encoded(&self, key: &[u8]) -> Option<&[u8]> {
        let i = self.guard.find(key)?;
        self.guard.entry(i).map(|(_, v)| v)
    }

    /// Every entry, encoded, in key-byte order.
    pub fn iter_encoded(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.len()).filter_map(|i| self.guard.entry(i))
    }

    /// The value under `key`, decoded.
    fn lookup<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        key: &K,
    ) -> Result<Option<V>, LocalError> {
        with_encoded(key, |k| self.get_encoded(k).map(decode))?.transpose()
    }

    /// Every entry decoded, in key-byte order.
    fn decoded<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<(K, V), LocalError>> {
        self.iter_encoded()
            .map(|(k, v)| Ok((decode::<K>(k)?, decode::<V>(v)?)))
    }
}

impl<K: Key, V: Value> LocalRead<'_, MapState<K, V>> {
    /// The value under `key`.
    ///
    /// # Errors
    ///
    /// [`LocalError::Encode`] or [`LocalError::Decode`] if the key or the
    /// value does not travel through the encoding.
    pub fn get(&self, key: &K) -> Result<Option<V>, LocalError> {
        self.lookup(key)
    }

    /// Whether `key` has a value.
    ///
    /// # Errors
    ///
    /// [`LocalError::Encode`] if the key does not encode.
    pub fn contains_key(&self, key: &K) -> Result<bool, LocalError> {
        with_encoded(key, |k| self.guard.find(k).is_some())
    }

    /// Every entry, in the order of the keys' encodings (a map's own
    /// order is `K`'s: sort if it matters).
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), LocalError>> {
        self.decoded()
    }
}

impl<T: Key> LocalRead<'_, SetState<T>> {
    /// Whether `value` is in the set.
    ///
    /// # Errors
    ///
    /// [`LocalError::Encode`] if the value does not encode.
    pub fn contains(&self, value: &T) -> Result<bool, LocalError> {
        with_encoded(value, |k| self.guard.find(k).is_some())
    }

    /// Every element, in the order of their encodings.
    pub fn iter(&self) -> impl Iterator<Item = Result<T, LocalError>> {
        self.decoded::<T, ()>().map(|r| r.map(|(t, ())| t))
    }
}

impl<T: Value> LocalRead<'_, VecState<T>> {
    /// Item `index`.
    ///
    /// # Errors
    ///
    /// [`LocalError::Decode`] if the item does not decode.
    pub fn get(&self, index: u64) -> Result<Option<T>, LocalError> {
        self.get_encoded(&index.to_be_bytes())
            .map(decode)
            .transpose()
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<T, LocalError>> {
        self.iter_encoded().map(|(_, v)| decode(v))
    }
}

impl<T: Value> LocalRead<'_, CellState<T>> {
    /// The cell's value.
    ///
    /// # Errors
    ///
    /// [`LocalError::Decode`] if the value does not decode.
    pub fn get(&self) -> Result<Option<T>, LocalError> {
        self.get_encoded(&[]).map(decode).transpose()
    }
}

impl<T: Value> LocalRead<'_, OnceState<T>> {
    /// The value, once set.
    ///
    /// # Errors
    ///
    /// [`LocalError::Decode`] if the value does not decode.
    pub fn get(&self) -> Result<Option<T>, LocalError> {
        self.get_encoded(&[]).map(decode).transpose()
    }
}

impl<P: Key, K: Key, V: Value> LocalRead<'_, PriorityQueueState<P, K, V>> {
    /// The priority and value of the entry under `key`.
    ///
    /// # Errors
    ///
    /// [`LocalError::Encode`] or [`LocalError::Decode`] as for a map.
    pub fn get(&self, key: &K) -> Result<Option<(P, V)>, LocalError> {
        self.lookup(key)
    }

    /// Every entry as (key, priority, value), in the order of the keys'
    /// encodings.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, P, V), LocalError>> {
        self.decoded::<K, (P, V)>()
            .map(|r| r.map(|(k, (p, v))| (k, p, v)))
    }
}

impl<'a, H: statemesh_core::hooks::Hooks> LocalRead<'a, statemesh_core::hooks::Hooked<H>> {
    /// The hooks' state (published in its own layout), to read with its
    /// methods: `get` for a map, and so on.
    #[must_use]
    pub fn hooked(self) -> LocalRead<'a, H::State> {
        LocalRead {
            guard: self.guard,
            _state: PhantomData,
        }
    }
}

impl<SM: Publish> LocalRead<'_, SM> {
    /// The whole state, for a state machine published with the provided
    /// [`Publish::publish`] (one entry holding its snapshot).
    ///
    /// # Errors
    ///
    /// [`LocalError::Decode`] if the region's one entry is not such a
    /// snapshot.
    pub fn whole(&self) -> Result<Option<SM::Snapshot>, LocalError> {
        self.get_encoded(&[]).map(decode).transpose()
    }
}
