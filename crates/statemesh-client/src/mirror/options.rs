//! The settings a mirror is opened with.

use std::path::PathBuf;
use std::time::Duration;

/// How a mirror keeps its copy and reconnects.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Where to keep the copy across restarts (`None`: memory only).
    pub dir: Option<PathBuf>,
    /// How often, at most, the copy is written there (default 100 ms).
    pub persist_every: Duration,
    /// The first pause before reconnecting (default 50 ms); it doubles up
    /// to `reconnect_max` (default 2 s) while attempts fail.
    pub reconnect_min: Duration,
    /// The longest pause between attempts.
    pub reconnect_max: Duration,
    /// How many updates [`Mirror::updates`](super::Mirror::updates) receivers may fall behind
    /// before they miss some (default 1024).
    pub updates_capacity: usize,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            dir: None,
            persist_every: Duration::from_millis(100),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            updates_capacity: 1024,
        }
    }
}

impl MirrorOptions {
    /// Keeps the copy in `dir`.
    #[must_use]
    pub fn persist_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}
