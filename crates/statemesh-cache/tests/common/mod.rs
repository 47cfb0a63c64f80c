//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

mod object;
pub mod trace;

// `pub(crate)`, as the helper binary includes the file too; unlike a `pub`
// one, such a re-export counts as unused in the tests that do not use it.
#[allow(unused_imports)]
pub(crate) use object::object;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the tests run as root (from /proc rather than a libc binding).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap()
}

/// A 64 KiB tmpfs, unmounted on drop: a real file system that fills up.
pub struct TinyFs {
    path: PathBuf,
}

impl TinyFs {
    /// Mounts one at `path`, or says why it cannot (mounting needs root).
    pub fn mount(path: &Path) -> Result<Self, String> {
        if !is_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(path)
            .status()
            .map_err(|e| format!("mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount failed: {status}"));
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Makes `dir` immutable (root ignores mode bits; ext4, XFS, btrfs and
/// tmpfs honour `chattr +i`) or, as another user, read-only; undone on drop.
pub struct ReadOnly {
    dir: PathBuf,
    root: bool,
}

impl ReadOnly {
    pub fn new(dir: &Path) -> Self {
        let root = is_root();
        if root {
            let status = Command::new("chattr").arg("+i").arg(dir).status();
            assert!(status.is_ok_and(|s| s.success()), "chattr +i failed");
        } else {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
        }
        Self {
            dir: dir.to_owned(),
            root,
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.root {
            let _ = Command::new("chattr").arg("-i").arg(&self.dir).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        }
    }
}

/// Where the file store keeps the spilled blob of `key`.
pub fn spill_path(root: &Path, key: statemesh_cache::Key) -> PathBuf {
    let k = key.to_string();
    root.join("spill").join(&k[..2]).join(format!("{k}.blob"))
}

/// Where the file store keeps the blob of `key` persisted in `location`.
pub fn persisted_path(root: &Path, location: &str, key: statemesh_cache::Key) -> PathBuf {
    let k = key.to_string();
    root.join("persist")
        .join(location)
        .join(&k[..2])
        .join(format!("{k}.blob"))
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for e in entries {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files.extend(files_under(&e.path()));
        } else {
            files.push(e.path());
        }
    }
    files
}

/// A store whose spill writes wait at a gate, so a test can hold an
/// eviction in the middle of writing its blob.
pub struct GatedStore {
    pub inner: statemesh_cache::FsStore,
    pub gate: std::sync::Arc<Gate>,
}

#[derive(Default)]
pub struct Gate {
    state: std::sync::Mutex<(bool, usize)>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// A gate that starts closed.
    pub fn closed() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::default())
    }

    pub fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.changed.notify_all();
    }

    /// Waits until `n` writes have reached the gate.
    pub fn wait_for_writers(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        while s.1 < n {
            s = self.changed.wait(s).unwrap();
        }
    }

    /// Counts one caller at the gate and waits until it opens.
    pub fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        self.changed.notify_all();
        while !s.0 {
            s = self.changed.wait(s).unwrap();
        }
    }
}

impl statemesh_cache::Store for GatedStore {
    fn write(
        &self,
        place: statemesh_cache::Place<'_>,
        key: statemesh_cache::Key,
        bytes: &[u8],
    ) -> Result<(), statemesh_cache::StoreError> {
        if matches!(place, statemesh_cache::Place::Spill) {
            self.gate.pass();
        }
        self.inner.write(place, key, bytes)
    }
    fn read(
        &self,
        place: statemesh_cache::Place<'_>,
        key: statemesh_cache::Key,
    ) -> Result<Vec<u8>, statemesh_cache::StoreError> {
        self.inner.read(place, key)
    }
    fn contains(
        &self,
        place: statemesh_cache::Place<'_>,
        key: statemesh_cache::Key,
    ) -> Result<bool, statemesh_cache::StoreError> {
        self.inner.contains(place, key)
    }
    fn remove(
        &self,
        place: statemesh_cache::Place<'_>,
        key: statemesh_cache::Key,
    ) -> Result<bool, statemesh_cache::StoreError> {
        self.inner.remove(place, key)
    }
    fn list(
        &self,
        location: &statemesh_cache::Location,
    ) -> Result<statemesh_cache::Listing, statemesh_cache::StoreError> {
        self.inner.list(location)
    }
}
