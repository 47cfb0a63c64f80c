//! Errors in a person's words, each said once, and reads that work on
//! every kind of map a node hosts.

mod common;

use common::{Cluster, stderr, stdout};

#[test]
fn a_wrong_kind_is_named_in_words_and_every_map_kind_reads() {
    let c = Cluster::new();
    let n = c.start("n1", "127.0.0.1:0", &[]);
    let ok = |args: &[&str]| {
        let out = c.command(&n.address, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let fails = |args: &[&str]| {
        let out = c.command(&n.address, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        let e = stderr(&out);
        assert!(!e.contains("::"), "a Rust path in {e}");
        e
    };
    ok(&["put", "config", "k", "\"v\""]);
    ok(&["cell", "set", "flag", "true"]);
    let e = fails(&["cell", "get", "config"]);
    assert!(
        e.contains(r#""config" is a map (string → JSON), not a cell (JSON)"#),
        "{e}"
    );
    let e = fails(&["get", "flag", "k"]);
    assert!(
        e.contains(r#""flag" is a cell (JSON), not a map (string → JSON)"#),
        "{e}"
    );

    // A map changed by events, and the benchmark's map of bytes.
    ok(&[
        "event",
        "orders",
        r#"{"op":"put","key":"o1","value":{"qty":2}}"#,
    ]);
    assert_eq!(ok(&["get", "orders", "o1"]).trim(), r#"{"qty":2}"#);
    assert_eq!(
        ok(&["list", "orders"]).trim(),
        r#"{"key":"o1","value":{"qty":2}}"#
    );
    ok(&[
        "bench",
        "--clients",
        "1",
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--key-space",
        "2",
        "--value-size",
        "3",
    ]);
    assert_eq!(ok(&["get", "bench", "00000001"]).trim(), r#""vvv""#);
    assert!(ok(&["list", "bench"]).contains(r#"{"key":"00000001","value":"vvv"}"#));
}
