//! The single writer of a region.

use crate::error::{OpenError, WriteError};
use crate::layout::{CRC_PRESENT, Control, Geometry, MAX_SLOTS, encode_header};
use crate::liveness;
use crate::notify;
use crate::protocol::{BufferSet, choose_buffer, writer_fence, writer_resolve};
use crate::region::{RegionPaths, SnapshotWriter, WriteBuffer, allocate};
use crate::slot;
use crate::version::{MAX_BUFFERS, PackedVersion, Version};
use rkyv::api::high::HighSerializer;
use rkyv::ser::allocator::{Arena, ArenaHandle};
use std::ffi::OsStr;
use std::fs::{File, TryLockError};
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How a [`Writer`] creates and publishes to a region.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    dir: Option<PathBuf>,
    slots: u32,
    max_buffers: u32,
    busy_timeout: Duration,
    checksum: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            dir: None,
            slots: 128,
            max_buffers: 4,
            busy_timeout: Duration::from_secs(1),
            checksum: false,
        }
    }
}

impl WriterOptions {
    /// The default options: region in [`default_dir`](crate::default_dir),
    /// 128 reader slots, up to 4 buffers, a 1 s busy timeout, no checksums.
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

    /// How many readers may have the region open at once (1..=65536,
    /// default 128). Fixed when the region is created: reopening an existing
    /// region keeps the number it was created with.
    #[must_use]
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots;
        self
    }

    /// How many snapshot buffers the region may use (2..=256, default 4).
    ///
    /// Buffers are created only when needed: with readers that drop their
    /// guards promptly the writer alternates between two or three. A reader
    /// that keeps a guard pins one buffer; the writer waits (up to
    /// [`busy_timeout`](Self::busy_timeout)) only when every buffer but the
    /// current one is pinned. Fixed when the region is created.
    #[must_use]
    pub fn max_buffers(mut self, max_buffers: u32) -> Self {
        self.max_buffers = max_buffers;
        self
    }

    /// How long [`Writer::write`] waits for a free buffer when live readers
    /// pin all of them, before it returns [`WriteError::ReadersBusy`]
    /// (default 1 s). Buffers pinned by dead readers are reclaimed at once.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether to store a CRC32C of every snapshot (default off), so readers
    /// that ask for it can verify what they read. Costs about as much as
    /// the copy itself (measured: 1 MiB publishes in 1.3× a `memcpy` without,
    /// 2.1× with), which is why it is opt-in.
    #[must_use]
    pub fn checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }
}

/// What a publish produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The version readers now see.
    pub version: Version,
    /// The size of the snapshot in bytes.
    pub len: usize,
}

/// The one writer of a region: publishes snapshots of `T` (or raw bytes).
///
/// Holding a `Writer` holds an exclusive lock on the region; a second writer,
/// in this or any process, gets [`OpenError::WriterExists`]. The lock is
/// released when the `Writer` drops or its process dies; a new writer then
/// continues the same region, versions and all, and readers never notice.
pub struct Writer<T: ?Sized = [u8]> {
    control: Control,
    paths: RegionPaths,
    region_id: u64,
    // Holds the exclusive lock for as long as the writer lives.
    _lock: File,
    buffers: Vec<WriteBuffer>,
    current: Option<PackedVersion>,
    options: WriterOptions,
    arena: Arena,
    holders: Vec<u32>,
    _value: PhantomData<fn(&T)>,
}

