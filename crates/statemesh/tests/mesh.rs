//! Nodes in the mesh: three servers find each other on their own ports, a
//! token holder gets a pass from one of them and joins through it, and its
//! token's stream scopes decide what it may produce and consume.

use statemesh::mesh::peer::Role;
use statemesh::mesh::{ConsumeError, Mesh, MeshError};
use statemesh::network::{Authenticator, Claims, DevCertificates, Secret, Tls};
use statemesh::{Client, ClientOptions, Kinds, Security, Server, ServerOptions, TcpOptions};
use statemesh_test_support::eventually_async;
use std::sync::Arc;
use std::time::Duration;

const CLUSTER: &str = "mesh-test";
const SECRET: &str = "the-cluster-secret";
const JWT_KEY: &str = "the-jwt-key";

struct Env {
    certs: DevCertificates,
    dir: tempfile::TempDir,
    /// Whether nodes require client certificates.
    mutual: bool,
}

impl Env {
    fn new(mutual: bool) -> Self {
        Self {
            certs: DevCertificates::generate(&[]).unwrap(),
            dir: tempfile::tempdir().unwrap(),
            mutual,
        }
    }

    fn security(&self) -> Security {
        let c = &self.certs;
        Security::Tls(Arc::new(
            Tls::node(
                c.ca.as_bytes(),
                c.node.as_bytes(),
                c.node_key.as_bytes(),
                self.mutual,
            )
            .unwrap(),
        ))
    }

    /// A client's TLS: the CA, and a client certificate only where the
    /// nodes require one. Its mesh peer makes a certificate of its own
    /// when it has none.
    fn client_security(&self) -> Security {
        let c = &self.certs;
        let identity = self
            .mutual
            .then_some((c.client.as_bytes(), c.client_key.as_bytes()));
        Security::Tls(Arc::new(Tls::client(c.ca.as_bytes(), identity).unwrap()))
    }

    async fn start(&self, name: &str, join: &[String], tags: &[&str]) -> Server {
        let network = TcpOptions::new(
            CLUSTER,
            self.security(),
            Authenticator::new(Secret::new(SECRET), Some(Secret::new(JWT_KEY))),
        );
        let mut o = ServerOptions::new(self.dir.path().join(name), "127.0.0.1:0", network);
        o.join = join.to_vec();
        o.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        Server::start(o, Kinds::new()).await.unwrap()
    }

    async fn client(&self, at: &[String], claims: Claims) -> Client {
        let token = claims.sign(&Secret::new(JWT_KEY)).unwrap();
        Client::connect(
            at,
            token,
            ClientOptions::new(CLUSTER, self.client_security()),
        )
        .await
        .unwrap()
    }
}

async fn next(items: &mut statemesh::mesh::Consumer<u64>) -> Result<u64, ConsumeError> {
    tokio::time::timeout(Duration::from_secs(10), items.next())
        .await
        .expect("an item within 10 s")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_issue_passes_and_token_scopes_decide_streams() {
    nodes_and_token_holders(Env::new(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_a_token_holder_joins_with_its_client_certificate() {
    nodes_and_token_holders(Env::new(true)).await;
}

/// Three nodes, and token holders that join through them with only what
/// a client has (the CA, and a client certificate where required).
async fn nodes_and_token_holders(env: Env) {
    let a = env.start("a", &[], &["region=eu"]).await;
    let at = vec![a.address().to_owned()];
    let b = env.start("b", &at, &[]).await;
    let c = env.start("c", &at, &[]).await;

    // The nodes find each other on their own ports, as nodes.
    for server in [&a, &b, &c] {
        let mesh = server.mesh().expect("every node joins the mesh");
        assert_eq!(mesh.address(), server.address());
        eventually_async("each node sees the other two", async || {
            let catalog = mesh.catalog();
            catalog
                .iter()
                .filter(|e| matches!(e.info.role, Role::Node(_)))
                .count()
                == 2
        })
        .await;
    }

    // A token holder that may produce prices joins through node c alone.
    let pricer = env
        .client(
            &[c.address().to_owned()],
            Claims::new("pricing", Duration::from_secs(600)).produce("prices/*"),
        )
        .await;
    let mesh = Mesh::through(&pricer, "eu-feed")
        .await
        .unwrap()
        .tag("role=pricing")
        .start()
        .await
        .unwrap();
    eventually_async("the process sees the three nodes", async || {
        mesh.catalog().len() == 3
    })
    .await;
    let eu = mesh.catalog();
    let tagged: Vec<_> = eu
        .with_tags(&["region=eu"])
        .map(|e| e.info.address.clone())
        .collect();
    assert_eq!(
        tagged,
        vec![a.address().to_owned()],
        "node tags reach the catalog"
    );
    // Its scopes: produce prices, consume nothing, produce nothing else.
    assert!(matches!(
        mesh.streams().consume::<u64>("prices/eu").start(),
        Err(MeshError::MayNotConsume(_))
    ));
    assert!(matches!(
        mesh.streams().produce::<u64>("orders").start(),
        Err(MeshError::MayNotProduce(_))
    ));
    let producer = mesh.streams().produce::<u64>("prices/eu").start().unwrap();

    // A node (whose pass comes from the cluster secret) consumes it.
    let mut prices = b
        .mesh()
        .unwrap()
        .streams()
        .consume::<u64>("prices/eu")
        .start()
        .unwrap();
    for n in 0..50u64 {
        producer.send(&n).await.unwrap();
    }
    for n in 0..50u64 {
        assert_eq!(next(&mut prices).await.unwrap(), n);
    }

    // The same name and token join as the same peer; another name is
    // another peer.
    let again = Mesh::through(&pricer, "eu-feed").await.unwrap();
    let other = Mesh::through(&pricer, "us-feed").await.unwrap();
    let (again, other) = (again.start().await.unwrap(), other.start().await.unwrap());
    assert_eq!(again.id(), mesh.id());
    assert_ne!(other.id(), mesh.id());

    // A token with no stream scopes gets a pass that allows neither.
    let reader = env
        .client(
            &at,
            Claims::new("reader", Duration::from_secs(600)).read("*"),
        )
        .await;
    let looker = Mesh::through(&reader, "looker")
        .await
        .unwrap()
        .start()
        .await
        .unwrap();
    assert!(matches!(
        looker.streams().consume::<u64>("prices/eu").start(),
        Err(MeshError::MayNotConsume(_))
    ));
    for server in [a, b, c] {
        server.shutdown().await;
    }
}
