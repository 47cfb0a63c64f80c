//! `statemesh node --publish` and `statemesh local get`: a node process
//! publishes collections to shared memory, and other processes on the
//! host read them without connecting, never silently stale.

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
        (
            vec!["nowhere", "k"],
            "no node on this host publishes \"nowhere\"",
        ),
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

#[test]
fn local_reads_are_never_silently_stale() {
    let cluster = Cluster::new();
    let shm = cluster.path().join("shm");
    std::fs::create_dir_all(&shm).unwrap();
    let shm = shm.to_str().unwrap();
    let publish = ["--publish", "prices,fruit", "--publish-dir", shm];
    let n1 = cluster.start("n1", "127.0.0.1:0", &publish);
    let mut join = vec!["--join", &n1.address];
    join.extend(publish);
    let mut n2 = cluster.start("n2", "127.0.0.1:0", &join);
    let local = |args: &[&str]| {
        let mut all = vec!["local", "get"];
        all.extend_from_slice(args);
        all.extend(["--dir", shm]);
        run(&all)
    };
    let (id1, id2) = (n1.id.to_string(), n2.id.to_string());

    let v = version_of(&cluster.command(&n1.address, &["put", "prices", "apple", "3"]));
    version_of(&cluster.command(&n1.address, &["put", "fruit", "fig", "1"]));
    let v = v.to_string();
    // Both nodes publish, each in its own region.
    for id in [&id1, &id2] {
        let out = local(&["prices", "apple", "--node", id, "--wait-for", &v]);
        assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));
    }
    let out = local(&["prices", "apple"]);
    assert!(
        stderr(&out).contains("2 nodes on this host publish \"prices\"")
            && stderr(&out).contains("--node"),
        "{}",
        stderr(&out)
    );

    // A dropped collection's readers are told so.
    let out = cluster.command(&n1.address, &["drop", "fruit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = local(&["fruit", "fig", "--node", &id1]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the collection was dropped"),
        "{}",
        stderr(&out)
    );

    // A publisher that dies leaves no silently stale reads.
    n2.kill();
    let out = local(&["prices", "apple", "--node", &id2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("its publisher has stopped; the last version"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    let out = local(&["prices", "apple", "--node", &id2, "--allow-stale"]);
    assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));
    // Without --node, the one whose node runs.
    let out = local(&["prices", "apple"]);
    assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));
    drop(n1);
}
