//! Readers of a region, and the guard a read returns.

use crate::error::{OpenError, ReadError};
use crate::layout::{CRC_PRESENT, Control};
use crate::liveness::{self, Liveness};
use crate::notify;
use crate::protocol::{Acquired, reader_acquire, reader_release};
use crate::region::{ReadBuffer, ReadBufferError, RegionPaths};
use crate::slot;
use crate::version::{PackedVersion, Version};
use rkyv::api::high::HighValidator;
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How a [`Reader`] opens and reads a region.
#[derive(Clone, Debug, Default)]
pub struct ReaderOptions {
    dir: Option<PathBuf>,
    verify_checksum: bool,
}

impl ReaderOptions {
    /// The default options: region in [`default_dir`](crate::default_dir),
    /// no checksum verification.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The directory of the region's files (default: [`default_dir`](crate::default_dir)).
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Verify each version's CRC32C (once per version per reader) and fail
    /// with [`ReadError::ChecksumMismatch`] when it does not match. Versions
    /// written with checksums off are not verified. Default off.
    #[must_use]
    pub fn verify_checksum(mut self, on: bool) -> Self {
        self.verify_checksum = on;
        self
    }
}

/// A reader of a region: reads the latest snapshot in place, without copying
/// and without ever waiting for the writer.
///
/// Each `Reader` owns one of the region's reader slots until it drops; a
/// process may open many. A `Reader` is `Send` but not shared: move it to the
/// thread that reads, or open one per thread. Do not use a `Reader` in a
/// child created by `fork`: open a new one there.
pub struct Reader<T: ?Sized = [u8]> {
    control: Arc<Control>,
    paths: RegionPaths,
    region_id: u64,
    slot: u32,
    buffers: Vec<Option<ReadBuffer>>,
    options: ReaderOptions,
    /// The version this reader released last: the fast path takes it back.
    idle: Option<PackedVersion>,
    /// The version of this reader's previous read.
    last: Option<Version>,
    /// The packed word of the version whose bytes were last validated/verified.
    validated: u64,
    verified: u64,
    /// The packed word and length of the previous read, located and mapped:
    /// reading the same version again needs no descriptor or mapping work.
    last_word: u64,
    last_len: u64,
    _value: PhantomData<fn() -> T>,
}

