//! `statemesh peers`, `publish` and `subscribe` as processes against a
//! three-node cluster: what a user of the command line sees.

mod common;

use common::{BIN, Cluster, stderr, stdout, three, until};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command that is killed if the test ends before it does.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stream command started with the cluster's certificates (so its
/// peer presents the client certificate).
fn spawn(cluster: &Cluster, address: &str, args: &[&str]) -> Running {
    let certs = cluster.certs();
    spawn_as(address, args, &["--certs", certs.to_str().unwrap()])
}

/// A stream command that has only what any client has: the CA and a
/// token (its peer makes a certificate of its own).
fn spawn_with_ca(cluster: &Cluster, address: &str, args: &[&str]) -> Running {
    let ca = cluster.certs().join("ca.pem");
    let secret = cluster.secret();
    spawn_as(
        address,
        args,
        &["--ca", ca.to_str().unwrap(), "--token", secret.trim()],
    )
}

fn spawn_as(address: &str, args: &[&str], credentials: &[&str]) -> Running {
    Running(Some(
        Command::new(BIN)
            .args(args)
            .args(["--addr", address])
            .args(credentials)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

impl Running {
    fn stdin(&mut self) -> std::process::ChildStdin {
        self.0.as_mut().unwrap().stdin.take().unwrap()
    }
}

/// Waits (at most 60 s) for `child` to exit: its status, stdout, stderr.
fn finish(mut running: Running) -> (Option<i32>, String, String) {
    let mut child = running.0.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after 60 s: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code(), out, err)
}

/// The peers `statemesh peers --output json` lists.
fn peers(cluster: &Cluster, address: &str) -> Vec<serde_json::Value> {
    let out = cluster.command(address, &["peers", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_started_first_gets_every_published_line() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let (n1, n2, n3) = (&nodes[0].address, &nodes[1].address, &nodes[2].address);
    until("every node in the mesh", async || {
        (peers(&cluster, n1).len() == 3).then_some(())
    })
    .await;

    // Subscribes through one node, filtered by the producer's tag, with
    // no certificate of its own.
    let subscriber = spawn_with_ca(
        &cluster,
        n2,
        &["subscribe", "prices", "--tags", "region=eu", "--count", "3"],
    );
    until("the subscriber in the catalog", async || {
        let listed = peers(&cluster, n3);
        listed
            .iter()
            .any(|p| p["role"] == "process" && p["node"].is_null())
            .then_some(())
    })
    .await;

    // Publishes through another; one line is not JSON.
    let mut publisher = spawn(&cluster, n3, &["publish", "prices", "--tag", "region=eu"]);
    publisher
        .stdin()
        .write_all(b"{\"sym\":\"A\",\"cents\":1}\nnot json\n{\"sym\":\"B\",\"cents\":2}\n3\n")
        .unwrap();
    let (code, _, err) = finish(publisher);
    assert_eq!(code, Some(1), "a bad line fails the run: {err}");
    assert!(err.contains("line 2: not JSON"), "{err}");
    assert_eq!(
        err.matches("error:").count(),
        1,
        "the failure is said once: {err}"
    );
    assert!(
        err.matches("waiting for").count() <= 1,
        "waiting is said once at most: {err}"
    );

    let (code, out, err) = finish(subscriber);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![r#"{"cents":1,"sym":"A"}"#, r#"{"cents":2,"sym":"B"}"#, "3"],
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_and_token_scopes_apply_on_the_command_line() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let (n1, n2) = (&nodes[0].address, &nodes[1].address);

    let subscriber = spawn(
        &cluster,
        n1,
        &["subscribe", "trades", "--filter", "eu*", "--count", "2"],
    );
    let mut publisher = spawn(&cluster, n2, &["publish", "trades", "--key-field", "venue"]);
    let mut input = publisher.stdin();
    for (venue, n) in [("eu-1", 1), ("us-1", 2), ("us-2", 3), ("eu-2", 4)] {
        writeln!(input, r#"{{"venue":"{venue}","n":{n}}}"#).unwrap();
    }
    drop(input);
    let (code, _, err) = finish(publisher);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = finish(subscriber);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![r#"{"n":1,"venue":"eu-1"}"#, r#"{"n":4,"venue":"eu-2"}"#],
        "{err}"
    );

    // A token that may read collections but not produce the stream.
    let jwt_key = cluster.certs().join("jwt.key");
    let out = common::run(&[
        "token",
        "--jwt-key-file",
        jwt_key.to_str().unwrap(),
        "--read",
        "*",
        "--consume",
        "trades",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let mut refused = spawn(&cluster, n1, &["publish", "trades", "--token", &token]);
    drop(refused.stdin());
    let (code, _, err) = finish(refused);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("does not allow producing stream \"trades\""),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_tags_are_listed_and_publish_gives_up_after_its_wait() {
    let cluster = Cluster::new();
    let node = cluster.start("n1", "127.0.0.1:0", &["--tag", "region=eu,role=seed"]);
    let listed = peers(&cluster, &node.address);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["role"], "node");
    assert_eq!(
        listed[0]["tags"],
        serde_json::json!(["region=eu", "role=seed"]),
        "a node's --tag reaches the catalog"
    );
    let mut publisher = spawn(
        &cluster,
        &node.address,
        &["publish", "nobody-listens", "--wait", "3s"],
    );
    writeln!(publisher.stdin(), "1\n2").unwrap();
    let (code, _, err) = finish(publisher);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("fewer than 1 consumer(s) of nobody-listens for 3s: 0 line(s) published"),
        "{err}"
    );
    assert_eq!(
        err.matches("waiting for 1 consumer(s) of nobody-listens")
            .count(),
        1,
        "a publisher with no consumer says so once, after a moment: {err}"
    );
}
