//! The byte layout of a region's control file, and the typed view of it.
//!
//! See `FORMAT.md` in this crate for the diagram and the reasoning. In short:
//! a 64-byte immutable header (magic, layout version, geometry, CRC32C), then
//! cache-line-separated shared words, one descriptor per buffer and one slot
//! per reader. All words are native-endian: a region never leaves its host.

use crate::error::OpenError;
use memmap2::MmapRaw;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};

/// The first eight bytes of every control file.
pub(crate) const MAGIC: [u8; 8] = *b"SMESHSHM";
/// The layout version this build reads and writes.
pub(crate) const LAYOUT_VERSION: u32 = 1;
/// Written natively; reads back differently on a host of the other byte order.
const BYTE_ORDER_MARK: u32 = 0x0A0B_0C0D;

const HEADER_CHECKED_LEN: usize = 32;
const OFF_MAGIC: usize = 0;
const OFF_LAYOUT: usize = 8;
const OFF_BOM: usize = 12;
const OFF_SLOTS: usize = 16;
const OFF_MAX_BUFFERS: usize = 20;
const OFF_REGION_ID: usize = 24;
const OFF_HEADER_CRC: usize = 32;

const OFF_CURRENT: usize = 64;
const OFF_CREATED: usize = 72;
const OFF_WRITER: usize = 80;
const OFF_SLOTS_USED: usize = 88;
const OFF_NOTIFY: usize = 128;
const OFF_WAITERS: usize = 132;
const OFF_DESCRIPTORS: usize = 192;
const DESCRIPTOR_STRIDE: usize = 64;
/// Two cache lines per slot: adjacent-line prefetchers would otherwise make
/// neighbouring readers contend.
const SLOT_STRIDE: usize = 128;

/// Largest number of reader slots a region may have.
pub(crate) const MAX_SLOTS: u32 = 1 << 16;

/// The geometry fixed when a region is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) slots: u32,
    pub(crate) max_buffers: u32,
}

impl Geometry {
    pub(crate) fn file_len(self) -> u64 {
        (OFF_DESCRIPTORS
            + DESCRIPTOR_STRIDE * self.max_buffers as usize
            + SLOT_STRIDE * self.slots as usize) as u64
    }

    fn slots_offset(self) -> usize {
        OFF_DESCRIPTORS + DESCRIPTOR_STRIDE * self.max_buffers as usize
    }
}

/// The immutable first 64 bytes, as the writer creates them.
pub(crate) fn encode_header(geometry: Geometry, region_id: u64) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
    h[OFF_LAYOUT..OFF_LAYOUT + 4].copy_from_slice(&LAYOUT_VERSION.to_ne_bytes());
    h[OFF_BOM..OFF_BOM + 4].copy_from_slice(&BYTE_ORDER_MARK.to_ne_bytes());
    h[OFF_SLOTS..OFF_SLOTS + 4].copy_from_slice(&geometry.slots.to_ne_bytes());
    h[OFF_MAX_BUFFERS..OFF_MAX_BUFFERS + 4].copy_from_slice(&geometry.max_buffers.to_ne_bytes());
    h[OFF_REGION_ID..OFF_REGION_ID + 8].copy_from_slice(&region_id.to_ne_bytes());
    seal_header(&mut h);
    h
}

/// Writes the checksum of a header's checked bytes into its checksum
/// field. Bytes shorter than a header are left as they are.
pub(crate) fn seal_header(h: &mut [u8]) {
    if h.len() < 64 {
        return;
    }
    let crc = crc32c::crc32c(&h[..HEADER_CHECKED_LEN]);
    h[OFF_HEADER_CRC..OFF_HEADER_CRC + 4].copy_from_slice(&crc.to_ne_bytes());
}

fn u32_at(h: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&h[off..off + 4]);
    u32::from_ne_bytes(b)
}

