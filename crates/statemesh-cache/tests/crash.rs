//! A process persisting objects is killed with SIGKILL: every object whose
//! persist returned is readable and intact afterwards, and the store's next
//! start cleans up what the process left half done.

mod common;

use common::object;
use statemesh_cache::{FsStore, Key, Location, Place, Store};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// The child: persists objects until killed, announcing each one whose
/// persist returned (`src/bin/helper.rs`).
const HELPER: &str = env!("CARGO_BIN_EXE_statemesh-cache-helper");

#[test]
fn objects_persisted_before_a_sigkill_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    for run in 0..3 {
        let mut child = Command::new(HELPER)
            .arg("persister")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let wanted = 40 + run * 17;
        let mut acknowledged: Vec<(u64, usize, Key)> = Vec::new();
        // Kept open until the kill: a closed pipe would end the helper
        // with an error before the SIGKILL could land.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in &mut lines {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("@persisted ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split(' ').collect();
            let [i, len, key] = fields[..] else {
                panic!("run {run}: bad line from the helper: {line:?}");
            };
            let (Ok(i), Ok(len), Ok(key)) = (i.parse(), len.parse(), key.parse()) else {
                panic!("run {run}: bad line from the helper: {line:?}");
            };
            acknowledged.push((i, len, key));
            if acknowledged.len() == wanted {
                break;
            }
        }
        if acknowledged.len() < wanted {
            // Its output ended early: the helper failed (its stderr says why).
            let status = child.wait().unwrap();
            panic!(
                "run {run}: the helper stopped after {} objects: {status}",
                acknowledged.len()
            );
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "run {run}: {status}");
        drop(lines);
        let store = FsStore::open(dir.path()).unwrap();
        let location = Location::new("crash").unwrap();
        let listed = store.list(&location).unwrap();
        assert!(listed.unknown.is_empty(), "{:?}", listed.unknown);
        for (i, len, key) in &acknowledged {
            let bytes = store
                .read(Place::Persisted(&location), *key)
                .unwrap_or_else(|e| panic!("run {run}: object {i} lost: {e}"));
            assert_eq!(bytes, object(*i, *len), "run {run}: object {i}");
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