impl<T: ?Sized> std::fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.control.path())
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Writer<T> {
    /// Creates region `name` in the default directory, or takes over an
    /// existing one, with default options.
    ///
    /// # Errors
    ///
    /// See [`Writer::with_options`].
    pub fn create(name: impl AsRef<OsStr>) -> Result<Self, OpenError> {
        Self::with_options(name, WriterOptions::default())
    }

    /// Creates region `name`, or takes over an existing one.
    ///
    /// A new region's files are prepared under temporary names and linked
    /// into place complete, so a reader never sees a half-made region.
    ///
    /// # Errors
    ///
    /// [`OpenError::WriterExists`] if another writer holds the region; the
    /// header errors (bad magic, incompatible layout, corrupt or truncated
    /// header) if an existing file is not a usable region; `InvalidName`,
    /// `InvalidOption` and `Io` as their names say.
    pub fn with_options(
        name: impl AsRef<OsStr>,
        options: WriterOptions,
    ) -> Result<Self, OpenError> {
        if !(1..=MAX_SLOTS).contains(&options.slots) {
            return Err(OpenError::InvalidOption(format!(
                "slots must be in 1..={MAX_SLOTS}, not {}",
                options.slots
            )));
        }
        if !(2..=MAX_BUFFERS).contains(&options.max_buffers) {
            return Err(OpenError::InvalidOption(format!(
                "max_buffers must be in 2..={MAX_BUFFERS}, not {}",
                options.max_buffers
            )));
        }
        let paths = RegionPaths::new(options.dir.as_deref(), name.as_ref())?;
        let path = paths.control();
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        loop {
            match File::options().read(true).write(true).open(&path) {
                Ok(file) => return Self::take_over(file, paths, options),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
            let geometry = Geometry {
                slots: options.slots,
                max_buffers: options.max_buffers,
            };
            let tmp = paths.temporary("ctl");
            let made = Self::prepare(&tmp, geometry).map_err(io_err(&tmp));
            let file = match made {
                Ok(file) => file,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            // `hard_link` fails if the name exists: of two writers racing to
            // create the region, exactly one wins; the other retries and finds
            // the winner's file, and its lock.
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Self::take_over(file, paths, options),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
    }

    /// Writes a complete, zeroed control file with its header, locked.
    fn prepare(tmp: &Path, geometry: Geometry) -> io::Result<File> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(tmp)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::Error::other("fresh file is locked"),
        })?;
        allocate(&file, geometry.file_len())?;
        let header = encode_header(geometry, region_id());
        std::os::unix::fs::FileExt::write_all_at(&file, &header, 0)?;
        Ok(file)
    }

    fn take_over(
        file: File,
        paths: RegionPaths,
        options: WriterOptions,
    ) -> Result<Self, OpenError> {
        let path = paths.control();
        // Every visible control file is complete (`prepare` fills it before
        // linking it in), so it can be read before the lock is ours.
        let (control, region_id) = Control::open(&file, &path)?;
        lock_as_writer(&file, &control, &path)?;
        let geometry = control.geometry();
        let corrupt = |detail: String| OpenError::CorruptHeader {
            path: path.clone(),
            detail,
        };
        let current = match control.current().load(Ordering::SeqCst) {
            0 => None,
            w => Some(
                PackedVersion::from_word(w)
                    .filter(|p| p.buffer() < geometry.max_buffers)
                    .ok_or_else(|| corrupt(format!("current version word {w:#x}")))?,
            ),
        };
        let created = control.created().load(Ordering::SeqCst);
        if created > u64::from(geometry.max_buffers) {
            return Err(corrupt(format!("{created} buffers recorded")));
        }
        if let Some(c) = current
            && u64::from(c.buffer()) >= created
        {
            return Err(corrupt(format!(
                "current {} is in a buffer never created",
                c.version()
            )));
        }
        let mut buffers = Vec::with_capacity(created as usize);
        for index in 0..created as u32 {
            let b =
                WriteBuffer::reopen(&paths, index, region_id).map_err(|source| OpenError::Io {
                    path: paths.buffer(index),
                    source,
                })?;
            buffers.push(b);
        }
        control
            .writer()
            .store(liveness::this_process(), Ordering::SeqCst);
        Ok(Self {
            control,
            paths,
            region_id,
            _lock: file,
            buffers,
            current,
            options,
            arena: Arena::new(),
            holders: Vec::new(),
            _value: PhantomData,
        })
    }

    /// The path of the region's control file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.control.path()
    }

    /// The version last published to this region (by this or an earlier
    /// writer), or `None` if nothing was ever published.
    #[must_use]
    pub fn version(&self) -> Option<Version> {
        self.current.map(PackedVersion::version)
    }

    /// Publishes bytes the caller already serialised (for a typed reader, an
    /// rkyv archive of `T`). Readers see them as the next version.
    ///
    /// # Errors
    ///
    /// [`WriteError::ReadersBusy`] when live readers pin every buffer for
    /// longer than the busy timeout; `Io` when the file system refuses space;
    /// `VersionsExhausted` after [`Version::MAX`] publishes. On error the
    /// previous snapshot stays current and nothing was overwritten.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<Published, WriteError> {
        self.publish(bytes)
    }

    fn publish(&mut self, bytes: &[u8]) -> Result<Published, WriteError> {
        let next = self.next_version()?;
        let len = bytes.len() as u64;
        if usize::try_from(len.saturating_add(4096)).is_err() {
            return Err(WriteError::TooLarge { len });
        }
        let index = self.free_buffer()?;
        let buffer = &mut self.buffers[index as usize];
        buffer.reserve(len).map_err(|source| WriteError::Io {
            path: buffer.path().to_path_buf(),
            source,
        })?;
        buffer.write_at(0, bytes);
        Ok(self.commit(next, index, bytes.len()))
    }

    fn next_version(&self) -> Result<Version, WriteError> {
        match self.current {
            None => Ok(Version::FIRST),
            Some(c) => c
                .version()
                .next()
                .ok_or_else(|| WriteError::VersionsExhausted {
                    path: self.path().to_path_buf(),
                    last: c.version(),
                }),
        }
    }

    /// Publishes the `len` bytes already in buffer `index` as version `next`.
    fn commit(&mut self, next: Version, index: u32, len: usize) -> Published {
        let crc = if self.options.checksum {
            CRC_PRESENT | u64::from(crc32c::crc32c(self.buffers[index as usize].written(len)))
        } else {
            0
        };
        let descriptor = self.control.descriptor(index);
        // Relaxed is enough: readers learn of this version only through the
        // SeqCst store of `current` below (or a pin the writer sets after it).
        descriptor.seq.store(next.get(), Ordering::Relaxed);
        descriptor.len.store(len as u64, Ordering::Relaxed);
        descriptor.crc.store(crc, Ordering::Relaxed);
        let packed = PackedVersion::new(next, index);
        self.control
            .current()
            .store(packed.word(), Ordering::SeqCst);
        self.current = Some(packed);
        // Wake sleepers only if there are any: `waiters` is raised before a
        // reader re-checks and sleeps, so with SeqCst on both sides either we
        // see it or the reader sees the new version and does not sleep.
        self.control
            .notify()
            .store(next.get() as u32, Ordering::SeqCst);
        if self.control.waiters().load(Ordering::SeqCst) > 0 {
            notify::wake_all(self.control.notify());
        }
        Published { version: next, len }
    }

    /// Finds a buffer no reader can be reading, creating one if allowed,
    /// waiting for live readers to let go if not.
    fn free_buffer(&mut self) -> Result<u32, WriteError> {
        let started = Instant::now();
        let mut backoff = Duration::from_micros(10);
        let max_buffers = self.control.geometry().max_buffers;
        loop {
            let mut busy = BufferSet::default();
            self.holders.clear();
            writer_fence(self.control.current());
            // Readers announce the highest slot they use before touching
            // their pin, so slots above it are known to be empty.
            let used = slot::used(&self.control);
            for index in 0..used {
                if let Some(b) = writer_resolve(self.control.slot(index).pin, self.current) {
                    busy.insert(b);
                    self.holders.push(index);
                }
            }
            let created = self.buffers.len() as u32;
            if let Some(b) = choose_buffer(&busy, self.current, created) {
                return Ok(b);
            }
            if created < max_buffers {
                let b = WriteBuffer::create(&self.paths, created, self.region_id).map_err(
                    |source| WriteError::Io {
                        path: self.paths.buffer(created),
                        source,
                    },
                )?;
                self.buffers.push(b);
                self.control
                    .created()
                    .store(u64::from(created) + 1, Ordering::SeqCst);
                return Ok(created);
            }
            // Every buffer is pinned. Pins of dead processes are released at
            // once; live ones are waited for, up to the bound.
            let mut reclaimed = false;
            for &index in &self.holders {
                reclaimed |= slot::reclaim_if_dead(&self.control, index);
            }
            if reclaimed {
                continue;
            }
            let waited = started.elapsed();
            if waited >= self.options.busy_timeout {
                return Err(WriteError::ReadersBusy {
                    path: self.path().to_path_buf(),
                    buffers: max_buffers,
                    waited,
                });
            }
            std::thread::sleep(backoff.min(self.options.busy_timeout - waited));
            backoff = (backoff * 2).min(Duration::from_millis(1));
        }
    }
}

