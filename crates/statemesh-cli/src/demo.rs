//! `statemesh demo`: a 3-node cluster of real processes on loopback, with
//! TLS, that loses its leader and keeps every acknowledged write.

use crate::output::outln;
use anyhow::{Context, bail};
use clap::Args;
use statemesh::network::{DevCertificates, TlsFiles};
use statemesh::{Client, ClientOptions, Consistency, Json, Security, Tls};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How many writes to make before the leader is killed.
    #[arg(long, default_value_t = 20)]
    writes: u64,
    /// Keep the temporary directory (node logs, data) and print where it is.
    #[arg(long)]
    keep: bool,
}

/// One node process of the demo.
struct DemoNode {
    name: String,
    child: Option<Child>,
    address: String,
    id: u64,
}

const COLLECTION: &str = "demo";

async fn spawn_node(
    root: &Path,
    name: &str,
    listen: &str,
    join: Option<&str>,
) -> anyhow::Result<DemoNode> {
    let dir = root.join(name);
    let address_file = root.join(format!("{name}.address"));
    let _ = std::fs::remove_file(&address_file);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))?;
    let mut cmd = Command::new(std::env::current_exe().context("finding this program")?);
    cmd.arg("node")
        .arg("--data-dir")
        .arg(&dir)
        .arg("--listen")
        .arg(listen)
        .arg("--certs")
        .arg(root.join("certs"))
        .arg("--address-file")
        .arg(&address_file)
        .arg("--replace-after")
        .arg("30")
        .env("STATEMESH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.try_clone()?)
        .kill_on_drop(true);
    if let Some(j) = join {
        cmd.arg("--join").arg(j);
    }
    let child = cmd.spawn().context("starting a node")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        if let Ok(a) = std::fs::read_to_string(&address_file) {
            break a;
        }
        if Instant::now() > deadline {
            bail!(
                "node {name} did not start; see {}",
                dir.with_extension("log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = std::fs::read_to_string(dir.join("node-id"))?
        .trim()
        .parse()?;
    Ok(DemoNode {
        name: name.to_owned(),
        child: Some(child),
        address,
        id,
    })
}

async fn client(root: &Path, addresses: &[String]) -> anyhow::Result<Client> {
    let tls = Tls::client_from_files(&TlsFiles::client_in(&root.join("certs")))?;
    let secret = std::fs::read_to_string(root.join("certs").join("cluster.secret"))?;
    let options = ClientOptions::new(
        crate::connect::DEFAULT_CLUSTER,
        Security::Tls(Arc::new(tls)),
    );
    Ok(Client::connect(addresses, secret.trim(), options).await?)
}

/// Waits until `check` returns `Some`, or fails after `limit`.
async fn until<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many of the demo's keys node `address` holds in its own replica.
async fn count_on(root: &Path, address: &str) -> anyhow::Result<(usize, u64)> {
    let c = client(root, &[address.to_owned()]).await?;
    let m = c
        .map::<String, Json>(COLLECTION)
        .await?
        .with_consistency(Consistency::Local);
    let version = m.wait_version(0, Duration::ZERO).await?;
    Ok((m.len().await?, version))
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("statemesh-demo-")
        .tempdir()?;
    let root = tmp.path().to_owned();
    let result = demo(&root, &args).await;
    if args.keep || result.is_err() {
        let kept = tmp.keep();
        outln!("\nlogs and data kept in {}", kept.display());
    }
    result
}

async fn demo(root: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    outln!("1. making a development CA, node certificates and a cluster secret");
    DevCertificates::generate(&[])?.write(&root.join("certs"))?;

    outln!("2. starting three node processes on loopback, with TLS");
    let mut nodes = vec![spawn_node(root, "n1", "127.0.0.1:0", None).await?];
    let seed = nodes[0].address.clone();
    for name in ["n2", "n3"] {
        nodes.push(spawn_node(root, name, "127.0.0.1:0", Some(&seed)).await?);
    }
    for n in &nodes {
        outln!("   {} is node {} at {}", n.name, n.id, n.address);
    }
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let admin = client(root, &addresses).await?;
    until("three voters", Duration::from_secs(60), async || {
        let s = admin.status().await.ok()?;
        (s.groups.first()?.1.voters.len() == 3).then_some(())
    })
    .await?;
    outln!("   the nodes found each other: three voters");

    outln!("3. writing {} keys to map {COLLECTION:?}", args.writes);
    let map = admin.map::<String, Json>(COLLECTION).await?;
    let mut last = 0;
    for i in 0..args.writes {
        let (_, v) = map
            .insert(format!("key-{i:03}"), Json(serde_json::json!({ "n": i })))
            .await?;
        last = v;
    }
    outln!("   acknowledged up to version {last}");

    outln!("4. every node holds every key in its own replica");
    until(
        "the map on every node",
        Duration::from_secs(60),
        async || {
            let s = admin.status().await.ok()?;
            let g = s.groups.iter().find(|(n, _)| n == COLLECTION)?;
            (g.1.voters.len() == 3).then_some(())
        },
    )
    .await?;
    for n in &nodes {
        let (count, version) = until("replication", Duration::from_secs(30), async || {
            let (c, v) = count_on(root, &n.address).await.ok()?;
            (v >= last).then_some((c, v))
        })
        .await?;
        outln!("   {}: {count} keys at version {version}", n.name);
    }

    let status = admin.status().await?;
    let leader = status
        .groups
        .iter()
        .find(|(n, _)| n == COLLECTION)
        .and_then(|(_, g)| g.leader)
        .context("the map has no leader")?;
    let victim = nodes
        .iter()
        .position(|n| n.id == leader)
        .context("the leader is not one of the demo's nodes")?;
    outln!(
        "5. killing the leader of {COLLECTION:?}, {} (node {leader}), with SIGKILL",
        nodes[victim].name
    );
    if let Some(mut child) = nodes[victim].child.take() {
        child.kill().await?;
    }
    let survivors: Vec<String> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n.address.clone())
        .collect();
    let others = client(root, &survivors).await?;
    let new_leader = until("a new leader", Duration::from_secs(30), async || {
        let s = others.status().await.ok()?;
        let g = s.groups.iter().find(|(n, _)| n == COLLECTION)?;
        g.1.leader.filter(|&l| l != leader)
    })
    .await?;
    let name = nodes
        .iter()
        .find(|n| n.id == new_leader)
        .map_or("?", |n| &n.name);
    outln!("   new leader: {name} (node {new_leader})");
    let map = others.map::<String, Json>(COLLECTION).await?;
    let entries = map.iter().await?;
    let missing: Vec<u64> = (0..args.writes)
        .filter(|i| !entries.iter().any(|(k, _)| *k == format!("key-{i:03}")))
        .collect();
    if !missing.is_empty() {
        bail!("acknowledged writes lost: {missing:?}");
    }
    outln!(
        "   all {} acknowledged writes are there (linearizable read)",
        args.writes
    );
    for i in args.writes..args.writes + 5 {
        let (_, v) = map
            .insert(format!("key-{i:03}"), Json(serde_json::json!({ "n": i })))
            .await?;
        last = v;
    }
    outln!("   5 more writes while it is down, up to version {last}");

    outln!(
        "6. restarting {} from its data directory",
        nodes[victim].name
    );
    let restarted = spawn_node(root, &nodes[victim].name, &nodes[victim].address, None).await?;
    let (count, version) = until(
        "the restarted node to catch up",
        Duration::from_secs(60),
        async || {
            let (c, v) = count_on(root, &restarted.address).await.ok()?;
            (v >= last).then_some((c, v))
        },
    )
    .await?;
    outln!(
        "   {} caught up: {count} keys at version {version}",
        restarted.name
    );
    nodes[victim] = restarted;

    outln!("7. stopping the cluster and cleaning up");
    for n in &mut nodes {
        if let Some(mut c) = n.child.take() {
            let _ = c.kill().await;
        }
    }
    outln!("done: the leader was lost; every acknowledged write survived");
    Ok(())
}
