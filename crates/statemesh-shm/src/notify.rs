//! Blocking until the writer publishes, without polling.
//!
//! On Linux the reader sleeps in `futex(FUTEX_WAIT)` on the region's notify
//! word (a shared, not process-private, futex: it lives in a file mapping).
//! Elsewhere it sleeps in short steps; the API is the same.
//!
//! Both kinds of waiter, a blocked `Reader::wait_for_change` and the helper
//! thread of `Reader::changed`, go through [`wait_newer`]: here, below the
//! reader and its future, so neither module imports the other.

use crate::error::ReadError;
use crate::layout::Control;
use crate::version::{PackedVersion, Version};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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

/// Blocks until `control` publishes a version newer than `last`.
pub(crate) fn wait_newer(
    control: &Control,
    last: Option<Version>,
    timeout: Duration,
) -> Result<Option<Version>, ReadError> {
    let newer = || -> Result<Option<Version>, ReadError> {
        let word = control.current().load(Ordering::SeqCst);
        if word == 0 {
            return Ok(None);
        }
        let p = PackedVersion::from_word(word).ok_or_else(|| ReadError::Corrupt {
            path: control.path().to_path_buf(),
            detail: format!("current version word {word:#x}"),
        })?;
        Ok(Some(p.version()).filter(|v| last.is_none_or(|l| *v > l)))
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = newer()? {
            return Ok(Some(v));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let expected = control.notify().load(Ordering::SeqCst);
        control.waiters().fetch_add(1, Ordering::SeqCst);
        // Re-check after announcing: a publish that did not see us waiting
        // is visible here, and one that did will wake us.
        let found = newer();
        if !matches!(found, Ok(None)) {
            control.waiters().fetch_sub(1, Ordering::SeqCst);
            return found;
        }
        wait(control.notify(), expected, deadline - now);
        control.waiters().fetch_sub(1, Ordering::SeqCst);
    }
}