impl<T: ?Sized> std::fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.control.path())
            .field("slot", &self.slot)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Reader<T> {
    /// Opens region `name` in the default directory.
    ///
    /// # Errors
    ///
    /// See [`Reader::with_options`].
    pub fn open(name: impl AsRef<OsStr>) -> Result<Self, OpenError> {
        Self::with_options(name, ReaderOptions::default())
    }

    /// Opens region `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if no writer has created it; the header
    /// errors if the file is not a usable region; [`OpenError::NoFreeSlot`]
    /// if live readers hold every slot.
    pub fn with_options(
        name: impl AsRef<OsStr>,
        options: ReaderOptions,
    ) -> Result<Self, OpenError> {
        let paths = RegionPaths::new(options.dir.as_deref(), name.as_ref())?;
        let path = paths.control();
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                OpenError::NotFound { path: path.clone() }
            } else {
                OpenError::Io {
                    path: path.clone(),
                    source,
                }
            }
        };
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        let (control, region_id) = Control::open(&file, &path)?;
        let geometry = control.geometry();
        let slot = slot::claim(&control).ok_or(OpenError::NoFreeSlot {
            path,
            slots: geometry.slots,
        })?;
        Ok(Self {
            control: Arc::new(control),
            paths,
            region_id,
            slot,
            buffers: (0..geometry.max_buffers).map(|_| None).collect(),
            options,
            idle: None,
            last: None,
            validated: 0,
            verified: 0,
            last_word: 0,
            last_len: 0,
            _value: PhantomData,
        })
    }

    /// Opens region `name`, waiting up to `timeout` for a writer to create it.
    ///
    /// # Errors
    ///
    /// [`OpenError::Timeout`] if it does not appear in time; otherwise as
    /// [`Reader::with_options`].
    pub fn open_wait(
        name: impl AsRef<OsStr>,
        options: ReaderOptions,
        timeout: Duration,
    ) -> Result<Self, OpenError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match Self::with_options(name.as_ref(), options.clone()) {
                Err(OpenError::NotFound { path }) => {
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(OpenError::Timeout { path, waited });
                    }
                    // Nothing to block on before the file exists: poll, gently.
                    std::thread::sleep(pause.min(timeout - waited));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// The path of the region's control file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.control.path()
    }

    /// The version currently published, or `None` before the first publish.
    /// One atomic load: cheap enough to poll.
    #[must_use]
    pub fn version(&self) -> Option<Version> {
        PackedVersion::from_word(self.control.current().load(Ordering::SeqCst))
            .map(PackedVersion::version)
    }

    /// The version this reader read last, if it has read.
    #[must_use]
    pub fn last_read(&self) -> Option<Version> {
        self.last
    }

    /// Whether a live process holds the region as its writer.
    #[must_use]
    pub fn writer_attached(&self) -> bool {
        match self.control.writer().load(Ordering::SeqCst) {
            0 => false,
            owner => liveness::check(owner) == Liveness::Alive,
        }
    }

    /// Reads the latest snapshot as bytes, in place.
    ///
    /// # Errors
    ///
    /// [`ReadError::NothingPublished`] before the first publish;
    /// `ChecksumMismatch` if checksum verification is on and fails;
    /// `Truncated`, `Corrupt` or `Io` if the region's files are damaged.
    pub fn read_raw(&mut self) -> Result<ReadGuard<'_, [u8]>, ReadError> {
        let (pinned, len, changed) = self.acquire()?;
        let buffer = self.buffer(pinned);
        // SAFETY: `acquire` pinned `pinned` and covered `len` bytes; the pin
        // lasts until the guard, which borrows `self`, drops.
        let bytes = unsafe { buffer.bytes(len) };
        Ok(ReadGuard::new(
            bytes,
            self.control.slot(self.slot).pin,
            pinned,
            changed,
        ))
    }

    /// Blocks until a version newer than this reader's last read is
    /// published (any version, if it has not read yet), or `timeout` passes.
    /// Returns the new version, or `None` on timeout.
    ///
    /// Sleeps in the kernel (a shared futex on Linux): no polling loop, no
    /// CPU used while nothing changes.
    ///
    /// # Errors
    ///
    /// [`ReadError::Corrupt`] if the region's current-version word is corrupt.
    pub fn wait_for_change(&mut self, timeout: Duration) -> Result<Option<Version>, ReadError> {
        notify::wait_newer(&self.control, self.last, timeout)
    }

    /// A future that resolves once a version newer than this reader's last
    /// read is published. Runtime-agnostic: works on any executor.
    #[cfg(feature = "async")]
    pub fn changed(&self) -> crate::changed::Changed {
        crate::changed::Changed::new(Arc::clone(&self.control), self.last)
    }

    /// Pins the current version and makes its bytes addressable.
    /// Returns it, its length, and whether it differs from the previous read.
    fn acquire(&mut self) -> Result<(PackedVersion, u64, bool), ReadError> {
        let pin = self.control.slot(self.slot).pin;
        let pinned = match reader_acquire(pin, self.control.current(), self.idle) {
            Acquired::Pinned(p) => p,
            Acquired::Nothing => {
                return Err(ReadError::NothingPublished {
                    path: self.path().to_path_buf(),
                });
            }
            Acquired::Corrupt(word) => {
                return Err(ReadError::Corrupt {
                    path: self.path().to_path_buf(),
                    detail: format!("current version word {word:#x}"),
                });
            }
        };
        if pinned.word() == self.last_word {
            // Same version as the previous read: its buffer is still mapped
            // far enough (mappings change only when `locate` sees a new
            // version, which also replaces `last_word`).
            self.idle = Some(pinned);
            return Ok((pinned, self.last_len, false));
        }
        match self.locate(pinned) {
            Ok(len) => {
                // From here the guard's drop turns the pin idle.
                self.idle = Some(pinned);
                let version = pinned.version();
                let changed = self.last != Some(version);
                self.last = Some(version);
                self.last_word = pinned.word();
                self.last_len = len;
                Ok((pinned, len, changed))
            }
            Err(e) => {
                reader_release(self.control.slot(self.slot).pin, pinned);
                self.idle = Some(pinned);
                self.last_word = 0;
                Err(e)
            }
        }
    }

    /// Maps the buffer of `pinned` far enough, checks what the descriptor
    /// says and verifies the checksum if asked. Returns the snapshot length.
    fn locate(&mut self, pinned: PackedVersion) -> Result<u64, ReadError> {
        let index = pinned.buffer();
        let control = &self.control;
        let corrupt = |detail: String| ReadError::Corrupt {
            path: control.path().to_path_buf(),
            detail,
        };
        if index >= control.geometry().max_buffers {
            return Err(corrupt(format!(
                "{} names buffer {index}",
                pinned.version()
            )));
        }
        let descriptor = control.descriptor(index);
        let seq = descriptor.seq.load(Ordering::Relaxed);
        if seq != pinned.version().get() {
            return Err(corrupt(format!(
                "buffer {index} describes version {seq}, expected {}",
                pinned.version()
            )));
        }
        let len = descriptor.len.load(Ordering::Relaxed);
        let crc = descriptor.crc.load(Ordering::Relaxed);
        let slot = &mut self.buffers[index as usize];
        if slot.is_none() {
            let opened = ReadBuffer::open(&self.paths, index, self.region_id);
            *slot =
                Some(opened.map_err(|e| buffer_error(e, &self.paths.buffer(index), pinned, 0))?);
        }
        let Some(buffer) = slot.as_mut() else {
            unreachable!("just filled")
        };
        buffer
            .cover(len)
            .map_err(|e| buffer_error(e, buffer.path(), pinned, len))?;
        if self.options.verify_checksum && crc & CRC_PRESENT != 0 && self.verified != pinned.word()
        {
            // SAFETY: the caller pinned `pinned`; the slice is dropped before
            // this function returns.
            let computed = crc32c::crc32c(unsafe { buffer.bytes(len) });
            let stored = crc as u32;
            if computed != stored {
                return Err(ReadError::ChecksumMismatch {
                    path: buffer.path().to_path_buf(),
                    version: pinned.version(),
                    stored,
                    computed,
                });
            }
            self.verified = pinned.word();
        }
        Ok(len)
    }

    fn buffer(&self, pinned: PackedVersion) -> &ReadBuffer {
        match self.buffers[pinned.buffer() as usize].as_ref() {
            Some(b) => b,
            None => unreachable!("`locate` opened the buffer"),
        }
    }
}

