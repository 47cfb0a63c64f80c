//! `statemesh-shm-helper`: the other processes of the multi-process tests
//! (`tests/multiprocess.rs`, `tests/bad_input.rs`), not a tool for users.
//! The first argument picks the role; each one works on region `NAME` in
//! directory `DIR` and publishes or reads the tests' `Stamped` values:
//!
//! ```text
//! statemesh-shm-helper stress-reader   DIR NAME LAST
//! statemesh-shm-helper holding-reader  DIR NAME
//! statemesh-shm-helper second-writer   DIR NAME
//! statemesh-shm-helper crashing-writer DIR NAME VERSIONS
//! statemesh-shm-helper full-writer     DIR NAME
//! ```
//!
//! * `stress-reader` reads continuously, checking every snapshot, until it
//!   has seen version `LAST`; prints `@ready` once attached and
//!   `reads=N distinct=M` at the end.
//! * `holding-reader` reads the current version, prints `@holding VERSION`
//!   and keeps the read guard until killed or until its stdin closes.
//! * `second-writer` tries to become the region's writer: exit status 3 if
//!   refused because another writer holds it, 0 if it became the writer.
//! * `crashing-writer` publishes versions 1 to `VERSIONS`, prints
//!   `@published VERSIONS` and holds the writer until killed or until its
//!   stdin closes.
//! * `full-writer`, run under a file size limit, checks that a value too
//!   large for it fails with an I/O error that publishes nothing, and prints
//!   `@io-error MESSAGE`.
//!
//! A role that fails prints why on stderr and exits with status 1; bad
//! arguments print the usage and exit with status 2.

use statemesh_shm::{OpenError, Reader, ReaderOptions, WriteError, Writer, WriterOptions};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

// The tests check what this process publishes, and publish what it checks,
// with this same code.
#[path = "../../tests/common/stamped.rs"]
mod stamped;

use stamped::{Stamped, check};

const USAGE: &str = "\
usage: statemesh-shm-helper stress-reader   DIR NAME LAST
       statemesh-shm-helper holding-reader  DIR NAME
       statemesh-shm-helper second-writer   DIR NAME
       statemesh-shm-helper crashing-writer DIR NAME VERSIONS
       statemesh-shm-helper full-writer     DIR NAME";

/// The exit status of `second-writer` when it is refused as it should be:
/// distinct from success and from the failure of anything else.
const REFUSED: u8 = 3;

enum Role {
    StressReader { last: u64 },
    HoldingReader,
    SecondWriter,
    CrashingWriter { versions: u64 },
    FullWriter,
}

