//! Real `statemesh` processes on loopback: a cluster formed by `--join`,
//! its leader killed with SIGKILL under write load, a node restarted from
//! its data directory, an unreachable voter replaced, hostile bytes on a
//! node's port, and every command of the command line run once.

mod common;

use common::{BIN, Cluster, group, keys, on_three_voters, run, stderr, stdout, three, until};
use statemesh::{Consistency, Json};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_under_load_loses_no_acknowledged_write() {
    let cluster = Cluster::new();
    let mut nodes = three(&cluster).await;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let admin = cluster.client(&addresses).await;
    admin.map::<String, Json>("load").await.unwrap();
    on_three_voters(&admin, "load").await;

    // Writers on every node's address, each remembering what was
    // acknowledged; junk thrown at a node's port all along.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, address) in addresses.iter().enumerate() {
        let client = cluster.client(std::slice::from_ref(address)).await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let m = client.map::<String, Json>("load").await.unwrap();
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-{i:05}");
                i += 1;
                // A write that failed may or may not have been applied; only
                // acknowledged ones are checked.
                if m.insert(key.clone(), Json(serde_json::json!(i)))
                    .await
                    .is_ok()
                {
                    acked.push(key);
                }
            }
            acked
        }));
    }
    let junk = {
        let (stop, target) = (stop.clone(), addresses[1].clone());
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(7);
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = tokio::net::TcpStream::connect(&target).await {
                    let bytes: Vec<u8> = (0..rng.usize(1..2048)).map(|_| rng.u8(..)).collect();
                    let _ = s.write_all(&bytes).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader = group(&admin.status().await.unwrap(), "load")
        .unwrap()
        .leader
        .unwrap();
    let victim = nodes.iter().position(|n| n.id == leader).unwrap();
    nodes[victim].kill();
    let survivors: Vec<String> = nodes
        .iter()
        .filter(|n| n.id != leader)
        .map(|n| n.address.clone())
        .collect();
    let others = cluster.client(&survivors).await;
    until("a new leader", async || {
        let s = others.status().await.ok()?;
        group(&s, "load")?.leader.filter(|&l| l != leader)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    junk.await.unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() > 50,
        "too few writes acknowledged: {}",
        acked.len()
    );
    let map = others.map::<String, Json>("load").await.unwrap();
    let present = keys(&map).await;
    let lost: Vec<&String> = acked.iter().filter(|k| !present.contains(*k)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let (_, last) = map
        .insert("after".into(), Json(serde_json::json!(0)))
        .await
        .unwrap();

    // The killed node comes back from its data directory and catches up.
    let name = nodes[victim].name.clone();
    let address = nodes[victim].address.clone();
    nodes[victim] = cluster.start(&name, &address, &[]);
    let back = cluster.client(std::slice::from_ref(&address)).await;
    let local = back
        .map::<String, Json>("load")
        .await
        .unwrap()
        .with_consistency(Consistency::Local);
    until("the restarted node to catch up", async || {
        (local
            .wait_version(last - 1, Duration::from_secs(1))
            .await
            .ok()?
            >= last)
            .then_some(())
    })
    .await;
    assert_eq!(local.len().await.unwrap(), present.len() + 1);
    drop(nodes);
    let _ = map;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_voter_is_replaced_by_a_caught_up_learner() {
    let cluster = Cluster::new();
    let mut nodes = three(&cluster).await;
    let seed = nodes[0].address.clone();
    nodes.push(cluster.start("n4", "127.0.0.1:0", &["--join", &seed]));
    let spare = nodes[3].id;
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let c = cluster.client(&addresses).await;
    until("the fourth node as a learner", async || {
        let s = c.status().await.ok()?;
        group(&s, "_cluster")?
            .learners
            .contains(&spare)
            .then_some(())
    })
    .await;
    let leader = group(&c.status().await.unwrap(), "_cluster")
        .unwrap()
        .leader
        .unwrap();
    let victim = nodes[..3].iter().position(|n| n.id != leader).unwrap();
    let victim_id = nodes[victim].id;
    nodes[victim].kill();
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| n.id != victim_id)
        .map(|n| n.address.clone())
        .collect();
    let c = cluster.client(&rest).await;
    until("the learner to replace the lost voter", async || {
        let s = c.status().await.ok()?;
        let v = &group(&s, "_cluster")?.voters;
        (v.len() == 3 && v.contains(&spare) && !v.contains(&victim_id)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_told_to_stop_leaves_the_cluster_first() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let seed = nodes[0].address.clone();
    let mut fourth = cluster.start(
        "n4",
        "127.0.0.1:0",
        &["--join", &seed, "--leave-on-shutdown"],
    );
    let id = fourth.id;
    let c = cluster.client(std::slice::from_ref(&seed)).await;
    until("the fourth node as a learner", async || {
        let s = c.status().await.ok()?;
        group(&s, "_cluster")?.learners.contains(&id).then_some(())
    })
    .await;
    let status = fourth.terminate();
    assert!(status.success(), "{status:?}");
    let s = c.status().await.unwrap();
    assert!(!s.members.contains_key(&id), "the record stays");
    until("the leader to drop the learner", async || {
        let s = c.status().await.ok()?;
        let g = group(&s, "_cluster")?;
        (!g.learners.contains(&id) && !g.voters.contains(&id)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_told_to_stop_leaves_and_the_others_go_on_writing() {
    let cluster = Cluster::new();
    let first = cluster.start("n1", "127.0.0.1:0", &[]);
    let seed = first.address.clone();
    let mut nodes = [
        first,
        cluster.start("n2", "127.0.0.1:0", &["--join", &seed]),
        cluster.start(
            "n3",
            "127.0.0.1:0",
            &["--join", &seed, "--leave-on-shutdown"],
        ),
    ];
    let id = nodes[2].id;
    let rest = [nodes[0].address.clone(), nodes[1].address.clone()];
    let c = cluster.client(&rest).await;
    until(
        "three voters, the one that will leave among them",
        async || {
            let s = c.status().await.ok()?;
            let v = &group(&s, "_cluster")?.voters;
            (v.len() == 3 && v.contains(&id)).then_some(())
        },
    )
    .await;
    let status = nodes[2].terminate();
    assert!(status.success(), "{status:?}");
    until("the voter gone from the record and the group", async || {
        let s = c.status().await.ok()?;
        let g = group(&s, "_cluster")?;
        let gone = !s.members.contains_key(&id) && !g.voters.contains(&id);
        (gone && !g.learners.contains(&id)).then_some(())
    })
    .await;
    // Two voters of two: the cluster still commits.
    let m = c.map::<String, Json>("after-leave").await.unwrap();
    m.insert("k".into(), Json(serde_json::json!(1)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_runs_and_bad_credentials_are_refused() {
    let cluster = Cluster::new();
    let nodes = three(&cluster).await;
    let a = nodes[0].address.as_str();
    let b = nodes[1].address.as_str();
    let ok = |o: &Output| {
        assert!(o.status.success(), "failed: {}", stderr(o));
        stdout(o)
    };
    let fails = |o: &Output, what: &str| {
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(o));
        let e = stderr(o);
        assert!(
            e.starts_with("error: ") && e.trim_end().lines().count() == 1,
            "{what}: {e}"
        );
        e
    };

    // Maps.
    let put = ok(&cluster.command(a, &["put", "cfg", "mode", r#""fast""#]));
    assert!(put.contains(r#""previous":null"#), "{put}");
    assert_eq!(
        ok(&cluster.command(b, &["get", "cfg", "mode"])).trim(),
        r#""fast""#
    );
    assert_eq!(
        ok(&cluster.command(b, &["get", "cfg", "mode", "--local"])).trim(),
        r#""fast""#
    );
    let out = cluster.command(a, &["cas", "cfg", "mode", r#""slow""#, "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let cas = stdout(&out);
    assert!(cas.contains(r#""swapped":false"#), "{cas}");
    let cas = ok(&cluster.command(a, &["cas", "cfg", "mode", r#""fast""#, r#"{"x":[1,2]}"#]));
    assert!(cas.contains(r#""swapped":true"#), "{cas}");
    ok(&cluster.command(a, &["put", "cfg", "other", "42"]));
    let list = ok(&cluster.command(b, &["list", "cfg"]));
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        [
            r#"{"key":"mode","value":{"x":[1,2]}}"#,
            r#"{"key":"other","value":42}"#
        ]
    );
    let del = ok(&cluster.command(a, &["del", "cfg", "other"]));
    assert!(del.contains(r#""previous":42"#), "{del}");
    fails(
        &cluster.command(a, &["get", "cfg", "other"]),
        "a missing key",
    );
    fails(
        &cluster.command(a, &["put", "cfg", "k", "not json"]),
        "bad JSON",
    );

    // Cells.
    ok(&cluster.command(a, &["cell", "set", "leader-note", r#""hello""#]));
    assert_eq!(
        ok(&cluster.command(b, &["cell", "get", "leader-note"])).trim(),
        r#""hello""#
    );
    fails(
        &cluster.command(a, &["cell", "get", "cfg"]),
        "a map read as a cell",
    );

    // Watch: one change, then it exits.
    let certs = cluster.certs();
    let watcher = Command::new(BIN)
        .args(["watch", "cfg", "--count", "1", "--addr", b, "--certs"])
        .arg(&certs)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ok(&cluster.command(a, &["put", "cfg", "watched", "true"]));
    let out = watcher.wait_with_output().unwrap();
    assert!(
        stdout(&out).contains(r#""key":"watched","value":true"#),
        "{}",
        stdout(&out)
    );

    // Status, snapshot, members.
    let status = ok(&cluster.command(a, &["status"]));
    assert!(
        status.contains("_cluster") && status.contains("cfg"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&cluster.command(a, &["status", "--output", "json"]))).unwrap();
    assert_eq!(json["members"].as_array().unwrap().len(), 3);
    ok(&cluster.command(a, &["snapshot", "cfg"]));
    ok(&cluster.command(
        a,
        &["members", "add", "77", "127.0.0.1:1", "--role", "reader"],
    ));
    ok(&cluster.command(a, &["members", "promote", "77"]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&cluster.command(a, &["status", "--output", "json"]))).unwrap();
    let added = json["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == 77)
        .unwrap();
    assert_eq!(added["role"], "voter", "{json}");
    ok(&cluster.command(a, &["members", "remove", "77"]));
    fails(
        &cluster.command(a, &["members", "promote", "77"]),
        "promote a non-member",
    );

    // Tokens.
    let key = certs.join("jwt.key");
    let token = |extra: &[&str]| {
        let mut args = vec!["token", "--jwt-key-file", key.to_str().unwrap()];
        args.extend(extra);
        ok(&run(&args)).trim().to_owned()
    };
    let ro = token(&["--subject", "ro", "--read", "cfg"]);
    let with = |t: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--addr",
            a,
            "--certs",
            certs.to_str().unwrap(),
            "--token",
            t,
        ]);
        run(&all)
    };
    assert_eq!(ok(&with(&ro, &["get", "cfg", "watched"])).trim(), "true");
    let e = fails(
        &with(&ro, &["put", "cfg", "k", "1"]),
        "a read-only token writing",
    );
    assert!(e.contains("does not allow write"), "{e}");
    let expired = token(&["--write", "*", "--ttl", "1"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fails(
        &with(&expired, &["get", "cfg", "watched"]),
        "an expired token",
    );
    fails(
        &with("not-the-secret", &["get", "cfg", "watched"]),
        "a wrong token",
    );
    let plain = run(&[
        "get",
        "cfg",
        "watched",
        "--addr",
        a,
        "--plaintext",
        "--token",
        &cluster.secret(),
    ]);
    let e = fails(&plain, "plaintext to a TLS node");
    assert!(e.contains("this node speaks TLS"), "{e}");

    // The benchmark, briefly: a row per measurement, and a progress line
    // per round on stderr.
    let out = cluster.command(
        a,
        &[
            "bench",
            "--clients",
            "1,4",
            "--seconds",
            "1",
            "--rounds",
            "2",
            "--key-space",
            "20",
            "--value-size",
            "1KiB",
        ],
    );
    let bench = ok(&out);
    assert_eq!(bench.matches("| statemesh |").count(), 6, "{bench}");
    assert!(bench.contains("1024-byte values"), "{bench}");
    let progress = stderr(&out);
    assert_eq!(progress.matches(", round 2/2: ").count(), 6, "{progress}");

    // Help for every command.
    for cmd in [
        vec!["--help"],
        vec!["node", "--help"],
        vec!["certs", "init", "--help"],
        vec!["token", "--help"],
        vec!["demo", "--help"],
        vec!["status", "--help"],
        vec!["get", "--help"],
        vec!["put", "--help"],
        vec!["cas", "--help"],
        vec!["del", "--help"],
        vec!["list", "--help"],
        vec!["cell", "get", "--help"],
        vec!["cell", "set", "--help"],
        vec!["watch", "--help"],
        vec!["members", "add", "--help"],
        vec!["members", "remove", "--help"],
        vec!["members", "promote", "--help"],
        vec!["snapshot", "--help"],
        vec!["bench", "--help"],
    ] {
        let out = ok(&run(&cmd));
        assert!(out.contains("Usage"), "{cmd:?}: {out}");
    }
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_its_settings_from_a_toml_file_and_the_environment() {
    let cluster = Cluster::new();
    let dir = cluster.path().join("from-file");
    let address_file = cluster.path().join("from-file.address");
    let config = cluster.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\ncerts = {:?}\nvoters = 1\n",
            dir,
            cluster.certs()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["node", "--config", config.to_str().unwrap()])
        .env("STATEMESH_ADDRESS_FILE", &address_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = until("the node from the file", async || {
        std::fs::read_to_string(&address_file).ok()
    })
    .await;
    let out = cluster.command(&address, &["put", "m", "k", "1"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    // An unknown setting is an error naming it.
    std::fs::write(&config, "data-dirr = \"x\"\n").unwrap();
    let out = run(&["node", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("data-dirr"), "{}", stderr(&out));
}

/// GET `path` from `address`; the status line and the body.
async fn http_get(address: &str, path: &str) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(address).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_endpoint_serves_metrics_health_and_readiness() {
    let cluster = Cluster::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let node = cluster.start("n1", "127.0.0.1:0", &["--http", &http]);
    let (status, body) = http_get(&http, "/health").await;
    assert!(status.contains("200"), "{status} {body}");
    until("ready", async || {
        http_get(&http, "/ready")
            .await
            .0
            .contains("200")
            .then_some(())
    })
    .await;
    let c = cluster.client(std::slice::from_ref(&node.address)).await;
    let m = c.map::<String, Json>("m").await.unwrap();
    m.insert("k".into(), Json(serde_json::json!(1)))
        .await
        .unwrap();
    until("metrics of the commit", async || {
        let (_, body) = http_get(&http, "/metrics").await;
        (body.contains("statemesh_commits_total{group=\"m\"}")
            && body.contains("statemesh_wal_sync_seconds")
            && body.contains("statemesh_is_leader")
            && body.contains("statemesh_bytes_received_total"))
        .then_some(())
    })
    .await;
    assert!(http_get(&http, "/nowhere").await.0.contains("404"));
}

#[test]
fn the_demo_runs() {
    let out = run(&["demo", "--writes", "10"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("every acknowledged write survived"),
        "{}",
        stdout(&out)
    );
}
