//! What the process tests share: `statemesh` node processes in a
//! temporary directory with development certificates, and waiting helpers.
#![allow(dead_code)]

use statemesh::network::TlsFiles;
use statemesh::{Client, ClientOptions, Json, RemoteMap, Security, Tls};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_statemesh");

/// A node process, killed when dropped.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) child: Option<Child>,
    pub(crate) address: String,
    pub(crate) id: u64,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Node {
    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (what an operator's stop sends), and its exit status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}: {sent:?}");
        child.wait().unwrap()
    }
}

pub(crate) struct Cluster {
    pub(crate) root: tempfile::TempDir,
    /// Given to every node this cluster starts.
    pub(crate) node_args: Vec<String>,
}

impl Cluster {
    pub(crate) fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let out = run(&["certs", "init", root.path().join("certs").to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        Self {
            root,
            node_args: Vec::new(),
        }
    }

    /// A cluster whose nodes all get `args` too.
    pub(crate) fn with_node_args(args: &[&str]) -> Self {
        let mut c = Self::new();
        c.node_args = args.iter().map(|&a| a.to_owned()).collect();
        c
    }

    pub(crate) fn path(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn certs(&self) -> PathBuf {
        self.path().join("certs")
    }

    pub(crate) fn start(&self, name: &str, listen: &str, extra: &[&str]) -> Node {
        let dir = self.path().join(name);
        let address_file = self.path().join(format!("{name}.address"));
        let _ = std::fs::remove_file(&address_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join(format!("{name}.log")))
            .unwrap();
        let child = Command::new(BIN)
            .args(["node", "--listen", listen, "--replace-after", "3"])
            .arg("--data-dir")
            .arg(&dir)
            .arg("--certs")
            .arg(self.certs())
            .arg("--address-file")
            .arg(&address_file)
            .args(extra)
            .args(&self.node_args)
            .env("STATEMESH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            if let Ok(a) = std::fs::read_to_string(&address_file) {
                break a;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not start: {}",
                std::fs::read_to_string(self.path().join(format!("{name}.log")))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let id = std::fs::read_to_string(dir.join("node-id"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Node {
            name: name.to_owned(),
            child: Some(child),
            address,
            id,
        }
    }

    pub(crate) fn secret(&self) -> String {
        std::fs::read_to_string(self.certs().join("cluster.secret"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub(crate) async fn client(&self, addresses: &[String]) -> Client {
        let tls = Tls::client_from_files(&TlsFiles::client_in(&self.certs())).unwrap();
        let options = ClientOptions::new("statemesh", Security::Tls(Arc::new(tls)));
        Client::connect(addresses, self.secret(), options)
            .await
            .unwrap()
    }

    /// Runs a client command against `address`.
    pub(crate) fn command(&self, address: &str, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let certs = self.certs();
        all.extend(["--addr", address, "--certs", certs.to_str().unwrap()]);
        run(&all)
    }
}

/// Starts `statemesh node` with `args`; it must exit with status 1 within
/// ten seconds, printing one line. Returns that line.
pub(crate) fn node_refused(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .arg("node")
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
        "{args:?}: {e}"
    );
    e
}

pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn group<'a>(
    s: &'a statemesh::ClusterStatus,
    name: &str,
) -> Option<&'a statemesh::GroupStatus> {
    s.groups.iter().find(|(n, _)| n == name).map(|(_, g)| g)
}

/// Starts three nodes, the second and third joining through the first, and
/// waits for three voters.
pub(crate) async fn three(cluster: &Cluster) -> Vec<Node> {
    let first = cluster.start("n1", "127.0.0.1:0", &[]);
    let seed = first.address.clone();
    let nodes = vec![
        first,
        cluster.start("n2", "127.0.0.1:0", &["--join", &seed]),
        cluster.start("n3", "127.0.0.1:0", &["--join", &seed]),
    ];
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let c = cluster.client(&addresses).await;
    until("three voters", async || {
        let s = c.status().await.ok()?;
        (group(&s, "_cluster")?.voters.len() == 3).then_some(())
    })
    .await;
    nodes
}

/// Waits until collection `name` has three voters; its status then.
pub(crate) async fn on_three_voters(client: &Client, name: &str) -> statemesh::GroupStatus {
    until(&format!("{name} on three voters"), async || {
        let s = client.status().await.ok()?;
        group(&s, name).filter(|g| g.voters.len() == 3).cloned()
    })
    .await
}

/// Every key of a map, read linearizably.
pub(crate) async fn keys(map: &RemoteMap<String, Json>) -> std::collections::BTreeSet<String> {
    map.iter()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}
