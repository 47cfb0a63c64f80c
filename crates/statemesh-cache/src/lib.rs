//! Large objects under a memory budget, spilled to and persisted in a
//! durable on-disk store.
//!
//! A [`Pool`] keeps objects in memory up to a budget in bytes (a weigher
//! says what each one weighs). Past it, a background thread writes cold
//! objects to the store's spill area, once per key, and drops them from
//! memory; a [`Handle`] reads them back on demand. Which objects are cold is
//! decided by S3-FIFO, which keeps objects used once from pushing out those
//! used often. Objects can be persisted under a named [`Location`] that
//! survives restarts, and registered in a pool again later without being
//! loaded. Blobs are immutable: a written object gets a new [`Key`].
//!
//! ```
//! use statemesh_cache::{FsStore, Location, Pool, Raw};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = FsStore::open(dir.path())?;
//! // At most 1 MiB of objects in memory, weighed by their length.
//! let pool = Pool::new(store, Raw, 1 << 20, Vec::len)?;
//! let report = pool.insert(vec![7u8; 300_000])?;
//! for i in 0..10 {
//!     pool.insert(vec![i; 300_000])?; // dropped at once: deleted, never spilled
//! }
//! // Past the budget, inserts spill cold objects to make room: memory
//! // stays within the budget and its slack (an eighth) however fast they come.
//! let kept = (0..10)
//!     .map(|i| pool.insert(vec![i; 300_000]))
//!     .collect::<Result<Vec<_>, _>>()?;
//! assert!(pool.stats().resident_bytes <= pool.stats().limit_bytes);
//! pool.wait_idle(); // let the background thread bring it back to the budget
//! assert!(pool.stats().resident_bytes <= 1 << 20);
//!
//! // Read back from disk if it was evicted.
//! assert_eq!(report.blocking_load()?[0], 7);
//!
//! // Durable under a name; found again after a restart.
//! let reports = Location::new("reports")?;
//! report.blocking_persist(&reports)?;
//! assert_eq!(pool.list(&reports)?.keys, vec![report.key()]);
//! # drop(kept);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The async API (`load().await`, `persist().await`, ...) runs store I/O on
//! tokio's blocking pool when called on a tokio runtime, else on threads of
//! its own; the `blocking_*` API needs no runtime at all. The store and the
//! codec are traits: [`FsStore`] keeps one file per object under sharded
//! directories; [`Raw`] stores bytes as they are and [`Postcard`] any serde
//! type.

// Files and checksums only: nothing here needs unsafe code.
#![forbid(unsafe_code)]

mod background;
mod blob;
mod budget;
mod codec;
mod entry;
mod error;
mod fs_store;
/// Hooks for this crate's fuzz targets (`tests/fuzz.rs`). Not a stable
/// API: hidden from the documentation and free to change in any release.
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod key;
mod policy;
mod pool;
mod run;
mod store;

#[cfg(feature = "serde")]
pub use codec::Postcard;
pub use codec::{Codec, CodecError, Raw};
pub use error::{CacheError, Rejected, StoreError};
pub use fs_store::{FsStore, Startup};
pub use handle::{Handle, ReadGuard, WriteGuard};
pub use key::{Key, ParseKeyError};
pub use pool::{Pool, PoolOptions, PoolStats};
pub use store::{Listing, Location, Place, Store};