/// Checks the header bytes of an existing control file of `file_len` bytes.
pub(crate) fn decode_header(path: &Path, h: &[u8], file_len: u64) -> Result<Geometry, OpenError> {
    let path = || path.to_path_buf();
    if h.len() < 64 {
        if h.len() >= 8 && h[..8] != MAGIC {
            return Err(OpenError::BadMagic { path: path() });
        }
        return Err(OpenError::Truncated {
            path: path(),
            len: file_len,
            expected: 64,
        });
    }
    if h[..8] != MAGIC {
        return Err(OpenError::BadMagic { path: path() });
    }
    let layout = u32_at(h, OFF_LAYOUT);
    if layout != LAYOUT_VERSION {
        // Layout versions are written little-endian-agnostic: a foreign byte
        // order shows up as a huge number, reported as what it is.
        return Err(OpenError::IncompatibleLayout {
            path: path(),
            found: layout,
            supported: LAYOUT_VERSION,
        });
    }
    if u32_at(h, OFF_BOM) != BYTE_ORDER_MARK {
        return Err(OpenError::CorruptHeader {
            path: path(),
            detail: "byte-order mark does not match this host".into(),
        });
    }
    let stored = u32_at(h, OFF_HEADER_CRC);
    let computed = crc32c::crc32c(&h[..HEADER_CHECKED_LEN]);
    if stored != computed {
        return Err(OpenError::CorruptHeader {
            path: path(),
            detail: format!("header checksum {stored:#010x}, computed {computed:#010x}"),
        });
    }
    let geometry = Geometry {
        slots: u32_at(h, OFF_SLOTS),
        max_buffers: u32_at(h, OFF_MAX_BUFFERS),
    };
    if geometry.slots == 0
        || geometry.slots > MAX_SLOTS
        || geometry.max_buffers < 2
        || geometry.max_buffers > crate::version::MAX_BUFFERS
    {
        return Err(OpenError::CorruptHeader {
            path: path(),
            detail: format!(
                "impossible geometry: {} slots, {} buffers",
                geometry.slots, geometry.max_buffers
            ),
        });
    }
    if file_len < geometry.file_len() {
        return Err(OpenError::Truncated {
            path: path(),
            len: file_len,
            expected: geometry.file_len(),
        });
    }
    Ok(geometry)
}

/// A buffer's descriptor: what the writer says about the bytes in it.
pub(crate) struct Descriptor<'a> {
    /// Sequence number of the version in the buffer.
    pub(crate) seq: &'a AtomicU64,
    /// Length in bytes of the snapshot.
    pub(crate) len: &'a AtomicU64,
    /// CRC32C of the bytes in the low 32 bits; bit 32 set when present.
    pub(crate) crc: &'a AtomicU64,
}

/// Bit 32 of a descriptor's `crc` word: the writer computed a checksum.
pub(crate) const CRC_PRESENT: u64 = 1 << 32;

/// One reader slot.
pub(crate) struct Slot<'a> {
    /// The owning process (see `liveness`), or 0 when free.
    pub(crate) owner: &'a AtomicU64,
    /// The pin word of the protocol.
    pub(crate) pin: &'a AtomicU64,
}

/// A mapped, validated control file.
pub(crate) struct Control {
    map: MmapRaw,
    path: PathBuf,
    geometry: Geometry,
}

impl Control {
    /// Wraps a mapping whose header `decode_header` accepted (or that the
    /// writer just initialised) and that is at least `geometry.file_len()`
    /// bytes long.
    pub(crate) fn new(map: MmapRaw, path: PathBuf, geometry: Geometry) -> Self {
        assert!(map.len() as u64 >= geometry.file_len());
        Self {
            map,
            path,
            geometry,
        }
    }

    /// Reads and checks the header of the open control file `file` (at
    /// `path`) and maps it. Returns the mapping and the region id.
    pub(crate) fn open(file: &std::fs::File, path: &Path) -> Result<(Self, u64), OpenError> {
        use std::io::Read;
        let io_err = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = file.metadata().map_err(io_err)?.len();
        let mut header = Vec::with_capacity(64);
        file.take(64).read_to_end(&mut header).map_err(io_err)?;
        let geometry = decode_header(path, &header, len)?;
        let mut id = [0u8; 8];
        id.copy_from_slice(&header[OFF_REGION_ID..OFF_REGION_ID + 8]);
        let map = memmap2::MmapOptions::new()
            .len(geometry.file_len() as usize)
            .map_raw(file)
            .map_err(io_err)?;
        Ok((
            Self::new(map, path.to_path_buf(), geometry),
            u64::from_ne_bytes(id),
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= self.map.len());
        // SAFETY: the mapping is page-aligned and `off` is a multiple of 8
        // inside it (every offset comes from the constants above and the
        // geometry that `new` checked against the mapping's length), so the
        // pointer is valid and aligned for an AtomicU64. The mapping lives as
        // long as `self`, and other processes only ever access these bytes
        // atomically, so a shared reference to an atomic is sound.
        unsafe { &*self.map.as_ptr().wrapping_add(off).cast::<AtomicU64>() }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= self.map.len());
        // SAFETY: as in `u64_at`, for a 4-aligned offset.
        unsafe { &*self.map.as_ptr().wrapping_add(off).cast::<AtomicU32>() }
    }

