//! Blocking until the writer publishes, without polling.
//!
//! On Linux the reader sleeps in `futex(FUTEX_WAIT)` on the region's notify
//! word (a shared, not process-private, futex: it lives in a file mapping).
//! Elsewhere it sleeps in short steps; the API is the same.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` still holds `expected`, for at most `timeout`.
/// May return early (a wake-up for another change, a signal): callers re-check.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::thread::futex;
        let ts = futex::Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // EAGAIN (value already changed), EINTR and ETIMEDOUT all mean
        // "look again", which the caller does.
        let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (word, expected);
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
    }
}

/// Wakes every process sleeping in [`wait`] on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::thread::futex;
        let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = word;
    }
}
