//! A segmented, checksummed, crash-safe append-only log with group commit.
//!
//! ```
//! use statemesh_wal::{Wal, WalOptions};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let wal = Wal::open(dir.path(), WalOptions::new())?;
//! let a = wal.append(b"first".to_vec())?;
//! let b = wal.append(b"second".to_vec())?;
//! a.wait()?; // durable: fdatasync covered it (both, most likely, in one sync)
//! b.wait()?;
//! assert_eq!(wal.get(a.index())?.as_deref(), Some(&b"first"[..]));
//! wal.truncate(b.index())?; // gone for good, even across a crash
//! assert_eq!(wal.last_index(), Some(a.index()));
//! # Ok::<(), statemesh_wal::Error>(())
//! ```
//!
//! # Feature flags
//!
//! * `openraft`: `RaftLog`, openraft 0.9 log storage
//!   (`RaftLogStorage` and `RaftLogReader`, `storage-v2`) for any type
//!   config whose entries are serde types. It passes openraft's own storage
//!   test suite.
//!
//! See `FORMAT.md` in this crate for the files, and the `recovery` module
//! docs for what happens to each kind of damage.

// The one exception is `storage::ReadMap`, which copies records out of a
// memory map: measured 7x faster than `pread` for small reads.
#![deny(unsafe_code)]

mod completion;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod memory;
mod meta;
mod options;
#[cfg(feature = "openraft")]
mod raft;
mod record;
mod recovery;
mod scan;
mod segment;
mod storage;
mod wal;

pub use error::{AppendError, Error, OpenError, ReadError, UpdateError};
pub use memory::{MemoryFile, MemoryStorage};
pub use meta::Meta;
pub use options::{SyncPolicy, WalOptions};
#[cfg(feature = "openraft")]
pub use raft::RaftLog;
pub use recovery::{Cut, Recovery};
pub use storage::{FsStorage, LOCK_FILE, ReadMap, Storage, StorageFile};
pub use wal::{Append, AppendFuture, Iter, UpdateFuture, Wal};