impl<T> Reader<T>
where
    T: rkyv::Archive,
    T::Archived: rkyv::Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Reads the latest snapshot as `&Archived<T>`, in place, validated.
    ///
    /// Validation (rkyv's `bytecheck`) runs once per version per reader:
    /// the bytes of a version never change, so reading the same version
    /// again costs no re-validation.
    ///
    /// # Errors
    ///
    /// [`ReadError::Invalid`] if the bytes are not a valid archive of `T`;
    /// otherwise as [`Reader::read_raw`].
    pub fn read(&mut self) -> Result<ReadGuard<'_, T::Archived>, ReadError> {
        let (pinned, len, changed) = self.acquire()?;
        if self.validated != pinned.word() {
            // SAFETY: `acquire` pinned `pinned` and covered `len` bytes; the
            // slice does not outlive this block.
            let bytes = unsafe { self.buffer(pinned).bytes(len) };
            if let Err(e) = rkyv::access::<T::Archived, rancor::Error>(bytes) {
                let path = self.buffer(pinned).path().to_path_buf();
                reader_release(self.control.slot(self.slot).pin, pinned);
                return Err(ReadError::Invalid {
                    path,
                    version: pinned.version(),
                    message: e.to_string(),
                });
            }
            self.validated = pinned.word();
        }
        // SAFETY: pinned and covered as above, for the guard's lifetime.
        let bytes = unsafe { self.buffer(pinned).bytes(len) };
        // SAFETY: these exact bytes (same version, immutable while pinned)
        // passed `rkyv::access` validation for `T::Archived` above or in an
        // earlier read of this version.
        let value = unsafe { rkyv::access_unchecked::<T::Archived>(bytes) };
        Ok(ReadGuard::new(
            value,
            self.control.slot(self.slot).pin,
            pinned,
            changed,
        ))
    }
}

