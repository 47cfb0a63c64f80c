//! The writer side: how a state machine lays its state out for local
//! readers, and the thread that publishes each version.

use super::snapshot::{Snapshot, Span};
use super::{LocalError, LocalOptions};
use crate::shared::Shared;
use serde::Serialize;
use statemesh_core::StateMachine;
use statemesh_core::hooks::{Hooked, Hooks};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// A state machine whose state can be published to shared memory as keyed
/// entries, for [`Local`](super::Local) readers on the same host.
///
/// The collections lay out one entry per element (a map's entries, a set's
/// elements, a vector's items by index, a queue's entries by key, a cell's
/// one value). The provided method publishes the whole state as one entry
/// under the empty key, which any state machine can use:
/// `impl Publish for MyMachine {}`.
pub trait Publish: StateMachine {
    /// Adds the entries of `state` to `entries`, in any order; each key
    /// must be added once.
    ///
    /// # Errors
    ///
    /// What [`Entries::push`] reports.
    fn publish(state: &Self::Snapshot, entries: &mut Entries) -> Result<(), LocalError> {
        entries.push_encoded_key(&[], state)
    }
}

/// The entries of one published version, as a [`Publish`] implementation
/// adds them: keys and values in the collection's wire encoding (postcard).
///
/// Two equal keys must encode to the same bytes (true of every derived
/// `Serialize`, not of floats' `-0.0` and `0.0`): lookups compare the bytes.
#[derive(Debug, Default)]
pub struct Entries {
    bytes: Vec<u8>,
    spans: Vec<Span>,
}

impl Entries {
    /// Adds the entry `key` → `value`.
    ///
    /// # Errors
    ///
    /// [`LocalError::Encode`] if either does not encode, or if the
    /// snapshot would pass 4 GiB.
    pub fn push<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), LocalError> {
        let start = self.offset()?;
        self.append(key)?;
        self.finish(start, value)
    }

    /// Adds an entry whose key is given as bytes (for keys whose byte
    /// order should be their order, like a vector's big-endian indices).
    ///
    /// # Errors
    ///
    /// As [`Entries::push`].
    pub fn push_encoded_key<V: Serialize + ?Sized>(
        &mut self,
        key: &[u8],
        value: &V,
    ) -> Result<(), LocalError> {
        let start = self.offset()?;
        self.bytes.extend_from_slice(key);
        self.finish(start, value)
    }

    fn finish<V: Serialize + ?Sized>(&mut self, key: u32, value: &V) -> Result<(), LocalError> {
        let middle = self.offset()?;
        self.append(value)?;
        let end = self.offset()?;
        self.spans.push(Span {
            key,
            value: middle,
            end,
        });
        Ok(())
    }

    fn append<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LocalError> {
        let bytes = std::mem::take(&mut self.bytes);
        self.bytes = postcard::to_extend(value, bytes)
            .map_err(|e| LocalError::Encode(format!("encoding an entry: {e}")))?;
        Ok(())
    }

    fn offset(&self) -> Result<u32, LocalError> {
        u32::try_from(self.bytes.len())
            .map_err(|_| LocalError::Encode("a published snapshot is limited to 4 GiB".into()))
    }

    /// Sorts the entries by key and checks no key came twice.
    fn into_snapshot(mut self, version: u64, signature: String) -> Result<Snapshot, LocalError> {
        let bytes = &self.bytes;
        let key = |s: &Span| &bytes[s.key as usize..s.value as usize];
        self.spans.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        if let Some(w) = self.spans.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
            return Err(LocalError::Encode(format!(
                "key {:?} was published twice",
                key(&w[0])
            )));
        }
        Ok(Snapshot {
            version,
            signature,
            bytes: self.bytes,
            spans: self.spans,
            published_ms: unix_ms(),
            dropped: false,
        })
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Lays out `state` at `version` as a snapshot.
pub(super) fn snapshot_of<SM: Publish>(
    state: &SM::Snapshot,
    version: u64,
    signature: String,
) -> Result<Snapshot, LocalError> {
    let mut entries = Entries::default();
    SM::publish(state, &mut entries)?;
    entries.into_snapshot(version, signature)
}

/// A region this process holds as its only writer, before anything is
/// published to it: a node reserves the regions it will publish when it
/// starts, so a second publisher is refused then rather than when its
/// collection first appears.
pub struct RegionWriter {
    name: String,
    writer: statemesh_shm::Writer<Snapshot>,
}

/// Takes the writer's lock on region `name`.
///
/// # Errors
///
/// [`LocalError::Open`] if the region cannot be made, or another process
/// (or another publication in this one) already writes it.
pub fn reserve(name: &str, options: &LocalOptions) -> Result<RegionWriter, LocalError> {
    let writer = statemesh_shm::Writer::<Snapshot>::with_options(name, options.writer()).map_err(
        |source| LocalError::Open {
            name: name.to_owned(),
            source,
        },
    )?;
    Ok(RegionWriter {
        name: name.to_owned(),
        writer,
    })
}

/// A collection being published to shared memory. Each applied version is
/// published after it; while one is being written, newer ones coalesce into
/// the next write, so the publisher never falls behind. Dropping it stops
/// publishing (readers keep the last version, and see no writer attached).
pub struct Publication {
    name: String,
    state: Arc<PublisherState>,
    thread: Option<JoinHandle<()>>,
}

struct PublisherState {
    stop: AtomicBool,
    /// Stop after publishing that the collection was dropped.
    dropped: AtomicBool,
    published: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication")
            .field("name", &self.name)
            .field("published", &self.published())
            .finish_non_exhaustive()
    }
}

