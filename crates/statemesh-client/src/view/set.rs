//! Reading a local copy of `Set<T>`.

use super::View;
use imbl::OrdSet;
use statemesh_core::collections::Key;
use statemesh_core::collections::SetState;

impl<T: Key> View<SetState<T>> {
    /// Whether this replica holds `value`.
    #[must_use]
    pub fn contains(&self, value: &T) -> bool {
        self.local(|s| s.as_set().contains(value))
    }

    /// How many elements this replica holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.local(|s| s.as_set().len())
    }

    /// Whether this replica holds no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every element of this replica is in `other`.
    #[must_use]
    pub fn is_subset<'a>(&self, other: impl IntoIterator<Item = &'a T>) -> bool
    where
        T: 'a,
    {
        let other: OrdSet<T> = other.into_iter().cloned().collect();
        self.local(|s| s.as_set().is_subset(&other))
    }

    /// This replica's elements at this moment (an O(1) snapshot), in order.
    #[must_use]
    pub fn snapshot(&self) -> OrdSet<T> {
        self.local(|s| s.as_set().clone())
    }

    /// The elements in order, from an O(1) snapshot.
    pub fn iter(&self) -> impl Iterator<Item = T> + use<T> {
        self.snapshot().into_iter()
    }
}
