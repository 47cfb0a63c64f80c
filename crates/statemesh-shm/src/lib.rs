//! One writer publishes typed snapshots to shared memory; any number of
//! reader processes on the same host read the latest one in place, without
//! copying and without ever waiting.
//!
//! ```
//! use statemesh_shm::{Reader, ReaderOptions, Writer, WriterOptions};
//!
//! #[derive(rkyv::Archive, rkyv::Serialize)]
//! struct Prices {
//!     tick: u64,
//!     bids: Vec<u32>,
//! }
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let (w_opts, r_opts) = (WriterOptions::new().dir(dir.path()), ReaderOptions::new().dir(dir.path()));
//! // In the writer process:
//! let mut writer = Writer::<Prices>::with_options("prices", w_opts)?;
//! writer.write(&Prices { tick: 1, bids: vec![100, 99] })?;
//!
//! // In any reader process:
//! let mut reader = Reader::<Prices>::with_options("prices", r_opts)?;
//! let prices = reader.read()?; // &ArchivedPrices in shared memory
//! assert_eq!(prices.tick, 1);
//! assert_eq!(prices.bids[0], 100);
//! assert!(prices.is_changed());
//! # Ok::<(), statemesh_shm::Error>(())
//! ```
//!
//! See the crate's `FORMAT.md` for the byte layout of a region.
//!
//! # The protocol
//!
//! A region has one `current` word (the packed version last published, see
//! [`Version`]), up to `max_buffers` buffers, and one slot per reader with a
//! *pin* word. A reader reads only a version its pin protects; the writer
//! writes only into a buffer that no pin protects and that does not hold
//! `current`. All operations on these words are sequentially consistent
//! unless noted, so "before" below is the single total order of SeqCst.
//!
//! **Reader** (wait-free: a bounded number of steps whatever the writer does):
//!
//! 1. *Fast path.* If `current` still equals the version `v` this reader
//!    released last, compare-exchange its pin from `Idle(v)` to `Active(v)`.
//!    On success, read `v`.
//! 2. Otherwise swap `REQUEST` into the pin, load `current` as `c`, and
//!    compare-exchange the pin from `REQUEST` to `Active(c)`. On success,
//!    read `c`. On failure the writer has replaced `REQUEST` by `Active(w)`
//!    for the version `w` it was protecting: read `w`.
//! 3. When the guard drops, store `Idle(version)` into the pin (release).
//!
//! **Writer**, for each publish:
//!
//! 1. For every slot in use, load the pin. `Active(w)` protects `w`'s
//!    buffer. `REQUEST` is resolved by compare-exchanging it to
//!    `Active(current)`, which then protects `current`'s buffer (already
//!    excluded). `Idle(w)` with `w ≠ current` is revoked by compare-exchanging
//!    it to empty. Any failed exchange re-examines the new value.
//! 2. Choose a buffer that is neither protected nor `current`'s; create one if
//!    none is free and fewer than `max_buffers` exist; otherwise reclaim the
//!    slots of dead processes, and wait (bounded by `busy_timeout`, then
//!    [`WriteError::ReadersBusy`]) for live readers. It never overwrites.
//! 3. Copy the bytes, fill the buffer's descriptor, store `current`.
//!
//! **Why a reader never sees a torn or overwritten snapshot.** Take a reader
//! that reads version `x` in buffer `b`, and any write into `b` that starts
//! while the reader could still be reading. That write chose `b` after its
//! scan of the reader's slot (step W1). Cases:
//!
//! * The reader took the fast path: its exchange from `Idle(x)` succeeded, so
//!   no revocation of `Idle(x)` happened before it. A writer that chooses `b`
//!   (not current, since `current` moved on from `x` or `b` would be excluded)
//!   first revokes `Idle(x)`; if the revocation came after the reader's
//!   exchange, it failed and saw `Active(x)`: `b` is protected. Since the
//!   reader's first acquisition of `x` the pin has never been empty, so no
//!   write into `b` can have slipped in between.
//! * The reader's exchange `REQUEST → Active(c)` succeeded: if the writer's
//!   scan loaded the pin after that, it saw `Active(c)`. If before the swap
//!   of `REQUEST`, then the scan, and so the choice of `b`, preceded the
//!   reader's load of `current`; at choice time `b` was not current's buffer,
//!   and the only later store to `current` is this write's own publish, after
//!   its bytes are complete. So `c` is either the version current at the scan
//!   (not in `b`) or this write's complete version. If the scan loaded the pin
//!   between the swap and the exchange it saw `REQUEST` and resolved it, and
//!   the reader's exchange would have failed.
//! * The reader's exchange failed: it reads `w`, which the writer stored into
//!   the pin before choosing its buffer and which therefore excludes `w`'s
//!   buffer from this and every later choice until the reader releases.
//!
//! The descriptor of a buffer is written before `current` is stored (release)
//! and read after `current` or the pin is loaded (acquire), so a reader sees
//! the length and checksum of the version it pinned. The guard's release
//! store orders all reads of the buffer before the writer's acquiring load of
//! the pin and so before any later write into it. The protocol module runs,
//! unchanged, under the `loom` model checker with buffers as checked cells.
//!
//! **Crashed readers.** Each slot records its owner as pid and process start
//! time. When every buffer is pinned the writer checks the owners of the
//! pinning slots: a process that is gone, a zombie, or whose pid now belongs
//! to a process with another start time is dead, and its slot is cleared at
//! once. A live reader is never overwritten: the writer waits, then fails.
//!
//! **Change notification.** After storing `current` the writer stores the
//! low 32 bits of the version into a notify word and, only if the waiter count
//! is non-zero, wakes a shared futex on it. A waiter raises the count, then
//! re-checks `current`, then sleeps on the notify value it saw first: either
//! the writer sees the count, or the waiter sees the new version.
//!
//! # Feature flags
//!
//! * `async`: `Reader::changed()`, a runtime-agnostic future that resolves
//!   when a newer version is published. No async runtime is pulled in.
//!
//! # Not covered
//!
//! Another process that writes to the region's files outside this crate can
//! change bytes under a reader; validation guards against writer bugs and
//! version skew, not against a hostile process with write access to the
//! files. Deleting a region's files while processes use it is not
//! supported: they keep the files they opened, so reopen.

#[cfg(feature = "async")]
mod changed;
mod error;
/// Hooks for this crate's fuzz targets (`tests/fuzz.rs`). Not a stable
/// API: hidden from the documentation and free to change in any release.
#[doc(hidden)]
pub mod fuzzing;
mod layout;
mod liveness;
mod notify;
mod protocol;
mod reader;
mod region;
mod slot;
mod version;
mod writer;

#[cfg(feature = "async")]
pub use changed::Changed;
pub use error::{Error, OpenError, ReadError, WriteError};
pub use reader::{ReadGuard, Reader, ReaderOptions};
pub use region::{SnapshotWriter, default_dir};
pub use version::Version;
pub use writer::{Published, Writer, WriterOptions};

/// rkyv, as this crate uses it: derive `rkyv::Archive` and `rkyv::Serialize`
/// on the snapshot type with this version.
pub use rkyv;
