//! Meshes over TLS with certificates made at start: each pass names its
//! holder's certificate, so peers need no CA, and a pass shown by anyone
//! but its holder is refused.

use statemesh_client::network::connection::Connection;
use statemesh_client::network::handshake::{Hello, Peer};
use statemesh_client::network::{ConnectionError, Identity, Limits, Security, Tls};
use statemesh_mesh::identity;
use statemesh_mesh::pass::{Credentials, Pass, PassError, PassIssuer};
use statemesh_mesh::peer::PeerId;
use statemesh_mesh::{Mesh, MeshError};
use std::sync::Arc;
use std::time::Duration;

const CLUSTER: &str = "mesh-tls";

fn issuer() -> PassIssuer {
    PassIssuer::new(
        b"secret",
        "0000000000000000000000000000c1c1".parse().unwrap(),
    )
}

/// A pass for `name`, naming `certificate` (or none).
fn pass(name: &str, certificate: Option<&Identity>) -> Pass {
    issuer().issue_bound(
        PeerId::from_name(name),
        Duration::from_secs(600),
        vec!["*".into()],
        vec!["*".into()],
        certificate.map(identity::hash),
    )
}

fn credentials(pass: Pass) -> Credentials {
    Credentials {
        pass,
        verifier: issuer().verifier(),
    }
}

fn tls(identity: &Arc<Identity>) -> Security {
    Security::Tls(Arc::new(Tls::peer(Arc::clone(identity)).unwrap()))
}

async fn start(name: &str, identity: &Arc<Identity>, seed: Option<&Mesh>) -> Mesh {
    let mut builder = Mesh::builder(
        CLUSTER,
        tls(identity),
        credentials(pass(name, Some(identity))),
    );
    if let Some(seed) = seed {
        builder = builder.seed(seed.address());
    }
    builder.start().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_certificates_of_their_own_find_each_other_and_stream() {
    let a = start("a", &identity::ephemeral().unwrap(), None).await;
    let b = start("b", &identity::ephemeral().unwrap(), Some(&a)).await;
    let mut items = b.streams().consume::<u64>("ticks").start().unwrap();
    let producer = a.streams().produce::<u64>("ticks").start().unwrap();
    producer.send(&7).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), items.next())
        .await
        .expect("an item within 10 s")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!(got, 7);
    // The item can arrive before `a` has heard of `b` by gossip.
    tokio::time::timeout(Duration::from_secs(10), async {
        while a.catalog().len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a knows b within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_will_not_start_with_a_pass_for_another_certificate_or_none() {
    let mine = identity::ephemeral().unwrap();
    let other = identity::ephemeral().unwrap();
    for pass in [pass("p", Some(&other)), pass("p", None)] {
        let started = Mesh::builder(CLUSTER, tls(&mine), credentials(pass))
            .start()
            .await;
        assert!(
            matches!(started, Err(MeshError::Pass(PassError::Certificate(_)))),
            "{started:?}"
        );
    }
    // TLS settings without a certificate (a client's, trusting a CA):
    // told how to get one.
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["ca".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let ca_only = Security::Tls(Arc::new(Tls::client(ca.as_bytes(), None).unwrap()));
    let started = Mesh::builder(CLUSTER, ca_only, credentials(pass("p", Some(&mine))))
        .start()
        .await;
    match started {
        Err(MeshError::Config(why)) => assert!(why.contains("Mesh::through"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_shown_with_another_certificate_is_refused() {
    let holder = identity::ephemeral().unwrap();
    let a = start("a", &identity::ephemeral().unwrap(), None).await;
    // Peer b's pass, as any peer it dialed has seen it, shown by a process
    // with another certificate.
    let stolen = pass("b", Some(&holder));
    let thief = identity::ephemeral().unwrap();
    let hello = Hello {
        cluster: CLUSTER.into(),
        peer: Peer::Mesh {
            pass: postcard::to_allocvec(&stolen).unwrap(),
        },
    };
    let dialed = Connection::open(a.address(), &tls(&thief), &hello, Limits::default(), |_| {})
        .await
        .map(|_| ());
    match dialed {
        Err(ConnectionError::Refused(why)) => {
            assert!(why.contains("certificate"), "{why}");
        }
        other => panic!("the stolen pass was not refused: {other:?}"),
    }
    // Shown by its holder, it is admitted.
    let dialed = Connection::open(
        a.address(),
        &tls(&holder),
        &hello,
        Limits::default(),
        |_| {},
    )
    .await;
    assert!(dialed.is_ok(), "{:?}", dialed.err());
}