impl<T> Writer<T>
where
    T: for<'a, 'b> rkyv::Serialize<
            HighSerializer<SnapshotWriter<'b>, ArenaHandle<'a>, rkyv::rancor::Error>,
        >,
{
    /// Serialises `value` with rkyv straight into the shared buffer it is
    /// published from (one copy of the bytes), and publishes it.
    ///
    /// # Errors
    ///
    /// [`WriteError::Serialize`] if rkyv fails (for example for lack of
    /// space in the file system); otherwise as [`Writer::write_raw`].
    pub fn write(&mut self, value: &T) -> Result<Published, WriteError> {
        let next = self.next_version()?;
        let index = self.free_buffer()?;
        let mut io_error = None;
        let out = SnapshotWriter::new(&mut self.buffers[index as usize], &mut io_error);
        let out = rkyv::api::high::to_bytes_in_with_alloc::<_, _, rkyv::rancor::Error>(
            value,
            out,
            self.arena.acquire(),
        );
        let len = match out {
            Ok(out) => out.len(),
            Err(e) => {
                return Err(match io_error {
                    Some(source) => WriteError::Io {
                        path: self.paths.buffer(index),
                        source,
                    },
                    None => WriteError::Serialize(e.to_string()),
                });
            }
        };
        Ok(self.commit(next, index, len))
    }
}

