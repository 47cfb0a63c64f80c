//! [`FsStore`]: one file per blob under sharded directories.
//!
//! ```text
//! ROOT/LOCK                                   held while the store is open
//! ROOT/spill/<2 hex>/<key>.blob               spilled: not synced, deleted at start
//! ROOT/persist/<location>/<2 hex>/<key>.blob  persisted: durable
//! ROOT/persist/<location>/<2 hex>/<key>.<n>.blob.tmp   a persist in progress
//! ```

use crate::blob;
use crate::error::StoreError;
use crate::key::Key;
use crate::store::{Listing, Location, Place, Store, is_shard_name};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LOCK_FILE: &str = "LOCK";
/// How long `open` retries a held lock before calling it taken.
const LOCK_GRACE: Duration = Duration::from_millis(200);
const SPILL_DIR: &str = "spill";
const PERSIST_DIR: &str = "persist";
const BLOB_EXT: &str = ".blob";
const TMP_EXT: &str = ".blob.tmp";

/// What [`FsStore::open`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Startup {
    /// Spilled blobs of an earlier process, deleted.
    pub spills_removed: usize,
    /// Persists that an earlier process did not finish (`*.blob.tmp`),
    /// deleted: their persist call never returned.
    pub unfinished_removed: usize,
    /// Files the store did not write. Reported, never deleted.
    pub unknown: Vec<PathBuf>,
}

/// A store on a local file system: one file per blob, under 256 shard
/// directories per place so that no directory grows too large.
///
/// A persisted blob is written to a temporary file, synced, renamed into
/// place, and its directory synced: once [`Store::write`] returns it
/// survives a crash or power loss, and a crash before then leaves only a
/// temporary file, which the next [`FsStore::open`] deletes.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    startup: Startup,
    // Held open for the lock; released when the store drops or the process dies.
    _lock: File,
}

impl FsStore {
    /// Opens (creating if needed) the store in `root`, locks it against
    /// other stores, deletes spilled blobs and unfinished persists left by
    /// an earlier process, and reports files it does not know.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if another store has `root` open; an I/O
    /// failure otherwise.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        create_dirs(&root, &root.join(SPILL_DIR))?;
        create_dirs(&root, &root.join(PERSIST_DIR))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io("open", &lock_path, e))?;
        // A store dropped a moment ago may still be locked through a copy of
        // its descriptor in a child this process is spawning (between `fork`
        // and `exec`); that passes within milliseconds, a live owner does not.
        let deadline = Instant::now() + LOCK_GRACE;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path: root }),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(StoreError::io("lock", lock_path, e));
                }
            }
        }
        let mut startup = Startup::default();
        clean_spills(&root.join(SPILL_DIR), &mut startup)?;
        clean_persisted(&root.join(PERSIST_DIR), &mut startup)?;
        for entry in read_dir(&root)? {
            let name = entry.file_name();
            if ![LOCK_FILE, SPILL_DIR, PERSIST_DIR]
                .iter()
                .any(|n| name == *n)
            {
                startup.unknown.push(entry.path());
            }
        }
        startup.unknown.sort();
        Ok(FsStore {
            root,
            startup,
            _lock: lock,
        })
    }

    /// What opening the store found and did.
    pub fn startup(&self) -> &Startup {
        &self.startup
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory that holds `location`'s blobs in a store rooted at
    /// `root` (for a program that sizes or removes a whole location).
    pub fn location_dir(root: &Path, location: &Location) -> PathBuf {
        root.join(PERSIST_DIR).join(location.as_str())
    }

    fn place_dir(&self, place: Place<'_>) -> PathBuf {
        match place {
            Place::Spill => self.root.join(SPILL_DIR),
            Place::Persisted(l) => Self::location_dir(&self.root, l),
        }
    }

    /// The blob file of `key` in `place`.
    pub fn path_of(&self, place: Place<'_>, key: Key) -> PathBuf {
        self.place_dir(place)
            .join(key.shard())
            .join(format!("{key}{BLOB_EXT}"))
    }
}

