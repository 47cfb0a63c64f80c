//! What users replicate: a deterministic state machine.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A deterministic state machine that a [`Group`](crate::Group) replicates.
///
/// Every replica applies the same commands in the same order, so `apply`
/// must depend on nothing but the state and the command: no clock, no
/// randomness, no iteration over a hash map's order. It must not panic on
/// any command; an invalid one (an index out of range, say) is answered
/// with an error inside [`StateMachine::Response`].
///
/// Snapshots should be cheap to take: [`StateMachine::snapshot`] runs on
/// the apply path, and the returned value is encoded and written in the
/// background. Persistent data structures (`im`, `rpds`) make it O(1).
pub trait StateMachine: Send + Sync + 'static {
    /// What a writer asks for.
    type Command: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What `apply` answers.
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The state as it is written to a snapshot.
    type Snapshot: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Names the state machine's type and parameters. Part of the group's
    /// id: nodes whose signatures differ can never join the same group.
    /// The default is the Rust type name; override it to add parameters
    /// (a capacity, say) that change how commands are applied.
    fn signature(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }

    /// Applies `command`, committed at log index `version`.
    fn apply(&mut self, command: Self::Command, version: u64) -> Self::Response;

    /// The whole state, cheaply.
    fn snapshot(&self) -> Self::Snapshot;

    /// Replaces the whole state with `snapshot`.
    fn restore(&mut self, snapshot: Self::Snapshot);
}

/// A state machine that answers reads sent over the network, for a
/// [`Client`](crate::Client), which holds no replica. The collections
/// implement it; a custom state machine implements it to be read remotely.
pub trait Queryable: StateMachine {
    /// What a remote reader asks.
    type Query: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What it is told.
    type Answer: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Answers `query` from the state (must not change it).
    fn answer(&self, query: Self::Query) -> Self::Answer;
}
