//! Reading what recovery decides on: the metadata and each segment, whole.
//! Nothing here writes.

use crate::error::OpenError;
use crate::meta::{self, Loaded, MetaProblem};
use crate::record::Salt;
use crate::scan::{self, Scan, Stop};
use crate::segment::{self, HeaderProblem};
use crate::storage::{Storage, StorageFile};
use std::io;
use std::path::PathBuf;

/// A segment read by recovery.
pub(crate) struct Scanned<F> {
    pub(crate) first: u64,
    pub(crate) name: String,
    pub(crate) file: F,
    pub(crate) capacity: u64,
    pub(crate) salt: Salt,
    /// The file's length when read.
    pub(crate) len: u64,
    pub(crate) scan: Scan,
}

pub(super) fn io_error<S: Storage>(
    storage: &S,
    name: &str,
) -> impl Fn(io::Error) -> OpenError + use<S> {
    let path = storage.path_of(name);
    move |source| OpenError::Io {
        path: path.clone(),
        source,
    }
}

/// Maps a segment header problem to the open error naming the file.
fn header_error(path: PathBuf, problem: HeaderProblem) -> OpenError {
    match problem {
        HeaderProblem::BadMagic => OpenError::BadMagic { path },
        HeaderProblem::Version(found) => OpenError::UnsupportedVersion {
            path,
            found,
            supported: segment::FORMAT_VERSION,
        },
        HeaderProblem::Short => OpenError::CorruptHeader {
            path,
            detail: "shorter than a segment header".into(),
        },
        HeaderProblem::Checksum => OpenError::CorruptHeader {
            path,
            detail: "header checksum mismatch".into(),
        },
        HeaderProblem::FirstIndex(found) => OpenError::CorruptHeader {
            path,
            detail: format!("header says the segment starts at {found}, its name disagrees"),
        },
        HeaderProblem::Reserved => OpenError::CorruptHeader {
            path,
            detail: "bytes 40..64 of the header are not zero".into(),
        },
        HeaderProblem::Capacity(capacity) => OpenError::CorruptHeader {
            path,
            detail: format!(
                "header says the segment was created with {capacity} bytes, outside {}..={}",
                segment::SEGMENT_HEADER_LEN,
                segment::MAX_CAPACITY
            ),
        },
    }
}

fn read_all<F: StorageFile>(file: &F, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to read"))?;
    let mut bytes = vec![0u8; len];
    file.read_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// Reads segment `first` whole and scans it.
pub(crate) fn read_segment<S: Storage>(
    storage: &S,
    first: u64,
) -> Result<Scanned<S::File>, OpenError> {
    let name = segment::file_name(first);
    let err = io_error(storage, &name);
    let file = storage.open(&name, false).map_err(&err)?;
    let len = file.size().map_err(&err)?;
    let bytes = read_all(&file, len).map_err(&err)?;
    let header = segment::parse_header(&bytes, first)
        .map_err(|p| header_error(storage.path_of(&name), p))?;
    let salt = Salt::new(header.salt);
    let scan = scan::scan(&bytes, first, salt);
    Ok(Scanned {
        first,
        name,
        file,
        capacity: header.capacity,
        salt,
        len,
        scan,
    })
}

/// The highest index segment `first` shows the log held, for reporting what
/// a repair drops: what its chain and the items after it show, or, if it
/// cannot be read, the index before it.
pub(super) fn evidence<S: Storage>(storage: &S, first: u64) -> Option<u64> {
    let before = first.checked_sub(1);
    let Ok(s) = read_segment(storage, first) else {
        return before;
    };
    let chain = s.scan.next.checked_sub(1).filter(|&l| l >= first);
    let after = match s.scan.stop {
        Stop::Garbage(a) => a.last_index,
        Stop::Clean | Stop::End => None,
    };
    chain.max(after).max(before)
}

/// Reads the metadata file; its problems as the open errors naming it.
pub(crate) fn load_meta<F: StorageFile>(file: &F, path: PathBuf) -> Result<Loaded, OpenError> {
    meta::load(file).map_err(|p| match p {
        MetaProblem::Io(source) => OpenError::Io { path, source },
        MetaProblem::Corrupt(detail) => OpenError::CorruptMeta {
            path,
            detail: detail.into(),
        },
        MetaProblem::Version(found) => OpenError::UnsupportedVersion {
            path,
            found,
            supported: meta::FORMAT_VERSION,
        },
    })
}
