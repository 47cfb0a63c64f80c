//! A node started with flags that cannot work together stops at once with
//! one line saying why, instead of starting a cluster that misbehaves.

mod common;

use common::node_refused;

/// Starts a node with `args` and a fresh data directory; it must exit
/// with status 1 at once. Returns its one line.
fn refused_at_start(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut all = vec![
        "--secret",
        "s",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    all.extend(args);
    node_refused(&all)
}

#[test]
fn contradictory_or_unworkable_flags_are_refused_at_start() {
    let e = refused_at_start(&["--plaintext", "--mutual-tls"]);
    assert!(e.contains("--plaintext and --mutual-tls contradict"), "{e}");
    // Named before anything missing: no secret fixes a contradiction.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let e = node_refused(&[
        "--plaintext",
        "--mutual-tls",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(e.contains("--plaintext and --mutual-tls contradict"), "{e}");
    for voters in ["2", "0", "4"] {
        let e = refused_at_start(&["--plaintext", "--voters", voters]);
        assert!(e.contains("give a positive odd number"), "{voters}: {e}");
    }
}

#[test]
fn byte_sizes_take_units_on_the_command_line_and_in_the_config_file() {
    let out = common::run(&["node", "--history-bytes", "lots", "--secret", "s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("\"lots\" is not a size"),
        "{}",
        common::stderr(&out)
    );
    // The size is read; what stops the node is the even voter count after it.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "history-bytes = \"16MiB\"\nvoters = 2\n").unwrap();
    let e = refused_at_start(&["--config", config.to_str().unwrap()]);
    assert!(e.contains("--voters 2"), "{e}");
    let e = refused_at_start(&["--history-bytes", "10MB", "--voters", "2"]);
    assert!(e.contains("--voters 2"), "{e}");
}

#[test]
fn a_config_file_mistake_names_its_line_and_the_nearest_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    let with = |text: &str| {
        std::fs::write(&config, text).unwrap();
        refused_at_start(&["--config", config.to_str().unwrap()])
    };
    let e = with("voters = 3\ndata-dri = \"d\"\n");
    assert!(
        e.contains("line 2: `data-dri` is not a setting: did you mean `data-dir`?"),
        "{e}"
    );
    let e = with("voters = 3\nfrobnicate = 1\n");
    assert!(e.contains("line 2: `frobnicate` is not a setting"), "{e}");
    // A TLS setting of the wrong type: its own line, not the first.
    let e = with("voters = 3\nlisten = \"127.0.0.1:0\"\ncerts = 3\n");
    assert!(e.contains("line 3"), "{e}");
}
