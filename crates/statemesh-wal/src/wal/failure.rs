//! The log's failed state. After a failed `fdatasync` the kernel may have
//! dropped the dirty pages and report success on a retry, so the first
//! failed write or sync stops the log: every later operation gets that
//! error until the log is reopened and recovery reads what the disk holds.

use super::lock::lock;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) struct Failure {
    /// Read on every operation without taking the lock.
    failed: AtomicBool,
    error: Mutex<Option<Arc<io::Error>>>,
}

impl Failure {
    pub(crate) fn new() -> Self {
        Self {
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// Marks the log failed (the first error wins) and returns the error.
    pub(crate) fn fail(&self, e: io::Error) -> Arc<io::Error> {
        let mut error = lock(&self.error);
        let e = error.get_or_insert_with(|| Arc::new(e)).clone();
        self.failed.store(true, Ordering::Release);
        e
    }

    /// The error that failed the log, if one did.
    pub(crate) fn get(&self) -> Option<Arc<io::Error>> {
        if self.failed.load(Ordering::Acquire) {
            lock(&self.error).clone()
        } else {
            None
        }
    }
}
