//! Where a region's files live, and the mapped buffer files.
//!
//! A region named `NAME` in directory `DIR` is the control file `DIR/NAME`
//! plus buffer files `DIR/NAME.buf0`, `DIR/NAME.buf1`, … created on demand by
//! the writer. Names are `OsStr`, so non-UTF-8 names work.

use crate::error::OpenError;
use memmap2::{MmapOptions, MmapRaw};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The directory regions live in unless an option says otherwise:
/// `/dev/shm` (a tmpfs) on Linux, the temporary directory elsewhere.
#[must_use]
pub fn default_dir() -> PathBuf {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    }
}

/// The paths of one region.
#[derive(Clone, Debug)]
pub(crate) struct RegionPaths {
    dir: PathBuf,
    name: OsString,
}

impl RegionPaths {
    pub(crate) fn new(dir: Option<&Path>, name: &OsStr) -> Result<Self, OpenError> {
        let invalid = |reason| OpenError::InvalidName {
            name: name.to_os_string(),
            reason,
        };
        let bytes = name.as_encoded_bytes();
        if bytes.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name == "." || name == ".." {
            return Err(invalid("it is a directory reference"));
        }
        if bytes.contains(&b'/') {
            return Err(invalid("it contains '/' (give the directory as an option)"));
        }
        if bytes.contains(&0) {
            return Err(invalid("it contains a NUL byte"));
        }
        Ok(Self {
            dir: dir.map_or_else(default_dir, Path::to_path_buf),
            name: name.to_os_string(),
        })
    }

    pub(crate) fn control(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut name = self.name.clone();
        name.push(suffix);
        self.dir.join(name)
    }

    pub(crate) fn buffer(&self, index: u32) -> PathBuf {
        self.with_suffix(&format!(".buf{index}"))
    }

    /// A unique temporary name in the region's directory, for files that are
    /// prepared completely and then renamed or linked into place.
    pub(crate) fn temporary(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.with_suffix(&format!(".{what}.tmp.{}.{n}", std::process::id()))
    }
}

/// Bytes before the snapshot in every buffer file: magic, layout version,
/// buffer index and the region id, so a reader never trusts a buffer file of
/// another region that happens to have the same name.
pub(crate) const BUFFER_HEADER_LEN: u64 = 64;
const BUFFER_MAGIC: [u8; 8] = *b"SMESHBUF";

fn buffer_header(index: u32, region_id: u64) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[..8].copy_from_slice(&BUFFER_MAGIC);
    h[8..12].copy_from_slice(&crate::layout::LAYOUT_VERSION.to_ne_bytes());
    h[12..16].copy_from_slice(&index.to_ne_bytes());
    h[16..24].copy_from_slice(&region_id.to_ne_bytes());
    h
}

/// A buffer file mapped by the writer, grown on demand.
pub(crate) struct WriteBuffer {
    file: File,
    map: MmapRaw,
    path: PathBuf,
}

