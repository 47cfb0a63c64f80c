//! A storage that keeps its files in memory.

use crate::storage::{Storage, StorageFile};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Files in memory: nothing survives the process, and syncs cost nothing.
///
/// For tests, and for measuring what the disk costs: a log over it does all
/// the work of a log on disk (records, checksums, the index, group commit)
/// except the writes and syncs. A clone is the same directory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<HashMap<String, MemoryFile>>>,
}

/// A file of a [`MemoryStorage`].
#[derive(Debug, Clone, Default)]
pub struct MemoryFile {
    bytes: Arc<RwLock<Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty directory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every file as it is now, sharing nothing with this
    /// directory: what a process crash at this moment would leave behind
    /// (writes not yet synced are in the page cache, which survives one).
    #[must_use]
    pub fn snapshot(&self) -> Self {
        Self::from_contents(self.contents())
    }

    /// Every file's name and bytes, in name order.
    #[must_use]
    pub fn contents(&self) -> BTreeMap<String, Vec<u8>> {
        self.files()
            .iter()
            .map(|(name, file)| (name.clone(), file.read().clone()))
            .collect()
    }

    /// A directory holding exactly these files.
    #[must_use]
    pub fn from_contents(contents: BTreeMap<String, Vec<u8>>) -> Self {
        let files = contents
            .into_iter()
            .map(|(name, bytes)| {
                let file = MemoryFile {
                    bytes: Arc::new(RwLock::new(bytes)),
                };
                (name, file)
            })
            .collect();
        Self {
            files: Arc::new(Mutex::new(files)),
        }
    }

    fn files(&self) -> MutexGuard<'_, HashMap<String, MemoryFile>> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

impl Storage for MemoryStorage {
    type File = MemoryFile;

    fn open(&self, name: &str, create: bool) -> io::Result<MemoryFile> {
        let mut files = self.files();
        match files.get(name) {
            Some(f) => Ok(f.clone()),
            None if create => Ok(files.entry(name.to_owned()).or_default().clone()),
            None => Err(not_found(name)),
        }
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.files()
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files();
        let file = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_owned(), file);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files().keys().cloned().collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }

    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from("(memory)").join(name)
    }
}

impl MemoryFile {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<u8>> {
        self.bytes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<u8>> {
        self.bytes.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn span(offset: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
    let start =
        usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(start..end)
}

impl StorageFile for MemoryFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let range = span(offset, buf.len())?;
        let bytes = self.read();
        let from = bytes
            .get(range)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(from);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let range = span(offset, buf.len())?;
        let mut bytes = self.write();
        if bytes.len() < range.end {
            bytes.resize(range.end, 0);
        }
        bytes[range].copy_from_slice(buf);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.read().len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = span(len, 0)?.start;
        self.write().resize(len, 0);
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let len = span(len, 0)?.start;
        let mut bytes = self.write();
        if bytes.len() < len {
            bytes.resize(len, 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Wal, WalOptions};

    #[test]
    fn a_log_in_memory_reads_back_what_it_wrote_and_reopens() {
        let storage = MemoryStorage::new();
        let options = || WalOptions::new().segment_size(4096);
        let wal = Wal::open_with(storage.clone(), options()).unwrap();
        for i in 0..100u32 {
            wal.append(i.to_le_bytes().to_vec())
                .unwrap()
                .wait()
                .unwrap();
        }
        wal.truncate(90).unwrap();
        drop(wal);
        // The same directory, opened again, recovers like one on disk.
        let wal = Wal::open_with(storage, options()).unwrap();
        assert_eq!(wal.next_index(), 90);
        let at = wal.first_index() + 41;
        assert_eq!(wal.get(at).unwrap(), Some(41u32.to_le_bytes().to_vec()));
    }
}
