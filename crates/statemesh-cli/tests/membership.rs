//! Membership and health as an operator sees them: `members list` and
//! `status` ask every member, `health` fails when one is down, removing a
//! non-member is an error, and a removed node stops serving and exits.

mod common;

use common::{Cluster, stderr, stdout, three};
use std::time::{Duration, Instant};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_status_and_health_ask_every_member() {
    let c = Cluster::new();
    let mut nodes = three(&c).await;
    let a = nodes[0].address.clone();

    let list = json(&c.command(&a, &["members", "list", "--output", "json"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    for m in list {
        assert_eq!(m["reachable"], true, "{m}");
        assert_eq!(m["role"], "voter", "{m}");
        let role = m["groups"]["_cluster"]["role"].as_str().unwrap();
        assert!(role == "leader" || role == "follower", "{m}");
    }
    let table = c.command(&a, &["members", "list"]);
    let table = stdout(&table);
    assert_eq!(
        table.lines().filter(|l| l.contains(" yes ")).count(),
        3,
        "{table}"
    );
    assert!(table.contains("_cluster:leader"), "{table}");

    let out = c.command(&a, &["health"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("healthy: 3 of 3"),
        "{}",
        stdout(&out)
    );

    // One member killed: health says which, and fails.
    let dead = nodes[2].id;
    nodes[2].kill();
    let started = Instant::now();
    let out = c.command(&a, &["health"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "node {dead} at {} did not answer",
            nodes[2].address
        )),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "health hung");
    let h = json(&c.command(&a, &["status", "--output", "json"]));
    assert_eq!(h["problems"].as_array().unwrap().len(), 1, "{h}");
    let status = stdout(&c.command(&a, &["status"]));
    assert!(status.contains("(no answer)"), "{status}");
    let out = c.command(&a, &["health", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let h: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(h["healthy"], false, "{h}");
    assert_eq!(h["answered"], 2, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_says_so_once_and_exits() {
    let c = Cluster::new();
    let mut nodes = three(&c).await;
    let a = nodes[0].address.clone();

    let out = c.command(&a, &["members", "remove", "424242"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("node 424242 is not a member").count(),
        1,
        "{}",
        stderr(&out)
    );

    let gone = nodes[2].id;
    let out = c.command(&a, &["members", "remove", &gone.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut child = nodes[2].child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the removed node did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(c.path().join("n3.log")).unwrap();
    assert_eq!(
        log.matches("was removed from the cluster").count(),
        1,
        "{log}"
    );

    // Started again on its data directory without --join: refused.
    let dir = c.path().join("n3").display().to_string();
    let certs = c.certs().display().to_string();
    let e = common::node_refused(&[
        "--certs",
        &certs,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
    ]);
    assert!(e.contains("was removed from its cluster"), "{e}");
    // With --join it is a member again.
    let back = c.start("n3", "127.0.0.1:0", &["--join", &a]);
    let list = json(&c.command(&a, &["members", "list", "--output", "json"]));
    assert!(
        list.as_array().unwrap().iter().any(|m| m["id"] == back.id),
        "{list}"
    );
}
