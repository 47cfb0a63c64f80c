//! [`Mirror`]: a read-only copy of a collection, held by a process outside
//! its Raft group, kept up to date by changes the nodes push.
//!
//! A mirror subscribes from its version. A node answers with the changes
//! since (from its bounded history of recent versions), or with the whole
//! state if the mirror is older than that history, then pushes each
//! version's changes as it applies them. The mirror acknowledges what it
//! applied; a node keeps only a few pushes unacknowledged and sends a
//! lagging mirror everything since in one merged run, or the whole state
//! once it has fallen out of the history ([`Resync::TooSlow`]). On a lost
//! connection the mirror reconnects with backoff, to any node, and resumes
//! from its version. With a directory it keeps its copy there and resumes
//! from it after a restart.
//!
//! ```no_run
//! # async fn example(client: statemesh_client::Client) -> Result<(), statemesh_client::MirrorError> {
//! use statemesh_client::Mirror;
//! use statemesh_client::collections::MapState;
//!
//! let prices = Mirror::<MapState<String, u64>>::open(&client, "prices").await?;
//! let mut updates = prices.updates();
//! prices.when().reaches(42).await;
//! println!("{:?} at version {}", prices.get(&"apples".to_owned()), prices.version());
//! # let _ = updates.recv().await;
//! # Ok(())
//! # }
//! ```
//!
//! One module per part: the handle ([`Mirror`]), the follower that applies
//! pushes, the subscription it makes again, the copy on disk and its
//! writer; this file only declares them and re-exports the public types.

mod error;
pub(crate) mod file;
mod follower;
mod handle;
mod options;
mod persist;
mod stats;
mod subscribe;
mod update;

pub use error::MirrorError;
pub use file::MirrorFileError;
pub use handle::Mirror;
pub use options::MirrorOptions;
pub use stats::MirrorStats;
pub use update::Update;
