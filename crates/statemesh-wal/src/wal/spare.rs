//! Spare segments: the next segment file, zero-filled in the background by
//! the preparer thread, so that a rollover does not stall appends while
//! 64 MiB of zeros are written (see `segment::fill_zeros` for why zeros).

use super::lock::lock;
use crate::segment::fill_zeros;
use crate::storage::{Storage, StorageFile};
use std::io;
use std::sync::{Condvar, Mutex};

struct State<F> {
    /// A prepared file: its temporary name, the file and its size.
    ready: Option<(String, F, u64)>,
    wanted: bool,
    /// The size the next rollover needs (segments grow up to full size).
    size: u64,
    closed: bool,
    made: u64,
}

pub(crate) struct Spare<F> {
    state: Mutex<State<F>>,
    wanted: Condvar,
}

impl<F: StorageFile> Spare<F> {
    /// `wanted`: the preparer makes one as soon as it starts.
    pub(crate) fn new(wanted: bool, size: u64) -> Self {
        Self {
            state: Mutex::new(State {
                ready: None,
                wanted,
                size,
                closed: false,
                made: 0,
            }),
            wanted: Condvar::new(),
        }
    }

    /// Asks the preparer for the next spare segment. It is asked as soon as
    /// the log starts writing and after every rollover: measured with 4 KiB
    /// entries from 64 appenders, asking only once the active segment was
    /// half full left 5 of 13 rollovers without a spare, each zero-filling
    /// 64 MiB inline.
    pub(crate) fn want(&self, size: u64) {
        let mut spare = lock(&self.state);
        spare.size = size;
        if spare.ready.is_none() && !spare.wanted {
            spare.wanted = true;
            drop(spare);
            self.wanted.notify_one();
        }
    }

    /// The prepared file, if there is one of `capacity` bytes: its
    /// temporary name and the file. One of another size is removed.
    pub(crate) fn take<S: Storage<File = F>>(
        &self,
        storage: &S,
        capacity: u64,
    ) -> Option<(String, F)> {
        let mut spare = lock(&self.state);
        match spare.ready.take() {
            Some((tmp, file, made)) if made == capacity => Some((tmp, file)),
            Some((tmp, file, _)) => {
                // Made for a size the log has grown past.
                drop(file);
                let _ = storage.remove(&tmp);
                None
            }
            None => None,
        }
    }

    /// Stops the preparer, part way through a file if need be.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.wanted.notify_all();
    }

    /// Removes an unused spare, which would otherwise only be deleted by
    /// the next recovery.
    pub(crate) fn discard<S: Storage<File = F>>(&self, storage: &S) {
        if let Some((tmp, file, _)) = lock(&self.state).ready.take() {
            drop(file);
            let _ = storage.remove(&tmp);
        }
    }

    /// The preparer thread: makes a spare whenever one is wanted.
    pub(crate) fn run<S: Storage<File = F>>(&self, storage: &S) {
        loop {
            let (n, size) = {
                let mut spare = lock(&self.state);
                while !spare.wanted && !spare.closed {
                    spare = self.wanted.wait(spare).unwrap_or_else(|e| e.into_inner());
                }
                if spare.closed {
                    return;
                }
                spare.made += 1;
                (spare.made, spare.size)
            };
            let tmp = format!("spare-{n}.tmp");
            let made = (|| {
                let file = storage.open(&tmp, true)?;
                file.set_len(0)?;
                file.allocate(size)?;
                // In steps, so that closing the log need not wait for a whole
                // segment of zeros.
                let mut at = 0;
                while at < size {
                    if lock(&self.state).closed {
                        return Err(io::Error::other("closed while preparing"));
                    }
                    let to = (at + (4 << 20)).min(size);
                    fill_zeros(&file, at, to)?;
                    at = to;
                }
                file.sync_data()?;
                Ok::<_, io::Error>(file)
            })();
            let mut spare = lock(&self.state);
            // Asked again meanwhile for another size: made again.
            spare.wanted = spare.size != size;
            match made {
                Ok(file) if !spare.wanted => spare.ready = Some((tmp, file, size)),
                Ok(file) => {
                    drop(file);
                    let _ = storage.remove(&tmp);
                }
                // A failed preparation only means the next rollover creates its
                // segment itself (and reports the error if it fails too).
                Err(_) => {
                    let _ = storage.remove(&tmp);
                }
            }
        }
    }
}
