//! The command line keeps shell conventions: values from standard input,
//! tokens that allow something for some time, `certs init` that does not
//! overwrite a cluster's certificates unless told to, and a reader of its
//! output that stops early (`| head`) ends it quietly.

mod common;

use common::{BIN, Cluster, run, stderr, stdout};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn values_come_from_standard_input_with_a_dash() {
    let c = Cluster::new();
    let n = c.start("n1", "127.0.0.1:0", &[]);
    let certs = c.certs();
    let mut child = Command::new(BIN)
        .args(["put", "cfg", "k", "-", "--addr", &n.address, "--certs"])
        .arg(&certs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"from\": \"stdin\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got = c.command(&n.address, &["get", "cfg", "k"]);
    assert_eq!(stdout(&got).trim(), r#"{"from":"stdin"}"#);
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let c = Cluster::new();
    let n = c.start("n1", "127.0.0.1:0", &[]);
    for k in ["a", "b", "c"] {
        let out = c.command(&n.address, &["put", "cfg", k, "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let certs = c.certs();
    for args in [&["list", "cfg"][..], &["status"], &["collections"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .args(["--addr", &n.address, "--certs"])
            .arg(&certs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command has connected, so its first line
        // meets a pipe with no reader, as under `| head -0`.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn tokens_must_allow_something_for_some_time() {
    let c = Cluster::new();
    let key = c.certs().join("jwt.key");
    let key = key.to_str().unwrap();
    let out = run(&["token", "--jwt-key-file", key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("would allow nothing"),
        "{}",
        stderr(&out)
    );
    let out = run(&["token", "--jwt-key-file", key, "--read", "*", "--ttl", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--ttl 0"), "{}", stderr(&out));
    let out = run(&["token", "--jwt-key-file", key, "--read", "*"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn certs_init_keeps_existing_certificates_unless_forced() {
    let c = Cluster::new();
    let dir = c.certs();
    let dir_s = dir.to_str().unwrap();
    let before = std::fs::read(dir.join("ca.pem")).unwrap();
    let out = run(&["certs", "init", dir_s]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("already holds certificates") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
    let out = run(&["certs", "init", dir_s, "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
}