impl<T: rkyv::Archive> Reader<T>
where
    T::Archived: rkyv::Portable,
{
    /// Reads the latest snapshot as `&Archived<T>`, in place, without
    /// validating it.
    ///
    /// # Safety
    ///
    /// Every snapshot published to the region must be a valid rkyv archive
    /// of `T` made by the same rkyv version (as [`Writer::write`](crate::Writer::write)
    /// of a `Writer<T>` makes). Raw bytes of anything else are undefined
    /// behaviour to read this way; use [`Reader::read`] when in doubt.
    ///
    /// # Errors
    ///
    /// As [`Reader::read_raw`].
    pub unsafe fn read_unchecked(&mut self) -> Result<ReadGuard<'_, T::Archived>, ReadError> {
        let (pinned, len, changed) = self.acquire()?;
        // SAFETY: `acquire` pinned `pinned` and covered `len` bytes; the pin
        // lasts until the guard, which borrows `self`, drops.
        let bytes = unsafe { self.buffer(pinned).bytes(len) };
        // SAFETY: the caller promises the bytes are a valid archive of `T`.
        let value = unsafe { rkyv::access_unchecked::<T::Archived>(bytes) };
        Ok(ReadGuard::new(
            value,
            self.control.slot(self.slot).pin,
            pinned,
            changed,
        ))
    }
}

impl<T: ?Sized> Drop for Reader<T> {
    fn drop(&mut self) {
        slot::release(&self.control, self.slot);
    }
}

fn buffer_error(e: ReadBufferError, path: &Path, pinned: PackedVersion, needed: u64) -> ReadError {
    let path = path.to_path_buf();
    match e {
        ReadBufferError::Io(source) => ReadError::Io { path, source },
        ReadBufferError::Truncated { len } => ReadError::Truncated {
            path,
            len,
            version: pinned.version(),
            needed: needed + crate::region::BUFFER_HEADER_LEN,
        },
        ReadBufferError::Foreign => ReadError::Corrupt {
            path,
            detail: "buffer file header does not belong to this region".into(),
        },
    }
}

/// A pinned snapshot: dereferences to the value in shared memory. While it
/// lives, the writer never writes the buffer it points into.
///
/// Drop it promptly: a guard held for long pins one buffer, and when readers
/// pin all buffers the writer waits and then fails (never overwrites).
pub struct ReadGuard<'a, A: ?Sized> {
    value: &'a A,
    pin: &'a AtomicU64,
    pinned: PackedVersion,
    changed: bool,
}

impl<'a, A: ?Sized> ReadGuard<'a, A> {
    fn new(value: &'a A, pin: &'a AtomicU64, pinned: PackedVersion, changed: bool) -> Self {
        Self {
            value,
            pin,
            pinned,
            changed,
        }
    }

    /// The version of this snapshot.
    #[must_use]
    pub fn version(&self) -> Version {
        self.pinned.version()
    }

    /// Whether this snapshot's version differs from the reader's previous
    /// read (true on a reader's first read).
    #[must_use]
    pub fn is_changed(&self) -> bool {
        self.changed
    }
}

impl<A: ?Sized> Deref for ReadGuard<'_, A> {
    type Target = A;
    fn deref(&self) -> &A {
        self.value
    }
}

impl<A: ?Sized + std::fmt::Debug> std::fmt::Debug for ReadGuard<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGuard")
            .field("version", &self.version())
            .field("changed", &self.changed)
            .field("value", &self.value)
            .finish()
    }
}

impl<A: ?Sized> Drop for ReadGuard<'_, A> {
    fn drop(&mut self) {
        reader_release(self.pin, self.pinned);
    }
}
