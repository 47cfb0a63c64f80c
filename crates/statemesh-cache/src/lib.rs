//! Large objects under a memory budget, spilled to and persisted in a
//! durable on-disk store.
//!
//! This release holds the storage half of the crate: keys, codecs and the
//! blob store. The pool of handles that keeps objects in memory under a
//! byte budget is built on it.
//!
//! ```
//! use statemesh_cache::{FsStore, Key, Location, Place, Store};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = FsStore::open(dir.path())?;
//! let docs = Location::new("docs")?;
//! let key = Key::random();
//! store.write(Place::Persisted(&docs), key, b"a large value")?; // durable on return
//! assert_eq!(store.read(Place::Persisted(&docs), key)?, b"a large value");
//! assert_eq!(store.list(&docs)?.keys, vec![key]);
//! # Ok::<(), statemesh_cache::StoreError>(())
//! ```

// Files and checksums only: nothing here needs unsafe code.
#![forbid(unsafe_code)]

mod blob;
mod codec;
mod error;
mod fs_store;
mod key;
mod store;

#[cfg(feature = "serde")]
pub use codec::Postcard;
pub use codec::{Codec, CodecError, Raw};
pub use error::StoreError;
pub use fs_store::{FsStore, Startup};
pub use key::{Key, ParseKeyError};
pub use store::{Listing, Location, Place, Store};
