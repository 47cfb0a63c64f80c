//! A process persisting objects is killed with SIGKILL: every object whose
//! persist returned is readable and intact afterwards, and the store's next
//! start cleans up what the process left half done.

mod common;

use common::object;
use statemesh_cache::{FsStore, Key, Location, Place, Pool, Raw, Store};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const ROLE: &str = "STATEMESH_CACHE_CRASH_ROLE";
const DIR: &str = "STATEMESH_CACHE_CRASH_DIR";

fn size(i: u64) -> usize {
    // From a few bytes to 256 KiB, so the kill lands in writes of all sizes.
    (1usize << (i % 19)) + (i as usize * 37) % 1000
}

/// Child role: persist objects until killed, announcing each one whose
/// persist returned. The budget is small and every other object waits for
/// the evictor first, so many are persisted from their spilled blob (a link
/// and a sync) rather than from memory (an encode and a write).
#[test]
fn child_persister() {
    if std::env::var(ROLE).as_deref() != Ok("persister") {
        return;
    }
    let dir = std::env::var(DIR).unwrap();
    let pool: Pool<Vec<u8>> =
        Pool::new(FsStore::open(&dir).unwrap(), Raw, 64 << 10, Vec::len).unwrap();
    let location = Location::new("crash").unwrap();
    let mut out = std::io::stdout().lock();
    let mut keep = Vec::new();
    for i in 0.. {
        let h = pool.insert(object(i, size(i)));
        if i % 2 == 1 {
            pool.wait_idle();
        }
        h.blocking_persist(&location).unwrap();
        writeln!(out, "@persisted {i} {}", h.key()).unwrap();
        out.flush().unwrap();
        keep.push(h);
    }
}

#[test]
fn objects_persisted_before_a_sigkill_survive_it() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for run in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_persister",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, "persister")
            .env(DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acknowledged: Vec<(u64, Key)> = Vec::new();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("@persisted ") else {
                continue;
            };
            let (i, key) = rest.split_once(' ').unwrap();
            acknowledged.push((i.parse().unwrap(), key.parse().unwrap()));
            if acknowledged.len() == 40 + run * 17 {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let location = Location::new("crash").unwrap();
        let listed = store.list(&location).unwrap();
        assert!(listed.unknown.is_empty(), "{:?}", listed.unknown);
        for (i, key) in &acknowledged {
            let bytes = store
                .read(Place::Persisted(&location), *key)
                .unwrap_or_else(|e| panic!("run {run}: object {i} lost: {e}"));
            assert_eq!(bytes, object(*i, size(*i)), "run {run}: object {i}");
            assert!(listed.keys.contains(key));
        }
        // Every blob that is there is whole (a persist that never returned
        // leaves a temporary file, removed at start, or a complete blob).
        for key in &listed.keys {
            store.read(Place::Persisted(&location), *key).unwrap();
        }
        assert_eq!(store.startup().unknown, Vec::<std::path::PathBuf>::new());
        assert!(common::files_under(&dir.path().join("spill")).is_empty());
    }
}
