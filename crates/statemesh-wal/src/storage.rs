//! The narrow I/O seam the log works through.
//!
//! Everything the log does to files goes through [`Storage`] and
//! [`StorageFile`], so tests can run it over a backend that loses unsynced
//! writes at a chosen moment or fails I/O on command, and check what survives.
//! [`FsStorage`] is the real one: a directory on a local file system.

use std::fs::{File, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A directory of named files.
pub trait Storage: Send + Sync + 'static {
    /// An open file of this storage.
    type File: StorageFile;

    /// Opens `name` for reading and writing; creates it (empty) if `create`.
    ///
    /// # Errors
    ///
    /// The operating system's error; `NotFound` if absent and not `create`.
    fn open(&self, name: &str, create: bool) -> io::Result<Self::File>;

    /// Removes `name`. Durable only after [`Storage::sync_dir`].
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to`. Durable only after
    /// [`Storage::sync_dir`].
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// The names of all files.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Makes creations, removals and renames durable.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn sync_dir(&self) -> io::Result<()>;

    /// Where the files are, for error messages.
    fn path_of(&self, name: &str) -> PathBuf;
}

/// An open file.
pub trait StorageFile: Send + Sync + 'static {
    /// Fills `buf` from `offset`; `UnexpectedEof` if the file is shorter.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes all writes so far durable (`fdatasync`).
    ///
    /// # Errors
    ///
    /// The operating system's error. After a failed sync the state of the
    /// file on disk is unknown: the log stops accepting writes.
    fn sync_data(&self) -> io::Result<()>;

    /// The file's length.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn size(&self) -> io::Result<u64>;

    /// Cuts or extends the file to `len` bytes (extension reads as zeros).
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// A read-only map of the first `len` bytes, if this storage can map
    /// files; the log then copies records out of it instead of calling
    /// [`StorageFile::read_at`]. The default maps nothing.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn map(&self, len: u64) -> io::Result<Option<ReadMap>> {
        let _ = len;
        Ok(None)
    }

    /// Reserves real space for the first `len` bytes (`fallocate`) and makes
    /// the file at least that long (the new bytes read as zeros), so later
    /// writes inside it cannot fail for lack of space. Never shrinks.
    ///
    /// # Errors
    ///
    /// The operating system's error (for example `ENOSPC`).
    fn allocate(&self, len: u64) -> io::Result<()>;
}

/// A directory on a local file system, locked against other processes.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    // Held open for the lock; released when the storage drops or the process dies.
    _lock: File,
}

/// The name of the lock file in a log directory.
pub const LOCK_FILE: &str = "LOCK";

/// How long `open` retries a held lock before calling it taken.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

impl FsStorage {
    /// Opens (creating if needed) directory `dir` and takes its exclusive
    /// lock.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if another process (or another `FsStorage` in this one)
    /// holds the lock; otherwise the operating system's error.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let lock = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        // `flock` belongs to the open file description, which `fork` shares
        // with the child: a log closed a moment ago can still be locked by a
        // child of this process between `fork` and `exec`. Such a hold ends
        // within milliseconds, so a lock still held after a short grace is a
        // live owner.
        let deadline = std::time::Instant::now() + LOCK_GRACE;
        loop {
            match lock.try_lock() {
                Ok(()) => return Ok(Self { dir, _lock: lock }),
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "log directory is locked by another process",
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Storage for FsStorage {
    type File = File;

    fn open(&self, name: &str, create: bool) -> io::Result<File> {
        File::options()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.dir.join(name))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A read-only memory map of the start of a segment file.
///
/// The log copies records out of it while it holds its index read lock, and
/// it only ever shortens a mapped file (truncate, repair) while it holds the
/// index write lock, restoring the length before it lets go: so no copy ever
/// touches a page past the end of the file (which would raise SIGBUS), and
/// the bytes of a record are not written while they are copied. Only raw
/// pointers are used: no Rust reference covers the mapping while the writer
/// appends to other parts of the same file.
pub struct ReadMap {
    map: memmap2::MmapRaw,
}

impl std::fmt::Debug for ReadMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadMap")
            .field("len", &self.map.len())
            .finish()
    }
}

impl ReadMap {
    /// The number of bytes mapped.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether nothing is mapped.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Copies `len` bytes from `offset`, or `None` if that is not all mapped.
    #[allow(unsafe_code)]
    pub(crate) fn copy(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let end = offset.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        let (offset, len) = (usize::try_from(offset).ok()?, usize::try_from(len).ok()?);
        // SAFETY: `offset..offset + len` lies inside the mapping (checked
        // above), and the mapping lies inside the file (see the type's docs:
        // the log shortens a mapped file only under its index write lock,
        // while this copy runs under the read lock). The slice covers only
        // the bytes of one written record, which nothing writes while the
        // read lock is held, and it does not outlive this statement.
        let bytes =
            unsafe { std::slice::from_raw_parts(self.map.as_ptr().wrapping_add(offset), len) };
        Some(bytes.to_vec())
    }
}

impl StorageFile for File {
    #[allow(unsafe_code)]
    fn map(&self, len: u64) -> io::Result<Option<ReadMap>> {
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        if len == 0 || self.metadata()?.len() < len as u64 {
            return Ok(None);
        }
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw_read_only(self)?;
        Ok(Some(ReadMap { map }))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::{FallocateFlags, fallocate};
            match fallocate(self, FallocateFlags::empty(), 0, len) {
                Ok(()) => return Ok(()),
                // No fallocate here: fall back to extending the length.
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.metadata()?.len() < len {
            File::set_len(self, len)?;
        }
        Ok(())
    }
}
