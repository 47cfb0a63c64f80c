//! Why a mirror could not be opened, or stopped following.

use super::file::MirrorFileError;
use crate::client::ClientError;

/// Why a mirror could not be opened, or stopped following.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The cluster refused or could not be reached (an identity or type
    /// mismatch, a token that may not read the collection, no node up).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The copy on disk could not be used.
    #[error(transparent)]
    File(#[from] MirrorFileError),
    /// A push could not be applied (a node of another build?).
    #[error("could not apply what a node sent: {0}")]
    Decode(String),
}
