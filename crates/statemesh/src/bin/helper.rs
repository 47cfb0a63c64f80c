//! `statemesh-helper`: the reader process of the local-read tests
//! (`tests/local.rs`), not a tool for users.
//!
//! ```text
//! statemesh-helper local-reader DIR COLLECTION WRITES
//! ```
//!
//! `local-reader` opens the region in which a node publishes map
//! `COLLECTION` (of `String` to `u64`) in `DIR`, prints `ready` once the
//! first version is there, and reads until it sees write `WRITES`, checking
//! that every version is whole and newer than the one before; then prints
//! `reader saw V versions in R reads, last L`. Write `i` of the test puts
//! `"n"` = `i` and `"k<i>"` = `i` in one command.
//!
//! A failed check or error prints why on stderr and exits with status 1;
//! bad arguments print the usage and exit with status 2.

use statemesh::Map;
use statemesh::local::{self, LocalError, LocalOptions};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: statemesh-helper local-reader DIR COLLECTION WRITES";

/// How long the whole read may take, so that a reader whose test is gone
/// ends on its own.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    // `args_os`: a directory name need not be UTF-8.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let strings: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    let result = match strings[..] {
        [Some("local-reader"), _, Some(collection), Some(writes)] => match writes.parse() {
            Ok(writes) => local_reader(Path::new(&args[1]), collection, writes),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("statemesh-helper local-reader: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn local_reader(dir: &Path, collection: &str, writes: u64) -> Result<(), String> {
    let o = LocalOptions::new().dir(dir);
    let deadline = Instant::now() + DEADLINE;
    // The node creates its region only once it has started: until then,
    // not finding it is no error.
    let mut local = loop {
        let found = local::find(collection, &o).map_err(|e| e.to_string())?;
        let opened = found
            .last()
            .ok_or_else(|| format!("no region for {collection:?} in {}", dir.display()))
            .and_then(|r| {
                local::open_with::<Map<String, u64>>(&r.name, &o).map_err(|e| e.to_string())
            });
        match opened {
            Ok(l) => break l,
            Err(e) if Instant::now() >= deadline => return Err(format!("never published: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    local
        .wait_for(1, Duration::from_secs(30))
        .map_err(|e| format!("waiting for the first version: {e}"))?;
    // The test starts writing once it reads this.
    println!("ready");
    let (mut versions, mut last_version, mut last_n, mut reads) = (0u64, 0u64, 0u64, 0u64);
    while last_n < writes {
        if Instant::now() >= deadline {
            return Err(format!("stuck at write {last_n} of {writes}"));
        }
        let read = match local.read() {
            Ok(r) => r,
            Err(LocalError::Read {
                source: statemesh_shm::ReadError::NothingPublished { .. },
                ..
            }) => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(format!("read: {e}")),
        };
        reads += 1;
        let version = read.version();
        if version < last_version {
            return Err(format!("went back from {last_version} to {version}"));
        }
        if version == last_version {
            continue;
        }
        // A whole version holds exactly "n" and k1..=kn, and n never
        // decreases.
        let get = |key: &str| {
            read.get(&key.to_owned())
                .map_err(|e| format!("version {version}: reading {key:?}: {e}"))
        };
        let n = get("n")?.unwrap_or(0);
        if n < last_n {
            return Err(format!("n went back from {last_n} to {n} at {version}"));
        }
        let len = read.len() as u64;
        if len != n + u64::from(n > 0) {
            return Err(format!("torn at {version}: {len} keys with n = {n}"));
        }
        for i in 1..=n {
            let key = format!("k{i}");
            let value = get(&key)?;
            if value != Some(i) {
                return Err(format!("torn at {version}: {key} is {value:?}"));
            }
        }
        (last_version, last_n) = (version, n);
        versions += 1;
    }
    println!("reader saw {versions} versions in {reads} reads, last {last_version}");
    Ok(())
}
