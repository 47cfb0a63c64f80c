//! Writing a mirror's copy to its directory, in the background after
//! changes and once more on close.

use super::error::MirrorError;
use super::file;
use crate::shared::Shared;
use statemesh_core::{Identity, Mirrored};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Writes a mirror's copy to its directory.
pub(super) struct Persist<SM: Mirrored> {
    pub(super) dir: PathBuf,
    pub(super) identity: Identity,
    pub(super) shared: Arc<Shared<SM>>,
    /// One write at a time: a background write may still run when `close`
    /// writes (aborting its task does not stop a blocking write).
    pub(super) writing: Arc<std::sync::Mutex<()>>,
}

impl<SM: Mirrored> Clone for Persist<SM> {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            identity: self.identity,
            shared: Arc::clone(&self.shared),
            writing: Arc::clone(&self.writing),
        }
    }
}

impl<SM: Mirrored> Persist<SM> {
    /// Writes the copy as it is now.
    pub(super) fn write(&self) -> Result<(), MirrorError> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let (state, version) = {
            let sm = self.shared.sm.read().unwrap_or_else(|e| e.into_inner());
            (sm.snapshot(), self.shared.version.get())
        };
        file::store(&self.dir, self.identity, version, &state)?;
        Ok(())
    }

    /// Writes the copy after each change, at most once per `every`.
    pub(super) async fn run(self, every: Duration) {
        let mut version = self.shared.version.subscribe();
        loop {
            if version.changed().await.is_err() {
                return;
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.write()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "mirror: writing the copy"),
                Err(_) => return,
            }
            tokio::time::sleep(every).await;
        }
    }
}
