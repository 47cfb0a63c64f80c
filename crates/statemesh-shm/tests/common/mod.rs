//! Shared helpers of the integration tests: a value type whose integrity a
//! reader can check, and the helper binary that plays the other process.

#![allow(dead_code, unreachable_pub)]

mod stamped;

// `pub(crate)`, as the helper binary includes the file too; unlike a `pub`
// one, such a re-export counts as unused in the tests that do not use it.
#[allow(unused_imports)]
pub(crate) use stamped::{ArchivedStamped, Stamped, check};

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The helper binary (`src/bin/helper.rs`): the other processes of the
/// multi-process tests, one role per subcommand.
pub const HELPER: &str = env!("CARGO_BIN_EXE_statemesh-shm-helper");

/// Starts the helper as `role` on region `name` in `dir`, with the role's
/// further `args`. Its stdin stays open while the returned `Child` lives:
/// the roles that hold on until killed also end when it closes, so a test
/// that fails before its kill leaves no process behind.
pub fn spawn_helper(role: &str, dir: &Path, name: &str, args: &[&str]) -> Child {
    Command::new(HELPER)
        .arg(role)
        .arg(dir)
        .arg(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the helper")
}

/// Kills `child` with SIGKILL and reaps it, checking that it was still
/// running until then: a helper that failed early has not tested anything.
pub fn kill(child: &mut Child) {
    use std::os::unix::process::ExitStatusExt;
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    assert_eq!(status.signal(), Some(9), "the child ended before the kill");
}

/// A fresh directory for one test's regions, on tmpfs where there is one.
pub fn test_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir in /dev/shm")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}

/// Reads lines from a child's stdout until one starts with `prefix`, and
/// returns it. Unbuffered, a byte at a time: what the child prints after it
/// stays in the pipe for the caller.
#[allow(clippy::unbuffered_bytes)]
pub fn wait_for_line(child: &mut Child, prefix: &str) -> String {
    use std::io::Read;
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut line = Vec::new();
    for byte in stdout.bytes() {
        let byte = byte.expect("read the child's stdout");
        if byte != b'\n' {
            line.push(byte);
            continue;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        if text.starts_with(prefix) {
            return text;
        }
        line.clear();
    }
    panic!("the child exited before printing {prefix:?}");
}
