//! Waiting for a condition, always with a deadline.

use std::time::{Duration, Instant};

/// How long [`eventually`] waits before it fails the test.
const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` every 10 ms until it holds; panics naming `what` after 30 s.
///
/// # Panics
///
/// When `check` has not held within 30 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Like [`eventually`], for an async check, sleeping on the caller's
/// (tokio) runtime between polls.
///
/// # Panics
///
/// When `check` has not held within 30 s.
pub async fn eventually_async(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
