//! `statemesh-cache-helper`: the child process of the crash test
//! (`tests/crash.rs`), not a tool for users. Its one role persists objects
//! into a file store until it is killed with SIGKILL:
//!
//! ```text
//! statemesh-cache-helper persister DIR
//! ```
//!
//! After each persist returns it prints `@persisted I LEN KEY`: object `I`,
//! `LEN` bytes as the tests' `object(I, LEN)` makes them, is in location
//! `crash` under `KEY`. Errors go to stderr with exit status 1; bad
//! arguments print the usage and exit with status 2.

use statemesh_cache::{FsStore, Location, Pool, Raw};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

// The test recomputes each object's bytes with this same function.
#[path = "../../tests/common/object.rs"]
mod object;

const USAGE: &str = "usage: statemesh-cache-helper persister DIR";

fn main() -> ExitCode {
    // `args_os`: a directory name need not be UTF-8.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match (args.first().and_then(|a| a.to_str()), args.get(1..)) {
        (Some("persister"), Some([dir])) => persister(Path::new(dir)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("statemesh-cache-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// From a few bytes to 256 KiB, so the kill lands in writes of all sizes.
fn size(i: u64) -> usize {
    (1usize << (i % 19)) + (i as usize * 37) % 1000
}

/// Persists objects until killed (it never returns `Ok`).
fn persister(dir: &Path) -> Result<(), String> {
    let store =
        FsStore::open(dir).map_err(|e| format!("opening the store in {}: {e}", dir.display()))?;
    // A small budget, and every other object waits for the evictor first:
    // many are then persisted from their spilled blob (a link and a sync)
    // rather than from memory (an encode and a write), and the kill can
    // land in either path.
    let pool: Pool<Vec<u8>> =
        Pool::new(store, Raw, 64 << 10, Vec::len).map_err(|e| format!("starting the pool: {e}"))?;
    let location = Location::new("crash").map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    // Dropping a handle deletes an object's spilled blob; kept alive, the
    // spill area stays busy until the kill, for the store's next start to
    // clean up.
    let mut keep = Vec::new();
    for i in 0.. {
        let len = size(i);
        let h = pool
            .insert(object::object(i, len))
            .map_err(|e| format!("inserting object {i}: {e}"))?;
        if i % 2 == 1 {
            pool.wait_idle();
        }
        h.blocking_persist(&location)
            .map_err(|e| format!("persisting object {i}: {e}"))?;
        // Announced only once the persist has returned: the test holds the
        // store to every object announced.
        writeln!(out, "@persisted {i} {len} {}", h.key())
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing to stdout: {e}"))?;
        keep.push(h);
    }
    Ok(())
}