impl<T: ?Sized> Drop for Writer<T> {
    fn drop(&mut self) {
        self.control.writer().store(0, Ordering::SeqCst);
    }
}

/// How long a lock left behind by a writer that has gone may stay held.
const DEPARTED_WRITER_GRACE: Duration = Duration::from_millis(500);

/// Takes the region's exclusive writer lock.
///
/// The lock (`flock`) belongs to the open file description, and `fork`
/// shares that with the child: a writer that has dropped can leave its lock
/// held for a moment by a child of its process that is between `fork` and
/// `exec` (any thread spawning a command opens that window). So when the
/// lock is taken but no live writer is recorded, wait for it briefly; a live
/// writer is refused at once.
fn lock_as_writer(file: &File, control: &Control, path: &Path) -> Result<(), OpenError> {
    let deadline = Instant::now() + DEPARTED_WRITER_GRACE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(source)) => {
                return Err(OpenError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
            Err(TryLockError::WouldBlock) => {
                let owner = control.writer().load(Ordering::SeqCst);
                let departed = owner == 0 || liveness::check(owner) == liveness::Liveness::Dead;
                if !departed || Instant::now() >= deadline {
                    return Err(OpenError::WriterExists {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// A random id for a new region, so buffer files of another region with the
/// same name are never mistaken for this one's.
fn region_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}