impl Store for FsStore {
    fn write(&self, place: Place<'_>, key: Key, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(place, key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let header = blob::header(bytes);
        match place {
            Place::Spill => {
                create_dirs(&self.root, &dir)?;
                let written = (|| {
                    let mut f = File::create(&path)?;
                    f.write_all(&header)?;
                    f.write_all(bytes)
                })();
                if let Err(e) = written {
                    let _ = fs::remove_file(&path);
                    return Err(StoreError::io("write", path, e));
                }
                Ok(())
            }
            Place::Persisted(_) => {
                if path.exists() {
                    return Ok(());
                }
                create_dirs(&self.root, &dir)?;
                let tmp = dir.join(tmp_name(key));
                let written = (|| {
                    let mut f = File::create(&tmp)?;
                    f.write_all(&header)?;
                    f.write_all(bytes)?;
                    f.sync_data()
                })();
                if let Err(e) = written {
                    let _ = fs::remove_file(&tmp);
                    return Err(StoreError::io("write", tmp, e));
                }
                if let Err(e) = fs::rename(&tmp, &path) {
                    let _ = fs::remove_file(&tmp);
                    return Err(StoreError::io("rename", tmp, e));
                }
                sync_dir(&dir)
            }
        }
    }

    /// A hard link where the file system allows one (no bytes copied),
    /// else a read and a write.
    fn copy(&self, from: Place<'_>, to: Place<'_>, key: Key) -> Result<(), StoreError> {
        let source = self.path_of(from, key);
        let target = self.path_of(to, key);
        if matches!(to, Place::Persisted(_)) && target.exists() {
            return Ok(());
        }
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        create_dirs(&self.root, &dir)?;
        let linked = (|| {
            if matches!(to, Place::Persisted(_)) {
                // Spilled blobs are written without a sync: make the bytes
                // durable before a durable name points at them.
                File::open(&source)?.sync_data()?;
            }
            fs::hard_link(&source, &target)
        })();
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    key,
                    place: from.to_string(),
                });
            }
            // Another file system, or links not supported.
            Err(_) => {
                let bytes = self.read(from, key)?;
                return self.write(to, key, &bytes);
            }
        }
        match to {
            Place::Persisted(_) => sync_dir(&dir),
            Place::Spill => Ok(()),
        }
    }

    fn read(&self, place: Place<'_>, key: Key) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(place, key);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    key,
                    place: place.to_string(),
                });
            }
            Err(e) => return Err(StoreError::io("open", path, e)),
        };
        let corrupt = |problem: String| StoreError::Corrupt {
            path: path.clone(),
            problem,
        };
        let mut header = [0u8; blob::HEADER_LEN];
        match f.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(corrupt("shorter than a blob header".into()));
            }
            Err(e) => return Err(StoreError::io("read", &path, e)),
        }
        let (len, crc) = blob::parse_header(&header).map_err(corrupt)?;
        let size = f
            .metadata()
            .map_err(|e| StoreError::io("stat", &path, e))?
            .len();
        if size != blob::HEADER_LEN as u64 + len {
            return Err(corrupt(format!(
                "header says {len} payload bytes, file holds {}",
                size.saturating_sub(blob::HEADER_LEN as u64)
            )));
        }
        let mut payload = vec![0u8; len as usize];
        f.read_exact(&mut payload)
            .map_err(|e| StoreError::io("read", &path, e))?;
        if crc32c::crc32c(&payload) != crc {
            return Err(corrupt("payload checksum mismatch".into()));
        }
        Ok(payload)
    }

    fn contains(&self, place: Place<'_>, key: Key) -> Result<bool, StoreError> {
        let path = self.path_of(place, key);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("stat", path, e)),
        }
    }

    fn respill(&self, stale: Key, key: Key, bytes: &[u8]) -> Result<bool, StoreError> {
        let (from, to) = (
            self.path_of(Place::Spill, stale),
            self.path_of(Place::Spill, key),
        );
        // A spilled file persisted since is a hard link of a persisted
        // blob: overwriting it would change that blob. Only a file no
        // location shares is reused.
        let alone = fs::symlink_metadata(&from).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_file() && m.nlink() == 1
        });
        if !alone {
            return self.write(Place::Spill, key, bytes).map(|()| false);
        }
        create_dirs(&self.root, to.parent().unwrap_or(&self.root))?;
        if fs::rename(&from, &to).is_err() {
            // Gone already, or not renamable: a new file after all, and
            // the pool removes the stale one as usual.
            return self.write(Place::Spill, key, bytes).map(|()| false);
        }
        let header = blob::header(bytes);
        let written = (|| {
            let mut f = OpenOptions::new().write(true).truncate(true).open(&to)?;
            f.write_all(&header)?;
            f.write_all(bytes)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&to);
            return Err(StoreError::io("write", to, e));
        }
        Ok(true)
    }

    fn remove(&self, place: Place<'_>, key: Key) -> Result<bool, StoreError> {
        let path = self.path_of(place, key);
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Place::Persisted(_) = place {
                    // A removal that a crash could undo would bring the
                    // object back; sync the directory like a persist does.
                    sync_dir(path.parent().unwrap_or(&self.root))?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove", path, e)),
        }
    }

    fn list(&self, location: &Location) -> Result<Listing, StoreError> {
        let dir = self.place_dir(Place::Persisted(location));
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(StoreError::io("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir {
                listing.unknown.push(entry.path());
            } else if is_shard_name(&name) {
                for file in read_dir(&entry.path())? {
                    let fname = file.file_name();
                    match key_named(&fname.to_string_lossy(), BLOB_EXT, &name) {
                        Some(key) => listing.keys.push(key),
                        // A persist in progress in this process.
                        None if tmp_key(&fname.to_string_lossy(), &name).is_some() => {}
                        None => listing.unknown.push(file.path()),
                    }
                }
            }
            // Other directories are nested locations.
        }
        listing.keys.sort();
        listing.unknown.sort();
        Ok(listing)
    }
}

