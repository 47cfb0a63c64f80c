//! A data directory belongs to one cluster, and a node that cannot use its
//! directory says so in one line naming the path: `--join` through another
//! cluster is refused with both ids, a directory in use or that is a file
//! is refused, and a failed first start leaves nothing behind.

mod common;

use common::{Cluster, node_refused};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir` but the lock, with its contents.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "LOCK") {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn cluster_id(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cluster-id"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The arguments of a node of `cluster` in `dir`, plus `extra`.
fn node_args<'a>(cluster: &'a Cluster, dir: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut all = vec![
        "--certs".to_owned(),
        cluster.certs().display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--data-dir".to_owned(),
        dir.to_owned(),
    ];
    all.extend(extra.iter().map(|&s| s.to_owned()));
    all
}

fn refused(args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    node_refused(&args)
}

#[test]
fn joining_another_cluster_with_this_ones_data_is_refused_with_both_ids() {
    // Two clusters bootstrapped apart, with the same name and secret.
    let c = Cluster::new();
    let a = c.start("a", "127.0.0.1:0", &[]);
    let mut b = c.start("b", "127.0.0.1:0", &[]);
    let (a_dir, b_dir) = (c.path().join("a"), c.path().join("b"));
    let (ours, theirs) = (cluster_id(&b_dir), cluster_id(&a_dir));
    assert_ne!(ours, theirs);
    b.kill();
    let before = contents(&b_dir);

    let b_path = b_dir.display().to_string();
    let e = refused(&node_args(&c, &b_path, &["--join", &a.address]));
    assert!(
        e.contains(&format!("holds the data of cluster {ours}"))
            && e.contains(&format!("{} belongs to cluster {theirs}", a.address))
            && e.contains("give an empty --data-dir"),
        "{e}"
    );
    assert_eq!(contents(&b_dir), before, "a refused start changed the data");

    // Its own cluster's member is fine: a restart with the first start's
    // flags resumes.
    let again = c.start("b", "127.0.0.1:0", &["--join", &b.address]);
    assert_eq!(cluster_id(&b_dir), ours);
    drop(again);

    // A node that joins takes the cluster's id.
    let _joined = c.start("j", "127.0.0.1:0", &["--join", &a.address]);
    assert_eq!(cluster_id(&c.path().join("j")), theirs);
}

#[test]
fn a_directory_in_use_or_that_is_a_file_is_one_line_naming_it() {
    let c = Cluster::new();
    let _a = c.start("a", "127.0.0.1:0", &[]);
    let a_dir = c.path().join("a").display().to_string();
    let e = refused(&node_args(&c, &a_dir, &[]));
    assert!(
        e.contains(&a_dir) && e.contains("in use by another statemesh node"),
        "{e}"
    );

    let file = c.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let file = file.display().to_string();
    let e = refused(&node_args(&c, &file, &[]));
    assert!(
        e.contains(&file) && e.contains("is a file, not a directory"),
        "{e}"
    );
    let below = format!("{file}/data");
    let e = refused(&node_args(&c, &below, &[]));
    assert!(e.contains(&below) && e.contains("cannot be created"), "{e}");
}

#[test]
fn a_failed_first_start_leaves_no_directory_behind() {
    let c = Cluster::new();
    let new = c.path().join("new");
    let new_path = new.display().to_string();
    // A join address without a port.
    let e = refused(&node_args(&c, &new_path, &["--join", "localhost"]));
    assert!(e.contains("has no port"), "{e}");
    assert!(!new.exists(), "{e}");

    // A listen address already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let mut args = node_args(&c, &new_path, &[]);
    args[3].clone_from(&taken);
    let e = refused(&args);
    assert!(e.contains(&taken), "{e}");
    assert!(!new.exists(), "{e}");

    // An empty directory made beforehand stays, empty.
    std::fs::create_dir(&new).unwrap();
    let e = refused(&node_args(&c, &new_path, &["--join", "localhost"]));
    assert!(e.contains("has no port"), "{e}");
    assert_eq!(std::fs::read_dir(&new).unwrap().count(), 0, "{e}");
}
