//! `statemesh node --publish` and `statemesh local get`: a node process
//! publishes collections to shared memory, and other processes on the
//! host read them without connecting.

mod common;

use common::{Cluster, run, stderr, stdout};

/// The version a `put` or `cell set` printed.
fn version_of(out: &std::process::Output) -> u64 {
    assert!(out.status.success(), "{}", stderr(out));
    let v: serde_json::Value = serde_json::from_str(stdout(out).trim()).unwrap();
    v["version"].as_u64().unwrap()
}

#[test]
fn a_node_publishes_collections_that_local_get_reads() {
    let cluster = Cluster::new();
    let shm = cluster.path().join("shm");
    std::fs::create_dir_all(&shm).unwrap();
    let shm = shm.to_str().unwrap();
    let node = cluster.start(
        "n1",
        "127.0.0.1:0",
        &["--publish", "prices,greeting,counter", "--publish-dir", shm],
    );
    let local = |args: &[&str]| {
        let mut all = vec!["local", "get"];
        all.extend_from_slice(args);
        all.extend(["--dir", shm]);
        run(&all)
    };

    cluster.command(&node.address, &["put", "prices", "apple", "3"]);
    let v = version_of(&cluster.command(&node.address, &["put", "prices", "pear", r#"{"eur":2}"#]));
    let v_text = v.to_string();
    let out = local(&["prices", "pear", "--wait-for", &v_text, "--versioned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(read["version"].as_u64().unwrap() >= v, "{read}");
    assert_eq!(read["value"], serde_json::json!({"eur": 2}));
    let out = local(&["prices", "apple"]);
    assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));

    let v = version_of(&cluster.command(&node.address, &["cell", "set", "greeting", r#""hi""#]));
    let out = local(&["greeting", "--kind", "cell", "--wait-for", &v.to_string()]);
    assert_eq!(stdout(&out).trim(), r#""hi""#, "{}", stderr(&out));

    let event = r#"{"op":"add","key":"n","by":4}"#;
    let v = version_of(&cluster.command(&node.address, &["event", "counter", event]));
    let out = local(&[
        "counter",
        "n",
        "--kind",
        "events",
        "--wait-for",
        &v.to_string(),
    ]);
    assert_eq!(stdout(&out).trim(), "4", "{}", stderr(&out));

    // Each failure is one line and a non-zero exit.
    for (args, needle) in [
        (vec!["prices", "plum"], "has no key \"plum\""),
        (vec!["prices"], "give the KEY"),
        (vec!["prices", "--kind", "cell"], "holds"),
        (vec!["nowhere", "k"], "region \"nowhere\""),
        (
            vec!["prices", "apple", "--wait-for", "1000000", "--timeout", "1"],
            "not 1000000",
        ),
    ] {
        let out = local(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
