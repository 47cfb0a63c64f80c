//! Reading a local copy of `Vec<T>`.

use super::View;
use imbl::Vector;
use statemesh_core::collections::Value;
use statemesh_core::collections::VecState;

impl<T: Value> View<VecState<T>> {
    /// This replica's element at `index`.
    #[must_use]
    pub fn get(&self, index: u64) -> Option<T> {
        let i = usize::try_from(index).ok()?;
        self.local(|s| s.as_vector().get(i).cloned())
    }

    /// This replica's length.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.local(|s| s.as_vector().len() as u64)
    }

    /// Whether this replica holds no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first element.
    #[must_use]
    pub fn front(&self) -> Option<T> {
        self.local(|s| s.as_vector().front().cloned())
    }

    /// The last element.
    #[must_use]
    pub fn back(&self) -> Option<T> {
        self.local(|s| s.as_vector().back().cloned())
    }

    /// Whether some element equals `value`.
    #[must_use]
    pub fn contains(&self, value: &T) -> bool {
        self.local(|s| s.as_vector().contains(value))
    }

    /// The index of the first element equal to `value`.
    #[must_use]
    pub fn index_of(&self, value: &T) -> Option<u64> {
        self.local(|s| s.as_vector().index_of(value).map(|i| i as u64))
    }

    /// This replica's elements at this moment (an O(1) snapshot).
    #[must_use]
    pub fn snapshot(&self) -> Vector<T> {
        self.local(|s| s.as_vector().clone())
    }

    /// The elements in order, from an O(1) snapshot.
    pub fn iter(&self) -> impl Iterator<Item = T> + use<T> {
        self.snapshot().into_iter()
    }
}
