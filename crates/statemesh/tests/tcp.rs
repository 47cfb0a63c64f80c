//! Nodes on real sockets: a cluster over TLS on loopback, reconnection after
//! a restart, and hostile connections (garbage, oversized, truncated and
//! stalled frames, other versions, clusters and secrets) refused without
//! disturbing the cluster.

use statemesh::network::{Authenticator, DevCertificates, Limits, Secret, Tls};
use statemesh::{Cell, ClusterId, Network, Node, NodeOptions, Security, TcpNetwork, TcpOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLUSTER: &str = "test-cluster";

fn tls(certs: &DevCertificates, mutual: bool) -> Security {
    Security::Tls(Arc::new(
        Tls::node(
            certs.ca.as_bytes(),
            certs.node.as_bytes(),
            certs.node_key.as_bytes(),
            mutual,
        )
        .unwrap(),
    ))
}

fn options(security: Security) -> TcpOptions {
    let mut o = TcpOptions::new(
        CLUSTER,
        security,
        Authenticator::new(Secret::new("cluster-secret"), None),
    );
    // Short enough that the stalled-frame test does not wait long.
    o.limits = Limits {
        stall_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    o
}

async fn bind(address: &str, security: &Security) -> Arc<TcpNetwork> {
    TcpNetwork::bind(address, options(security.clone()))
        .await
        .unwrap()
}

fn open(id: u64, root: &Path, net: &Arc<TcpNetwork>) -> Node {
    let n: Arc<dyn Network> = net.clone();
    Node::open(id, root.join(format!("n{id}")), n, NodeOptions::default()).unwrap()
}

/// Tells `net` where every node listens.
fn introduce(net: &TcpNetwork, addresses: &[String]) {
    for (i, a) in addresses.iter().enumerate() {
        net.set_address(i as u64 + 1, a.clone());
    }
}

async fn cluster(
    root: &Path,
    security: &Security,
) -> (Vec<Arc<TcpNetwork>>, Vec<Node>, Vec<String>) {
    let mut nets = Vec::new();
    for _ in 0..3 {
        nets.push(bind("127.0.0.1:0", security).await);
    }
    let addresses: Vec<String> = nets.iter().map(|n| n.local_addr().to_string()).collect();
    for n in &nets {
        introduce(n, &addresses);
    }
    let nodes = (0..3).map(|i| open(i as u64 + 1, root, &nets[i])).collect();
    (nets, nodes, addresses)
}

async fn cells(nodes: &[Node], name: &str) -> Vec<Cell<u64>> {
    let mut cells = Vec::new();
    for n in nodes {
        cells.push(Cell::<u64>::open(n, name, &[1, 2, 3]).await.unwrap());
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_mutual_tls_replicate_and_reconnect_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCertificates::generate(&[]).unwrap();
    let security = tls(&certs, true);
    let (mut nets, mut nodes, addresses) = cluster(dir.path(), &security).await;
    let mut cells = cells(&nodes, "c").await;
    for (i, cell) in cells.iter().enumerate() {
        // Writes on followers are forwarded to the leader over TLS.
        cell.write(i as u64).await.unwrap();
    }
    let (_, v) = cells[1].write(100).await.unwrap();
    for c in &cells {
        c.when().reaches(v).await;
        assert_eq!(c.read(), Some(100));
    }

    // Node 3 goes away and its socket closes; the others go on.
    drop(cells.pop());
    nodes.pop().unwrap().shutdown().await;
    drop(nets.pop());
    let (_, v) = cells[0].write(200).await.unwrap();
    // It comes back on the same address, from its directory; the others
    // reconnect to it and it catches up.
    let net3 = bind(&addresses[2], &security).await;
    introduce(&net3, &addresses);
    let node3 = open(3, dir.path(), &net3);
    let cell3 = Cell::<u64>::open(&node3, "c", &[1, 2, 3]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), cell3.when().reaches(v))
        .await
        .expect("the restarted node caught up");
    assert_eq!(cell3.read(), Some(200));
    let (_, v) = cell3.write(300).await.unwrap();
    for c in &cells {
        c.when().reaches(v).await;
        assert_eq!(c.read(), Some(300));
    }
    node3.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// A node that is not one of the cluster's: it tries to reach node 1.
async fn outsider(security: Security, cluster: &str, secret: &str, target: &str) -> bool {
    let mut o = TcpOptions::new(
        cluster,
        security,
        Authenticator::new(Secret::new(secret), None),
    );
    o.limits.connect_timeout = Duration::from_secs(2);
    let net = TcpNetwork::bind("127.0.0.1:0", o).await.unwrap();
    net.set_address(1, target);
    net.call(9, 1, b"not an envelope".to_vec()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_of_one_name_and_secret_refuse_each_other_by_id() {
    let certs = DevCertificates::generate(&[]).unwrap();
    let security = tls(&certs, false);
    let net = bind("127.0.0.1:0", &security).await;
    let dir = tempfile::tempdir().unwrap();
    let node = open(1, dir.path(), &net);
    let target = net.local_addr().to_string();
    let ours = ClusterId::random().unwrap();
    net.set_cluster_id(ours);

    let peer = |id: Option<ClusterId>| {
        let security = security.clone();
        let target = target.clone();
        async move {
            let net = bind("127.0.0.1:0", &security).await;
            if let Some(id) = id {
                net.set_cluster_id(id);
            }
            net.set_address(1, target);
            net.call(9, 1, b"not an envelope".to_vec()).await.is_ok()
        }
    };
    // The same cluster, and a node that has not joined one yet: let in.
    assert!(peer(Some(ours)).await);
    assert!(peer(None).await);
    // Another cluster's node, either way round.
    let theirs = ClusterId::random().unwrap();
    assert!(!peer(Some(theirs)).await);
    let other = bind("127.0.0.1:0", &security).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_node = open(2, other_dir.path(), &other);
    other.set_cluster_id(theirs);
    net.set_address(2, other.local_addr().to_string());
    assert!(net.call(1, 2, b"x".to_vec()).await.is_err());
    other_node.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_peers_with_the_ca_the_cluster_and_the_secret_get_in() {
    let certs = DevCertificates::generate(&[]).unwrap();
    let security = tls(&certs, true);
    let net = bind("127.0.0.1:0", &security).await;
    let dir = tempfile::tempdir().unwrap();
    let node = open(1, dir.path(), &net);
    let target = net.local_addr().to_string();
    // The right CA, cluster and secret: answered (a request it cannot
    // decode gets an answer saying so).
    assert!(outsider(security.clone(), CLUSTER, "cluster-secret", &target).await);
    // Plaintext to a TLS port.
    assert!(!outsider(Security::Plaintext, CLUSTER, "cluster-secret", &target).await);
    // Another CA's certificates.
    let other = DevCertificates::generate(&[]).unwrap();
    assert!(!outsider(tls(&other, true), CLUSTER, "cluster-secret", &target).await);
    // No client certificate where mutual TLS is required.
    let anonymous = Security::Tls(Arc::new(Tls::client(certs.ca.as_bytes(), None).unwrap()));
    assert!(!outsider(anonymous, CLUSTER, "cluster-secret", &target).await);
    // Another cluster, or the wrong secret.
    assert!(!outsider(security.clone(), "other-cluster", "cluster-secret", &target).await);
    assert!(!outsider(security.clone(), CLUSTER, "guess", &target).await);
    node.shutdown().await;
}

/// Frames as `PROTOCOL.md` lays them out, for a hostile peer.
fn frame(id: u64, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = id.to_le_bytes().to_vec();
    body.push(kind);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&body), payload);
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(payload);
    out
}

fn handshake(version: u16, body: &[u8]) -> Vec<u8> {
    let mut p = b"STMESH\r\n".to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    p.extend_from_slice(body);
    frame(0, 1, &p)
}

/// Sends `bytes`, then reads until the node closes the connection (or
/// `wait` passes); returns what came back and whether it closed.
async fn poke(address: &str, bytes: &[u8], wait: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(address).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let closed = tokio::time::timeout(wait, s.read_to_end(&mut got))
        .await
        .is_ok();
    (got, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_are_refused_and_the_cluster_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_nets, nodes, addresses) = cluster(dir.path(), &Security::Plaintext).await;
    let cells = Arc::new(cells(&nodes, "c").await);
    // A writer keeps committing while the node is attacked.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (cells, stop, acked) = (cells.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                cells[(i % 3) as usize].write(i).await.unwrap();
                acked.store(i, Ordering::Relaxed);
            }
        })
    };
    let target = &addresses[0];
    let second = Duration::from_secs(1);

    // Random bytes, seeded so a failure can be replayed.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..200 {
        let len = rng.usize(0..4096);
        let junk: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let (reply, _) = poke(target, &junk, second).await;
        assert!(reply.len() < 1024, "garbage got a large answer");
    }
    // A frame announcing 4 GiB: refused from its header alone.
    let mut huge = frame(0, 1, b"");
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        poke(target, &huge, second).await.1,
        "oversized frame not refused"
    );
    // A frame cut short, then closed by us.
    let whole = handshake(1, b"body");
    let (reply, _) = poke(target, &whole[..whole.len() - 2], Duration::ZERO).await;
    assert!(reply.is_empty());
    // A frame that stops halfway and stays open: closed after the stall
    // timeout.
    let started = Instant::now();
    let (_, closed) = poke(target, &whole[..10], Duration::from_secs(10)).await;
    assert!(
        closed && started.elapsed() < Duration::from_secs(9),
        "stalled frame not closed"
    );
    // Another protocol version: told ours, then closed.
    let (reply, closed) = poke(target, &handshake(999, b""), second).await;
    assert!(closed);
    assert!(
        String::from_utf8_lossy(&reply).contains("version 999"),
        "no version in the refusal"
    );
    // The right magic and version with a body that is not a handshake, and
    // a request before any handshake.
    assert!(poke(target, &handshake(1, &[0xff; 40]), second).await.1);
    assert!(poke(target, &frame(1, 2, b"hi"), second).await.1);
    // A plausible stream whose second frame has a damaged checksum.
    let mut bad = frame(5, 2, b"request");
    bad[5] ^= 1;
    assert!(poke(target, &bad, second).await.1);

    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let last = acked.load(Ordering::Relaxed);
    assert!(last > 0, "no write went through during the attack");
    let (_, v) = cells[0].write(u64::MAX).await.unwrap();
    for c in cells.iter() {
        c.when().reaches(v).await;
        assert_eq!(c.read(), Some(u64::MAX));
    }
    drop(cells);
    for n in nodes {
        n.shutdown().await;
    }
}
