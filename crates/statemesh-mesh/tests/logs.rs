//! What a misconfigured peer puts in the logs: one line on each side that
//! says why, not one per announce.

use statemesh_client::network::Security;
use statemesh_mesh::Mesh;
use statemesh_mesh::pass::{Credentials, PassIssuer};
use statemesh_mesh::peer::PeerId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Counts warnings by message.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<HashMap<String, usize>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            *self.0.lock().unwrap().entry(message.0).or_default() += 1;
        }
    }
}

fn credentials(secret: &[u8], name: &str) -> Credentials {
    let cluster = "0000000000000000000000000000c1c1".parse().unwrap();
    let issuer = PassIssuer::new(secret, cluster);
    Credentials {
        pass: issuer.issue(
            PeerId::from_name(name),
            Duration::from_secs(600),
            vec!["*".into()],
            vec!["*".into()],
        ),
        verifier: issuer.verifier(),
    }
}

#[test]
fn a_peer_of_another_cluster_is_reported_once_not_at_every_announce() {
    let warnings = Warnings::default();
    let subscriber = tracing_subscriber::registry().with(warnings.clone());
    // One thread, so that the scoped subscriber sees every task's events.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let ours = Mesh::builder("c", Security::Plaintext, credentials(b"ours", "ours"))
                .start()
                .await
                .unwrap();
            let _theirs = Mesh::builder("c", Security::Plaintext, credentials(b"theirs", "theirs"))
                .seed(ours.address())
                .start()
                .await
                .unwrap();
            // Announces at 0, 1, 3 and 7 s: four attempts in 8 s.
            tokio::time::sleep(Duration::from_secs(8)).await;
            assert!(ours.catalog().is_empty());
        });
    });
    let warnings = warnings.0.lock().unwrap().clone();
    assert_eq!(
        warnings.get("cannot reach the seed"),
        Some(&1),
        "the refused peer says so once: {warnings:?}"
    );
    assert_eq!(
        warnings.get("mesh connection refused or closed"),
        Some(&1),
        "the seed says it once, not at every attempt: {warnings:?}"
    );
}

#[test]
fn peers_that_give_up_during_the_tls_handshake_are_not_warned_about() {
    let warnings = Warnings::default();
    let subscriber = tracing_subscriber::registry().with(warnings.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let identity = statemesh_mesh::identity::ephemeral().unwrap();
    let tls = statemesh_client::network::Tls::peer(Arc::clone(&identity)).unwrap();
    let cluster = "0000000000000000000000000000c1c1".parse().unwrap();
    let issuer = PassIssuer::new(b"ours", cluster);
    let credentials = Credentials {
        pass: issuer.issue_bound(
            PeerId::from_name("ours"),
            Duration::from_secs(600),
            vec![],
            vec![],
            Some(statemesh_mesh::identity::hash(&identity)),
        ),
        verifier: issuer.verifier(),
    };
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let peer = Mesh::builder("c", Security::Tls(Arc::new(tls)), credentials)
                .start()
                .await
                .unwrap();
            // What a peer that stopped waiting leaves behind: the start of
            // a TLS record, then nothing.
            for _ in 0..20 {
                let mut tcp = tokio::net::TcpStream::connect(peer.address())
                    .await
                    .unwrap();
                tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0x16, 0x03, 0x01, 0x00, 0x40])
                    .await
                    .unwrap();
                drop(tcp);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        });
    });
    let warnings = warnings.0.lock().unwrap().clone();
    assert!(warnings.is_empty(), "{warnings:?}");
}
