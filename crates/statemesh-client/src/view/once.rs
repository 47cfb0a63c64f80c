//! Reading a local copy of `Once<T>`.

use super::View;
use statemesh_core::collections::OnceState;
use statemesh_core::collections::Value;

impl<T: Value> View<OnceState<T>> {
    /// This replica's value, if it has seen one.
    #[must_use]
    pub fn get(&self) -> Option<T> {
        self.local(|s| s.value().cloned())
    }

    /// Waits until this replica has a value, and returns it.
    pub async fn wait_value(&self) -> T {
        let mut when = self.when();
        loop {
            // The version is read before the value: a value set after this
            // read raises the version past it, so the wait cannot miss it.
            let seen = self.version();
            if let Some(v) = self.get() {
                return v;
            }
            when.reaches(seen + 1).await;
        }
    }
}