/// A fresh temporary name for a blob of `key`: `<key>.<n>.blob.tmp`, unique
/// in this process, so two persists of one key never write the same file.
fn tmp_name(key: Key) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{key}.{n:x}{TMP_EXT}")
}

/// The key of a temporary file made by [`tmp_name`] in its shard directory.
fn tmp_key(file: &str, shard: &str) -> Option<Key> {
    let (key, n) = file.strip_suffix(TMP_EXT)?.split_once('.')?;
    let hex = !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| key_named(key, "", shard)).flatten()
}

/// The key of a file named `<key><ext>` in the shard directory of that key.
fn key_named(file: &str, ext: &str, shard: &str) -> Option<Key> {
    let key: Key = file.strip_suffix(ext)?.parse().ok()?;
    (key.shard() == shard).then_some(key)
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    fs::read_dir(dir)
        .and_then(|d| d.collect::<io::Result<Vec<_>>>())
        .map_err(|e| StoreError::io("list", dir, e))
}

fn clean_spills(spill: &Path, startup: &mut Startup) -> Result<(), StoreError> {
    for shard in read_dir(spill)? {
        let name = shard.file_name().to_string_lossy().into_owned();
        if !(is_shard_name(&name) && shard.file_type().is_ok_and(|t| t.is_dir())) {
            startup.unknown.push(shard.path());
            continue;
        }
        for file in read_dir(&shard.path())? {
            let fname = file.file_name().to_string_lossy().into_owned();
            if key_named(&fname, BLOB_EXT, &name).is_some() {
                let path = file.path();
                fs::remove_file(&path).map_err(|e| StoreError::io("remove", path, e))?;
                startup.spills_removed += 1;
            } else {
                startup.unknown.push(file.path());
            }
        }
    }
    Ok(())
}

/// Walks the persisted tree: deletes unfinished persists, reports files
/// that are not blobs.
fn clean_persisted(dir: &Path, startup: &mut Startup) -> Result<(), StoreError> {
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_shard = is_shard_name(&dir_name);
    for entry in read_dir(dir)? {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            clean_persisted(&path, startup)?;
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if in_shard && key_named(&name, BLOB_EXT, &dir_name).is_some() {
            continue;
        }
        if in_shard && tmp_key(&name, &dir_name).is_some() {
            fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
            startup.unfinished_removed += 1;
            continue;
        }
        startup.unknown.push(path);
    }
    Ok(())
}

/// Creates `dir` and any missing parents below `root`, syncing each parent
/// that gained an entry, so that a durable blob's directory is durable too.
fn create_dirs(root: &Path, dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir != root
        && let Some(parent) = dir.parent()
    {
        create_dirs(root, parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io("create directory", dir, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}