    /// The packed current version, or 0 before the first publish.
    pub(crate) fn current(&self) -> &AtomicU64 {
        self.u64_at(OFF_CURRENT)
    }

    /// How many buffer files the writer has created (they are `0..created`).
    pub(crate) fn created(&self) -> &AtomicU64 {
        self.u64_at(OFF_CREATED)
    }

    /// The live writer's owner word, 0 when no writer is attached.
    pub(crate) fn writer(&self) -> &AtomicU64 {
        self.u64_at(OFF_WRITER)
    }

    /// One more than the highest slot index any reader has claimed: the
    /// writer scans only slots below it.
    pub(crate) fn slots_used(&self) -> &AtomicU64 {
        self.u64_at(OFF_SLOTS_USED)
    }

    /// Futex word: the low 32 bits of the current sequence number.
    pub(crate) fn notify(&self) -> &AtomicU32 {
        self.u32_at(OFF_NOTIFY)
    }

    /// Number of readers blocked in a wait, so a publish without waiters
    /// makes no wake-up system call.
    pub(crate) fn waiters(&self) -> &AtomicU32 {
        self.u32_at(OFF_WAITERS)
    }

    pub(crate) fn descriptor(&self, buffer: u32) -> Descriptor<'_> {
        assert!(buffer < self.geometry.max_buffers);
        let base = OFF_DESCRIPTORS + DESCRIPTOR_STRIDE * buffer as usize;
        Descriptor {
            seq: self.u64_at(base),
            len: self.u64_at(base + 8),
            crc: self.u64_at(base + 16),
        }
    }

    pub(crate) fn slot(&self, index: u32) -> Slot<'_> {
        assert!(index < self.geometry.slots);
        let base = self.geometry.slots_offset() + SLOT_STRIDE * index as usize;
        Slot {
            owner: self.u64_at(base),
            pin: self.u64_at(base + 8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_damage() {
        let g = Geometry {
            slots: 8,
            max_buffers: 4,
        };
        let h = encode_header(g, 42);
        let p = Path::new("x");
        assert_eq!(decode_header(p, &h, g.file_len()).unwrap(), g);
        assert!(matches!(
            decode_header(p, &h, g.file_len() - 1),
            Err(OpenError::Truncated { .. })
        ));
        assert!(matches!(
            decode_header(p, &h[..10], 10),
            Err(OpenError::Truncated { .. })
        ));
        for byte in 0..HEADER_CHECKED_LEN + 4 {
            let mut bad = h;
            bad[byte] ^= 0x40;
            assert!(decode_header(p, &bad, g.file_len()).is_err(), "byte {byte}");
        }
        let mut other = h;
        other[OFF_LAYOUT..OFF_LAYOUT + 4].copy_from_slice(&2u32.to_ne_bytes());
        assert!(matches!(
            decode_header(p, &other, g.file_len()),
            Err(OpenError::IncompatibleLayout { found: 2, .. })
        ));
    }

    #[test]
    fn offsets_do_not_overlap() {
        let g = Geometry {
            slots: 3,
            max_buffers: 2,
        };
        const { assert!(OFF_CURRENT >= 64 && OFF_NOTIFY >= OFF_SLOTS_USED + 8) };
        const { assert!(OFF_DESCRIPTORS >= OFF_WAITERS + 4) };
        assert_eq!(g.slots_offset(), OFF_DESCRIPTORS + 2 * DESCRIPTOR_STRIDE);
        assert_eq!(g.file_len(), (g.slots_offset() + 3 * SLOT_STRIDE) as u64);
    }
}