impl Publication {
    /// The region's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The collection version last published (0: none yet).
    #[must_use]
    pub fn published(&self) -> u64 {
        self.state.published.load(Ordering::Acquire)
    }

    /// The last publish that failed, if the one after it has not succeeded
    /// yet (a full `/dev/shm`, readers holding every buffer). Failed
    /// publishes are retried at the next version, and every 100 ms.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.state
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn start<SM: Publish>(
        shared: Arc<Shared<SM>>,
        name: &str,
        options: &LocalOptions,
    ) -> Result<Self, LocalError> {
        Self::start_with(shared, reserve(name, options)?)
    }

    /// Starts publishing into a region already reserved.
    pub fn start_with<SM: Publish>(
        shared: Arc<Shared<SM>>,
        region: RegionWriter,
    ) -> Result<Self, LocalError> {
        let RegionWriter { name, writer } = region;
        let name = name.as_str();
        let signature = shared
            .sm
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signature();
        let state = Arc::new(PublisherState {
            stop: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            published: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let thread = std::thread::Builder::new()
            .name(format!("publish {name}"))
            .spawn({
                let state = Arc::clone(&state);
                let name = name.to_owned();
                move || publish_loop(&shared, writer, &signature, &name, &state)
            })
            .map_err(|e| LocalError::Encode(format!("starting the publisher thread: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            state,
            thread: Some(thread),
        })
    }
}

impl Publication {
    /// Stops publishing and leaves the region saying that the collection
    /// was dropped: its readers get [`LocalError::Dropped`].
    pub fn close_dropped(self) {
        self.state.dropped.store(true, Ordering::Release);
        // Dropping stops the thread, which publishes the marker first.
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Wakes the publisher thread from `park`.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// How long a failed publish waits before it is tried again without a new
/// version.
const RETRY: Duration = Duration::from_millis(100);

fn publish_loop<SM: Publish>(
    shared: &Shared<SM>,
    mut writer: statemesh_shm::Writer<Snapshot>,
    signature: &str,
    name: &str,
    state: &PublisherState,
) {
    // The version channel is tokio's, but waiting on it needs no runtime:
    // its future is polled here and wakes this thread through `unpark`.
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut versions = shared.version.subscribe();
    let mut published = None;
    let mut failing = false;
    loop {
        // Marked seen before the state is read: a version applied from
        // here on wakes the wait below.
        versions.borrow_and_update();
        // The version is published under the state's lock, so the two
        // agree; the O(1) snapshot is laid out after the lock is released.
        let (snapshot, version) = {
            let sm = shared.sm.read().unwrap_or_else(|e| e.into_inner());
            (sm.snapshot(), shared.version.get())
        };
        if published != Some(version) {
            let written =
                snapshot_of::<SM>(&snapshot, version, signature.to_owned()).and_then(|s| {
                    writer.write(&s).map_err(|source| LocalError::Publish {
                        name: name.to_owned(),
                        source,
                    })
                });
            drop(snapshot);
            match written {
                Ok(_) => {
                    published = Some(version);
                    state.published.store(version, Ordering::Release);
                    if std::mem::take(&mut failing) {
                        *state.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        tracing::info!(region = name, version, "publishing again");
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(region = name, version, "publishing: {e}");
                    }
                    *state.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(e.to_string());
                }
            }
        }
        let mut changed = std::pin::pin!(versions.changed());
        loop {
            if state.stop.load(Ordering::Acquire) {
                if state.dropped.load(Ordering::Acquire) {
                    publish_dropped(&mut writer, signature, name, published.unwrap_or(0));
                }
                return;
            }
            match changed.as_mut().poll(&mut cx) {
                // The sender lives in `shared`, which this thread holds.
                Poll::Ready(_) => break,
                Poll::Pending if failing => {
                    std::thread::park_timeout(RETRY);
                    break;
                }
                Poll::Pending => std::thread::park(),
            }
        }
    }
}

/// Writes the region's last snapshot: empty, marked dropped.
fn publish_dropped(
    writer: &mut statemesh_shm::Writer<Snapshot>,
    signature: &str,
    name: &str,
    version: u64,
) {
    let marker = Snapshot {
        version,
        signature: signature.to_owned(),
        bytes: Vec::new(),
        spans: Vec::new(),
        published_ms: unix_ms(),
        dropped: true,
    };
    if let Err(e) = writer.write(&marker) {
        tracing::warn!(region = name, "cannot mark the region dropped: {e}");
    }
}
/// Published as the hooks' state is: a local reader reads it through
/// [`LocalRead::hooked`](crate::local::LocalRead::hooked).
impl<H: Hooks> crate::local::Publish for Hooked<H>
where
    H::State: crate::local::Publish,
{
    fn publish(
        state: &Self::Snapshot,
        entries: &mut crate::local::Entries,
    ) -> Result<(), crate::local::LocalError> {
        <H::State as crate::local::Publish>::publish(state, entries)
    }
}

/// `state` at `version`, laid out and archived as a publisher writes it to
/// its region. For the fuzz target of local reads.
pub(crate) fn archived<SM: Publish>(
    state: &SM::Snapshot,
    version: u64,
    signature: &str,
) -> Result<Vec<u8>, LocalError> {
    let snapshot = snapshot_of::<SM>(state, version, signature.to_owned())?;
    rkyv::to_bytes::<rkyv::rancor::Error>(&snapshot)
        .map(|bytes| bytes.to_vec())
        .map_err(|e| LocalError::Encode(e.to_string()))
}