impl WriteBuffer {
    /// Creates buffer `index` as a new file (replacing any file of that name,
    /// which readers that still map it keep seeing unchanged).
    pub(crate) fn create(paths: &RegionPaths, index: u32, region_id: u64) -> io::Result<Self> {
        let path = paths.buffer(index);
        let tmp = paths.temporary("buf");
        let result = (|| {
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            let len = page_round(BUFFER_HEADER_LEN + 1)?;
            allocate(&file, len)?;
            let map = MmapOptions::new().len(len as usize).map_raw(&file)?;
            let h = buffer_header(index, region_id);
            // SAFETY: the mapping is at least 64 bytes long, freshly created
            // by us, and no other process can know this temporary file yet.
            unsafe { std::ptr::copy_nonoverlapping(h.as_ptr(), map.as_mut_ptr(), h.len()) };
            std::fs::rename(&tmp, &path)?;
            Ok(Self { file, map, path })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Opens buffer `index` of an existing region, after a writer restart.
    /// A missing or foreign file is replaced by a new one.
    pub(crate) fn reopen(paths: &RegionPaths, index: u32, region_id: u64) -> io::Result<Self> {
        let path = paths.buffer(index);
        if let Ok(file) = File::options().read(true).write(true).open(&path) {
            let len = file.metadata()?.len();
            if len >= BUFFER_HEADER_LEN {
                let map = MmapOptions::new().len(len as usize).map_raw(&file)?;
                let mut h = [0u8; 64];
                // SAFETY: the mapping is at least 64 bytes long; concurrent
                // writes to the header do not happen (we hold the writer lock).
                unsafe { std::ptr::copy_nonoverlapping(map.as_ptr(), h.as_mut_ptr(), 64) };
                if h == buffer_header(index, region_id) {
                    return Ok(Self { file, map, path });
                }
            }
        }
        Self::create(paths, index, region_id)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes room for a snapshot of `len` bytes. Space is allocated for real
    /// (`fallocate`) before it is mapped, so writing into it cannot fault with
    /// SIGBUS when the file system is full: the error is returned here.
    pub(crate) fn reserve(&mut self, len: u64) -> io::Result<()> {
        let need = BUFFER_HEADER_LEN
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "snapshot too large"))?;
        if need <= self.map.len() as u64 {
            return Ok(());
        }
        // Grow geometrically so a value that grows a little at a time does not
        // remap on every publish; past 64 MiB grow by 1/8 instead.
        let target = if need <= 64 << 20 {
            need.next_power_of_two()
        } else {
            need + need / 8
        };
        let target = page_round(target)?;
        allocate(&self.file, target)?;
        let len = usize::try_from(target)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "snapshot too large"))?;
        self.map = MmapOptions::new().len(len).map_raw(&self.file)?;
        Ok(())
    }

    /// Copies `bytes` into the snapshot area at `offset`.
    ///
    /// The caller must have reserved room and must know (by the protocol)
    /// that no reader reads this buffer.
    pub(crate) fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let start = BUFFER_HEADER_LEN as usize + offset;
        assert!(start + bytes.len() <= self.map.len());
        // SAFETY: the destination range is inside the mapping (asserted), the
        // source is a distinct allocation, and the protocol guarantees that no
        // reader maps a reference over this buffer while the writer writes it.
        // Only raw pointers are used: no `&mut [u8]` over shared memory exists.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().wrapping_add(start),
                bytes.len(),
            );
        }
    }

    /// The first `len` bytes of the snapshot area, as written by this writer.
    pub(crate) fn written(&self, len: usize) -> &[u8] {
        assert!(BUFFER_HEADER_LEN as usize + len <= self.map.len());
        // SAFETY: the range is inside the mapping (asserted). Only this
        // writer writes the buffer, it is not published while the slice
        // lives (the `&self` borrow), and no reader writes any buffer.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().wrapping_add(BUFFER_HEADER_LEN as usize),
                len,
            )
        }
    }
}

/// The rkyv output of a typed [`Writer::write`](crate::Writer::write): it
/// serialises straight into the shared buffer the snapshot will be published
/// from, growing it as needed, so a typed publish copies the bytes once.
pub struct SnapshotWriter<'a> {
    buffer: &'a mut WriteBuffer,
    pos: usize,
    /// Where an I/O failure to grow the buffer is kept, so the caller can
    /// report it as such rather than as a serialisation error.
    io_error: &'a mut Option<io::Error>,
}

impl<'a> SnapshotWriter<'a> {
    pub(crate) fn new(buffer: &'a mut WriteBuffer, io_error: &'a mut Option<io::Error>) -> Self {
        Self {
            buffer,
            pos: 0,
            io_error,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pos
    }
}

impl std::fmt::Debug for SnapshotWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("pos", &self.pos)
            .finish()
    }
}

impl rkyv::ser::Positional for SnapshotWriter<'_> {
    fn pos(&self) -> usize {
        self.pos
    }
}

