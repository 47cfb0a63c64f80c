//! What a collection may hold.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a replicated value must be: encodable, comparable, shareable.
pub trait Value: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static> Value for T {}

/// What a map key or set element must be: a [`Value`] with a total order
/// (which fixes the iteration order on every replica).
pub trait Key: Value + Ord {}
impl<T: Value + Ord> Key for T {}
