//! Reading a local copy of `Cell<T>`.

use super::View;
use statemesh_core::collections::CellState;
use statemesh_core::collections::Value;

impl<T: Value> View<CellState<T>> {
    /// This replica's value (possibly behind the leader; see
    /// `statemesh::Reader::read_linearizable` and [`Versions::reaches`](crate::Versions::reaches)).
    #[must_use]
    pub fn read(&self) -> Option<T> {
        self.local(|s| s.value().cloned())
    }
}
