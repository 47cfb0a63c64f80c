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
//! See `FORMAT.md` in this crate for the files, and the `recovery` module
//! docs for what happens to each kind of damage.

#![forbid(unsafe_code)]

mod completion;
mod error;
mod meta;
mod record;
mod recovery;
mod segment;
mod storage;
mod wal;

pub use error::{AppendError, Error, OpenError, ReadError, UpdateError};
pub use meta::Meta;
pub use storage::{FsStorage, LOCK_FILE, Storage, StorageFile};
pub use wal::{Append, AppendFuture, Iter, SyncPolicy, Wal, WalOptions};
