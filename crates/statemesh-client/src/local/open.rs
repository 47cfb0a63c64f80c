//! Opening a published collection by the type of its handle.

use super::error::LocalError;
use super::publish::Publish;
use super::read::Local;
use super::region::LocalOptions;

/// A collection handle type, named to say which state a local reader reads:
/// `open::<Map<K, V>>` reads what a `Map<K, V>` published.
pub trait Collection {
    /// Its state machine.
    type State: Publish;
}

impl<SM: Publish + statemesh_core::Queryable> Collection for crate::Remote<SM> {
    type State = SM;
}

impl<SM: Publish + statemesh_core::Mirrored> Collection for crate::Mirror<SM> {
    type State = SM;
}

/// Opens the collection published as region `name` in the default
/// directory, to read it as `C` (`Map<K, V>`, `Cell<T>`, ...).
///
/// # Errors
///
/// See [`Local::open_with`].
pub fn open<C: Collection>(name: &str) -> Result<Local<C::State>, LocalError>
where
    C::State: Default,
{
    Local::open(name)
}

/// Like [`open`], with options.
///
/// # Errors
///
/// See [`Local::open_with`].
pub fn open_with<C: Collection>(
    name: &str,
    options: &LocalOptions,
) -> Result<Local<C::State>, LocalError>
where
    C::State: Default,
{
    Local::open_with(name, options, &C::State::default())
}
