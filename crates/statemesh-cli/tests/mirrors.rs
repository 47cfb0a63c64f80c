//! `statemesh mirror` processes following node processes: resuming on
//! another node when theirs is killed, resuming from their directory, and
//! told to resynchronise after being stopped while the cluster wrote on.

mod common;

use common::{BIN, Cluster, on_three_voters, stderr, three, until};
use statemesh::Json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A `statemesh mirror` process whose output lines are collected.
struct MirrorProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for MirrorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MirrorProcess {
    fn start(cluster: &Cluster, addresses: &[String], extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["mirror", "prices", "--addr", &addresses.join(",")])
            .arg("--certs")
            .arg(cluster.certs())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn printed(&self, needle: &str) -> bool {
        self.lines().iter().any(|l| l.contains(needle))
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

async fn write(client: &statemesh::Client, keys: impl IntoIterator<Item = String>) {
    let m = client.map::<String, Json>("prices").await.unwrap();
    for k in keys {
        m.insert(k, Json(serde_json::json!(1))).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_process_resumes_elsewhere_and_resyncs_after_a_stop() {
    let cluster = Cluster::with_node_args(&["--history-versions", "50"]);
    let mut nodes = three(&cluster).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let admin = cluster.client(&addresses).await;
    write(&admin, (0..20).map(|i| format!("a{i:03}"))).await;
    on_three_voters(&admin, "prices").await;

    // Its client starts with the first node.
    let mirror = MirrorProcess::start(&cluster, &addresses, &[]);
    until("the state printed", async || {
        mirror.printed("\"a019\"").then_some(())
    })
    .await;

    nodes[0].kill();
    let survivors = cluster.client(&addresses[1..]).await;
    write(&survivors, (0..20).map(|i| format!("b{i:03}"))).await;
    until("changes after the kill", async || {
        mirror.printed("\"b019\"").then_some(())
    })
    .await;
    assert!(
        !mirror.printed("reset"),
        "resumed by changes, not a whole state: {:?}",
        mirror.lines()
    );

    // Stopped: it cannot acknowledge, the nodes move on past their
    // 50-version history, and it is told so when it runs again.
    mirror.signal("-STOP");
    write(&survivors, (0..200).map(|i| format!("c{i:03}"))).await;
    mirror.signal("-CONT");
    until("the changes made while stopped", async || {
        mirror.printed("\"c199\"").then_some(())
    })
    .await;
    assert!(
        mirror.printed(r#""reset":"too slow""#),
        "{:?}",
        mirror.lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_process_resumes_from_its_directory() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let admin = cluster.client(&addresses).await;
    write(&admin, (0..10).map(|i| format!("a{i:03}"))).await;
    let dir = cluster.path().join("mirror-copy");
    let dir = dir.to_str().unwrap();
    let once = |count: &str| {
        let mut all = vec!["mirror", "prices", "--dir", dir, "--count", count];
        let joined = addresses.join(",");
        let certs = cluster.certs();
        all.extend(["--addr", &joined, "--certs", certs.to_str().unwrap()]);
        Command::new(BIN).args(&all).output().unwrap()
    };

    let first = once("0");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("received the changes since version 0"),
        "{}",
        stderr(&first)
    );
    let first_version: u64 = stderr(&first)
        .split("at version ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap();

    write(&admin, (0..5).map(|i| format!("b{i:03}"))).await;
    let second = once("0");
    assert!(second.status.success(), "{}", stderr(&second));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("\"b004\""), "{out}");
    assert!(
        stderr(&second).contains(&format!(
            "received the changes since version {first_version}"
        )),
        "resumed from the directory: {}",
        stderr(&second)
    );
}
