//! The state of a local copy, shared between the handles that read it and
//! whatever applies its changes.

use crate::version::VersionSender;
use std::sync::RwLock;

/// What a copy's handles share with whatever applies its changes (a
/// node's group store, or a mirror's follower): the state and its version.
pub struct Shared<SM> {
    /// The state, written by whoever applies changes.
    pub sm: RwLock<SM>,
    /// The index of the last applied entry: the state's version.
    pub version: VersionSender,
}
