//! A node started with flags that cannot work together stops at once with
//! one line saying why, instead of starting a cluster that misbehaves.

mod common;

use common::BIN;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a node with `args`; it must exit with status 1 within ten
/// seconds. Returns its stderr.
fn refused_at_start(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .args([
            "node",
            "--secret",
            "s",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(status.code(), Some(1), "{args:?}: {e}");
    assert!(
        e.starts_with("error: ") && e.trim_end().lines().count() == 1,
        "{e}"
    );
    e
}

#[test]
fn contradictory_or_unworkable_flags_are_refused_at_start() {
    let e = refused_at_start(&["--plaintext", "--mutual-tls"]);
    assert!(e.contains("--plaintext and --mutual-tls contradict"), "{e}");
    for voters in ["2", "0", "4"] {
        let e = refused_at_start(&["--plaintext", "--voters", voters]);
        assert!(e.contains("give a positive odd number"), "{voters}: {e}");
    }
}
