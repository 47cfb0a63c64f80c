//! Shared helpers of the integration tests: a value type whose integrity a
//! reader can check, and running a role of the test binary as a child process.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A snapshot whose parts all derive from `seq`: any mix of two snapshots, or
/// any byte overwritten mid-read, fails [`check`].
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct Stamped {
    pub seq: u64,
    pub payload: Vec<u64>,
    pub sum: u64,
}

impl Stamped {
    /// A value of a length that varies with `seq` (1 to `max_len` words), so
    /// buffers grow and shrink while readers read.
    pub fn new(seq: u64, max_len: usize) -> Self {
        let len = 1 + (seq.wrapping_mul(2_654_435_761) % max_len as u64) as usize;
        let payload: Vec<u64> = (0..len as u64).map(|i| mix(seq, i)).collect();
        let sum = payload.iter().fold(seq, |a, &b| a.wrapping_add(b));
        Self { seq, payload, sum }
    }
}

fn mix(seq: u64, i: u64) -> u64 {
    (seq ^ (i << 32))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

/// Checks an archived `Stamped` in place. Returns its `seq`.
pub fn check(value: &ArchivedStamped) -> Result<u64, String> {
    let seq = value.seq.to_native();
    let mut sum = seq;
    for (i, word) in value.payload.iter().enumerate() {
        let word = word.to_native();
        if word != mix(seq, i as u64) {
            return Err(format!(
                "seq {seq}: word {i} is {word:#x}, not from this snapshot"
            ));
        }
        sum = sum.wrapping_add(word);
    }
    if sum != value.sum.to_native() {
        return Err(format!("seq {seq}: sum mismatch"));
    }
    Ok(seq)
}

/// The environment variable that selects a child role.
pub const ROLE: &str = "STATEMESH_SHM_TEST_ROLE";

/// The role this process was started for, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Starts this test binary again as a child that runs only `entry` (a test
/// function name in the same file) with `role` and `args` in its environment.
pub fn spawn_child(entry: &str, role: &str, dir: &Path, args: &[String]) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("STATEMESH_SHM_TEST_DIR", dir)
        .env("STATEMESH_SHM_TEST_ARGS", args.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// The directory and arguments a child was started with.
pub fn child_env() -> (std::path::PathBuf, Vec<String>) {
    let dir = std::env::var_os("STATEMESH_SHM_TEST_DIR")
        .expect("child dir")
        .into();
    let args = std::env::var("STATEMESH_SHM_TEST_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (dir, args)
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

/// Reads lines from a child's stdout until one contains `prefix` (the test
/// harness may print its own text before it on the same line), and returns
/// the line from `prefix` on.
pub fn wait_for_line(child: &mut Child, prefix: &str) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "child exited before printing {prefix:?}");
        if let Some(at) = line.find(prefix) {
            // Hand the rest of the output back to the caller.
            child.stdout = Some(reader.into_inner());
            return line[at..].trim_end().to_owned();
        }
    }
}