impl<E: rkyv::rancor::Source> rkyv::ser::Writer<E> for SnapshotWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        let end = self.pos + bytes.len();
        if let Err(e) = self.buffer.reserve(end as u64) {
            let message = e.to_string();
            *self.io_error = Some(e);
            return Err(E::new(io::Error::other(message)));
        }
        self.buffer.write_at(self.pos, bytes);
        self.pos = end;
        Ok(())
    }
}

/// A buffer file mapped read-only by a reader, remapped when it grew.
pub(crate) struct ReadBuffer {
    file: File,
    map: Option<MmapRaw>,
    path: PathBuf,
}

/// Why a buffer cannot serve a snapshot.
pub(crate) enum ReadBufferError {
    Io(io::Error),
    Truncated { len: u64 },
    Foreign,
}

impl From<io::Error> for ReadBufferError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl ReadBuffer {
    pub(crate) fn open(
        paths: &RegionPaths,
        index: u32,
        region_id: u64,
    ) -> Result<Self, ReadBufferError> {
        let path = paths.buffer(index);
        let file = File::open(&path)?;
        let mut buffer = Self {
            file,
            map: None,
            path,
        };
        buffer.cover(0)?;
        let map = buffer
            .map
            .as_ref()
            .ok_or(ReadBufferError::Truncated { len: 0 })?;
        let mut h = [0u8; 64];
        // SAFETY: `cover(0)` mapped at least the 64-byte header, which the
        // writer never changes after creating the file.
        unsafe { std::ptr::copy_nonoverlapping(map.as_ptr(), h.as_mut_ptr(), 64) };
        if h != buffer_header(index, region_id) {
            return Err(ReadBufferError::Foreign);
        }
        Ok(buffer)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure the mapping covers a snapshot of `len` bytes.
    pub(crate) fn cover(&mut self, len: u64) -> Result<(), ReadBufferError> {
        let need = BUFFER_HEADER_LEN.saturating_add(len);
        if self.map.as_ref().is_some_and(|m| m.len() as u64 >= need) {
            return Ok(());
        }
        // Map what the file holds now (it only ever grows), never more:
        // mapping past the end of a file is what raises SIGBUS.
        let file_len = self.file.metadata()?.len();
        if file_len < need {
            return Err(ReadBufferError::Truncated { len: file_len });
        }
        let map_len =
            usize::try_from(file_len).map_err(|_| ReadBufferError::Truncated { len: file_len })?;
        self.map = Some(
            MmapOptions::new()
                .len(map_len)
                .map_raw_read_only(&self.file)?,
        );
        Ok(())
    }

    /// The snapshot bytes, after `cover(len)` succeeded.
    ///
    /// # Safety
    ///
    /// The caller must hold a pin (protocol) on the version whose bytes these
    /// are, for as long as the returned slice lives: only then does no writer
    /// modify them.
    pub(crate) unsafe fn bytes(&self, len: u64) -> &[u8] {
        let Some(map) = self.map.as_ref() else {
            return &[];
        };
        assert!(BUFFER_HEADER_LEN + len <= map.len() as u64);
        // SAFETY: the range is inside the mapping (asserted); the mapping
        // lives as long as `self`; the caller's pin keeps the writer from
        // modifying these bytes while the slice lives.
        unsafe {
            std::slice::from_raw_parts(
                map.as_ptr().wrapping_add(BUFFER_HEADER_LEN as usize),
                len as usize,
            )
        }
    }
}

fn page_round(len: u64) -> io::Result<u64> {
    const PAGE: u64 = 4096;
    len.checked_next_multiple_of(PAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "snapshot too large"))
}

/// Gives `file` at least `len` bytes of real, allocated space.
pub(crate) fn allocate(file: &File, len: u64) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{FallocateFlags, fallocate};
        match fallocate(file, FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            // File systems without fallocate: fall back to a sparse extension.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}
