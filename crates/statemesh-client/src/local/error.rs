//! What can go wrong publishing or reading a local collection.

/// Publishing or reading a local collection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The region could not be opened (or, for a publisher, created).
    #[error("region {name:?}: {source}")]
    Open {
        /// The region's name.
        name: String,
        /// Why.
        #[source]
        source: statemesh_shm::OpenError,
    },
    /// Nothing is published yet, or the region is damaged.
    #[error("region {name:?}: {source}")]
    Read {
        /// The region's name.
        name: String,
        /// Why.
        #[source]
        source: statemesh_shm::ReadError,
    },
    /// Writing a version to the region failed.
    #[error("region {name:?}: {source}")]
    Publish {
        /// The region's name.
        name: String,
        /// Why.
        #[source]
        source: statemesh_shm::WriteError,
    },
    /// The region holds another kind of collection.
    #[error("region {name:?} holds {published}, not {expected}")]
    Signature {
        /// The region's name.
        name: String,
        /// The signature of what it holds.
        published: String,
        /// The reader's.
        expected: String,
    },
    /// The region's entries are inconsistent (written by something other
    /// than a publisher of this build).
    #[error("region {name:?} is corrupt: {detail}")]
    Corrupt {
        /// The region's name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The process that published the region has stopped or died: what
    /// it holds may be stale.
    #[error(
        "region {name:?}: its publisher has stopped; the last version ({version}) was published {:.1} s ago",
        age.as_secs_f64()
    )]
    PublisherGone {
        /// The region's name.
        name: String,
        /// The version it holds.
        version: u64,
        /// How long ago that version was published.
        age: std::time::Duration,
    },
    /// The collection was dropped from its cluster.
    #[error("region {name:?}: the collection was dropped")]
    Dropped {
        /// The region's name.
        name: String,
    },
    /// A key or value does not encode.
    #[error("{0}")]
    Encode(String),
    /// A published value does not decode as the reader's type.
    #[error("a published value does not decode: {0}")]
    Decode(String),
}