fn main() -> ExitCode {
    // `args_os`: a directory name need not be UTF-8.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((role, dir, name)) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (dir, name) = (Path::new(dir), name.as_os_str());
    let result = match role {
        Role::StressReader { last } => stress_reader(dir, name, last),
        Role::HoldingReader => holding_reader(dir, name),
        Role::SecondWriter => second_writer(dir, name),
        Role::CrashingWriter { versions } => crashing_writer(dir, name, versions),
        Role::FullWriter => full_writer(dir, name),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("statemesh-shm-helper {}: {e}", args[0].to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[OsString]) -> Option<(Role, &OsString, &OsString)> {
    let number = |arg: &OsString| arg.to_str()?.parse::<u64>().ok();
    let role = match (args.first()?.to_str()?, args.len()) {
        ("stress-reader", 4) => Role::StressReader {
            last: number(&args[3])?,
        },
        ("holding-reader", 3) => Role::HoldingReader,
        ("second-writer", 3) => Role::SecondWriter,
        ("crashing-writer", 4) => Role::CrashingWriter {
            versions: number(&args[3])?,
        },
        ("full-writer", 3) => Role::FullWriter,
        _ => return None,
    };
    Some((role, &args[1], &args[2]))
}

/// How long a reader waits for the writer's next version before it takes
/// the writer (the test) to be gone.
const STALLED: Duration = Duration::from_secs(60);

fn stress_reader(dir: &Path, name: &OsStr, last: u64) -> Result<ExitCode, String> {
    let mut reader = Reader::<Stamped>::open_wait(
        name,
        ReaderOptions::new().dir(dir).verify_checksum(true),
        Duration::from_secs(30),
    )
    .map_err(|e| format!("opening the region: {e}"))?;
    // The test starts writing only once every reader says this.
    println!("@ready");
    let (mut reads, mut distinct, mut previous) = (0u64, 0u64, 0u64);
    let mut progress = Instant::now();
    while previous != last {
        if progress.elapsed() > STALLED {
            return Err(format!("no new version after {previous} for {STALLED:?}"));
        }
        if reader.version().is_none() {
            reader
                .wait_for_change(Duration::from_secs(1))
                .map_err(|e| format!("waiting for the first version: {e}"))?;
            continue;
        }
        let guard = reader.read().map_err(|e| format!("read failed: {e}"))?;
        let seq = check(&guard).map_err(|e| format!("inconsistent snapshot: {e}"))?;
        let version = guard.version().get();
        if seq != version {
            return Err(format!("snapshot {seq} claims to be version {version}"));
        }
        if seq < previous {
            return Err(format!("went back from {previous} to {seq}"));
        }
        // Whether this reader has seen the version before.
        if guard.is_changed() != (seq != previous) {
            return Err(format!(
                "version {seq} after {previous}: is_changed() is {}",
                guard.is_changed()
            ));
        }
        if seq != previous {
            distinct += 1;
            progress = Instant::now();
        }
        previous = seq;
        reads += 1;
    }
    println!("reads={reads} distinct={distinct}");
    Ok(ExitCode::SUCCESS)
}

fn holding_reader(dir: &Path, name: &OsStr) -> Result<ExitCode, String> {
    let mut reader = Reader::<Stamped>::with_options(name, ReaderOptions::new().dir(dir))
        .map_err(|e| format!("opening the region: {e}"))?;
    let guard = reader.read().map_err(|e| format!("read failed: {e}"))?;
    println!("@holding {}", guard.version().get());
    // The guard pins the version while the test writes and kills this
    // process; it is released only if the test goes away first.
    wait_for_stdin_to_close();
    drop(guard);
    Ok(ExitCode::SUCCESS)
}

fn second_writer(dir: &Path, name: &OsStr) -> Result<ExitCode, String> {
    match Writer::<Stamped>::with_options(name, WriterOptions::new().dir(dir)) {
        Err(OpenError::WriterExists { .. }) => Ok(ExitCode::from(REFUSED)),
        Err(e) => Err(format!("refused for another reason: {e}")),
        Ok(_) => Ok(ExitCode::SUCCESS),
    }
}

fn crashing_writer(dir: &Path, name: &OsStr, versions: u64) -> Result<ExitCode, String> {
    let mut writer = Writer::<Stamped>::with_options(name, WriterOptions::new().dir(dir))
        .map_err(|e| format!("opening the writer: {e}"))?;
    for seq in 1..=versions {
        writer
            .write(&Stamped::new(seq, 256))
            .map_err(|e| format!("writing version {seq}: {e}"))?;
    }
    println!("@published {versions}");
    // Killed while it holds the writer's lock: the test checks that the
    // lock dies with the process.
    wait_for_stdin_to_close();
    Ok(ExitCode::SUCCESS)
}

fn full_writer(dir: &Path, name: &OsStr) -> Result<ExitCode, String> {
    let mut w = Writer::<Stamped>::with_options(name, WriterOptions::new().dir(dir))
        .map_err(|e| format!("opening the writer: {e}"))?;
    w.write(&Stamped::new(1, 8))
        .map_err(|e| format!("writing a small version 1: {e}"))?;
    let mut r = Reader::<Stamped>::with_options(name, ReaderOptions::new().dir(dir))
        .map_err(|e| format!("opening a reader: {e}"))?;
    // 1 MiB of payload cannot be allocated under the test's 128 KiB file
    // size limit.
    let err = match w.write(&Stamped::new(2, 1 << 17)) {
        Ok(p) => {
            return Err(format!(
                "1 MiB was published as version {} (is the file size limited?)",
                p.version.get()
            ));
        }
        Err(e) => e,
    };
    let buffer = format!("{}.buf", name.to_string_lossy());
    if !matches!(&err, WriteError::Io { path, .. } if path.to_string_lossy().contains(&buffer)) {
        return Err(format!("not an I/O error on a buffer file: {err}"));
    }
    match w.version().map(|v| v.get()) {
        Some(1) => {}
        other => {
            return Err(format!(
                "after the failed write, version is {other:?}, not 1"
            ));
        }
    }
    let read = r
        .read()
        .map_err(|e| format!("reading version 1 back: {e}"))?;
    match check(&read) {
        Ok(1) => {}
        other => return Err(format!("reading version 1 back gave {other:?}")),
    }
    drop(read);
    // Small values still publish.
    let published = w
        .write(&Stamped::new(3, 8))
        .map_err(|e| format!("a small write after the failed one: {e}"))?;
    if published.version.get() != 2 {
        return Err(format!(
            "the write after the failed one published version {}, not 2",
            published.version.get()
        ));
    }
    println!("@io-error {err}");
    Ok(ExitCode::SUCCESS)
}

/// Blocks until stdin reaches its end. The tests keep it open as long as
/// they need this process: it closes when the test is gone, whatever became
/// of it.
fn wait_for_stdin_to_close() {
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}
