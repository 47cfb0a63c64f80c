//! Meshes in one process over loopback: discovery, and streams from
//! producer to consumer with their refusals.

use statemesh_client::network::Security;
use statemesh_core::ClusterId;
use statemesh_mesh::pass::{Credentials, PassIssuer};
use statemesh_mesh::peer::PeerId;
use statemesh_mesh::stream::{LagPolicy, Missed};
use statemesh_mesh::wire::End;
use statemesh_mesh::{ConsumeError, Mesh, MeshError};
use std::sync::Arc;
use std::time::Duration;

const CLUSTER: &str = "mesh-test";

fn cluster_id() -> ClusterId {
    "0000000000000000000000000000c1c1".parse().unwrap()
}

fn credentials(secret: &[u8], name: &str, produce: &[&str], consume: &[&str]) -> Credentials {
    let issuer = PassIssuer::new(secret, cluster_id());
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    Credentials {
        pass: issuer.issue(
            PeerId::from_name(name),
            Duration::from_secs(600),
            owned(produce),
            owned(consume),
        ),
        verifier: issuer.verifier(),
    }
}

async fn peer(name: &str, tags: &[&str], seed: Option<&Mesh>) -> Mesh {
    peer_with(credentials(b"secret", name, &["*"], &["*"]), tags, seed).await
}

async fn peer_with(credentials: Credentials, tags: &[&str], seed: Option<&Mesh>) -> Mesh {
    let mut builder = Mesh::builder(CLUSTER, Security::Plaintext, credentials);
    for tag in tags {
        builder = builder.tag(*tag);
    }
    if let Some(seed) = seed {
        builder = builder.seed(seed.address());
    }
    builder.start().await.unwrap()
}

/// Waits (up to 10 s) until `test` holds.
async fn until(what: &str, mut test: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if test() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s: {what}");
}

async fn next<T: serde::de::DeserializeOwned>(
    c: &mut statemesh_mesh::Consumer<T>,
) -> Result<T, ConsumeError> {
    tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .expect("an item within 10 s")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_find_each_other_from_one_seed() {
    let seed = peer("seed", &["role=seed"], None).await;
    let mut others = Vec::new();
    for n in 0..4 {
        others.push(peer(&format!("p{n}"), &["role=validator"], Some(&seed)).await);
    }
    until("every peer knows the four others", || {
        seed.catalog().len() == 4 && others.iter().all(|m| m.catalog().len() == 4)
    })
    .await;
    let validators = others[0].catalog().with_tags(&["role=validator"]).count();
    assert_eq!(validators, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_started_first_gets_everything_once_the_producer_appears() {
    let a = peer("consumer", &[], None).await;
    let mut consumer = a.streams().consume::<u64>("numbers").start().unwrap();
    let b = peer("producer", &[], Some(&a)).await;
    let producer = b.streams().produce::<u64>("numbers").start().unwrap();
    assert!(!producer.when().is_online(), "no consumer yet");
    for n in 0..100u64 {
        // Waits until the consumer has subscribed (the default online
        // condition: one consumer).
        producer.send(&n).await.unwrap();
    }
    for n in 0..100u64 {
        assert_eq!(next(&mut consumer).await.unwrap(), n);
    }
    assert!(consumer.when().is_online());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_requires_two_validators_waits_for_both() {
    let p = peer("producer", &[], None).await;
    let producer = p
        .streams()
        .produce::<String>("blocks")
        .online_when(|c| c.minimum_of(2).with_tags(["role=validator"]))
        .start()
        .unwrap();
    let observer = peer("observer", &["role=observer"], Some(&p)).await;
    let _o = observer
        .streams()
        .consume::<String>("blocks")
        .start()
        .unwrap();
    let v1 = peer("v1", &["role=validator"], Some(&p)).await;
    let _c1 = v1.streams().consume::<String>("blocks").start().unwrap();
    until("two consumers subscribed", || producer.consumers() == 2).await;
    assert!(
        !producer.when().is_online(),
        "one validator and one observer are not enough"
    );
    assert!(matches!(
        producer.try_send(&"early".to_owned()),
        Err(statemesh_mesh::ProduceError::Offline)
    ));
    let v2 = peer("v2", &["role=validator"], Some(&p)).await;
    let mut c2 = v2.streams().consume::<String>("blocks").start().unwrap();
    let when = producer.when();
    tokio::time::timeout(Duration::from_secs(10), when.online())
        .await
        .expect("online with two validators");
    producer.send(&"block 1".to_owned()).await.unwrap();
    assert_eq!(next(&mut c2).await.unwrap(), "block 1");
    assert!(c2.when().is_online());
    // A validator that stops consuming takes the producer offline again.
    drop(c2);
    tokio::time::timeout(Duration::from_secs(10), when.offline())
        .await
        .expect("offline with one validator left");
    assert!(matches!(
        producer.try_send(&"late".to_owned()),
        Err(statemesh_mesh::ProduceError::Offline)
    ));
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Price {
    region: String,
    cents: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_keeps_unwanted_items_from_the_consumer() {
    let p = peer("producer", &[], None).await;
    let producer = p
        .streams()
        .produce::<Price>("prices")
        .key(|price| format!("{}/price", price.region))
        .start()
        .unwrap();
    let c = peer("consumer", &[], Some(&p)).await;
    let mut eu = c
        .streams()
        .consume::<Price>("prices")
        .filter(["eu/*"])
        .start()
        .unwrap();
    producer.when().online().await;
    for (n, region) in ["us", "eu", "us", "eu", "asia"].iter().enumerate() {
        let price = Price {
            region: (*region).to_owned(),
            cents: n as u64,
        };
        producer.send(&price).await.unwrap();
    }
    assert_eq!(next(&mut eu).await.unwrap().cents, 1);
    assert_eq!(next(&mut eu).await.unwrap().cents, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_another_type_is_refused_naming_both() {
    let p = peer("producer", &[], None).await;
    let _producer = p.streams().produce::<u64>("numbers").start().unwrap();
    let c = peer("consumer", &[], Some(&p)).await;
    let mut wrong = c.streams().consume::<String>("numbers").start().unwrap();
    match next(&mut wrong).await {
        Err(ConsumeError::Refused {
            reason: End::TypeMismatch(m),
            ..
        }) => {
            assert_eq!(m.produced, "u64");
            assert_eq!(m.consumed, "alloc::string::String");
        }
        other => panic!("expected a type mismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_without_the_stream_is_refused() {
    let p = peer("producer", &[], None).await;
    let _producer = p
        .streams()
        .produce::<u64>("secret-numbers")
        .start()
        .unwrap();
    let limited = credentials(b"secret", "limited", &[], &["public/*"]);
    let c = peer_with(limited, &[], Some(&p)).await;
    let refused = c.streams().consume::<u64>("secret-numbers").start();
    assert!(matches!(refused, Err(MeshError::MayNotConsume(_))));
    let producing = c.streams().produce::<u64>("public/x").start();
    assert!(matches!(producing, Err(MeshError::MayNotProduce(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_cluster_is_refused() {
    let ours = peer("ours", &[], None).await;
    let theirs = peer_with(
        credentials(b"another secret", "theirs", &["*"], &["*"]),
        &[],
        Some(&ours),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ours.catalog().is_empty(), "{:?}", ours.catalog());
    assert!(theirs.catalog().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_does_not_read_is_told_what_it_lost() {
    let p = peer("producer", &[], None).await;
    let producer = p
        .streams()
        .produce::<u64>("fast")
        .buffer(16, 1 << 20)
        .window(4, 1 << 20)
        .on_lag(LagPolicy::DropOldest)
        .start()
        .unwrap();
    let c = peer("consumer", &[], Some(&p)).await;
    let mut slow = c
        .streams()
        .consume::<u64>("fast")
        .buffer(1)
        .start()
        .unwrap();
    producer.when().online().await;
    for n in 0..1000u64 {
        producer.send(&n).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut lost = 0;
    while seen.last() != Some(&999) {
        match next(&mut slow).await {
            Ok(n) => seen.push(n),
            Err(ConsumeError::Lagged {
                missed: Missed::Exactly(n),
                ..
            }) => lost += n,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lost > 0, "a consumer that did not read lost items");
    assert_eq!(
        seen.len() as u64 + lost,
        1000,
        "every item is either received or counted lost"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_faster_than_its_consumer_waits_for_it_and_nothing_is_lost() {
    let p = peer("producer", &[], None).await;
    let producer = p
        .streams()
        .produce::<u64>("paced")
        .buffer(16, 1 << 20)
        .window(4, 1 << 20)
        .patience(Duration::from_secs(30))
        .start()
        .unwrap();
    let c = peer("consumer", &[], Some(&p)).await;
    let mut slow = c
        .streams()
        .consume::<u64>("paced")
        .buffer(1)
        .start()
        .unwrap();
    producer.when().online().await;
    // Producer and consumer share a runtime, so the producer must not
    // hold it while it waits: it sends from a task of its own (a
    // producer is Sync, so `send` can be awaited there).
    let producer = Arc::new(producer);
    let sending = tokio::spawn({
        let producer = Arc::clone(&producer);
        async move {
            for n in 0..2000u64 {
                producer.send(&n).await.unwrap();
            }
        }
    });
    for n in 0..2000u64 {
        if n % 100 == 0 {
            // Slower than the producer: without waiting for the consumer,
            // a buffer of 16 would push out most of these.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(next(&mut slow).await.unwrap(), n, "no loss and no gap");
    }
    sending.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_peer_leaves_the_catalog_in_the_documented_time() {
    let seed = peer("seed", &[], None).await;
    let a = peer("a", &[], Some(&seed)).await;
    let b = peer("b", &[], Some(&seed)).await;
    until("all three know each other", || {
        seed.catalog().len() == 2 && a.catalog().len() == 2 && b.catalog().len() == 2
    })
    .await;
    let gone = b.id();
    drop(b);
    let bound = statemesh_mesh::gossip::Timing::default().detection_bound();
    // The bound is the failure detector's; allow as much again for a
    // loaded test machine's scheduling.
    let deadline = std::time::Instant::now() + bound * 2;
    while seed.catalog().get(gone).is_some() || a.catalog().get(gone).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "a stopped peer still listed after {:?}",
            bound * 2
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_a_restarted_producer_hears_of_an_unknown_loss_then_goes_on() {
    let c = peer("consumer", &[], None).await;
    let mut consumer = c.streams().consume::<u64>("numbers").start().unwrap();
    let p = peer("producer", &[], Some(&c)).await;
    let producer = p.streams().produce::<u64>("numbers").start().unwrap();
    for n in 0..5u64 {
        producer.send(&n).await.unwrap();
    }
    for n in 0..5u64 {
        assert_eq!(next(&mut consumer).await.unwrap(), n);
    }
    // The same peer (same pass id) starts again, elsewhere, with a new
    // replay buffer.
    drop(producer);
    drop(p);
    let p = peer("producer", &[], Some(&c)).await;
    let producer = p.streams().produce::<u64>("numbers").start().unwrap();
    for n in 100..103u64 {
        producer.send(&n).await.unwrap();
    }
    match next(&mut consumer).await {
        Err(ConsumeError::Lagged {
            missed: Missed::Unknown,
            producer: from,
        }) => assert_eq!(from, p.id()),
        other => panic!("expected an unknown loss first, got {other:?}"),
    }
    for n in 100..103u64 {
        assert_eq!(next(&mut consumer).await.unwrap(), n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_ends_when_the_peers_pass_expires() {
    let p = peer("producer", &[], None).await;
    let producer = p
        .streams()
        .produce::<u64>("numbers")
        .online_when(|c| c.minimum_of(0))
        .start()
        .unwrap();
    // A pass good for 2 s: its subscription ends with it, and a new one
    // is refused.
    let issuer = PassIssuer::new(b"secret", cluster_id());
    let short = Credentials {
        pass: issuer.issue(
            PeerId::from_name("short"),
            Duration::from_secs(2),
            vec![],
            vec!["*".into()],
        ),
        verifier: issuer.verifier(),
    };
    let c = peer_with(short, &[], Some(&p)).await;
    let _consumer = c.streams().consume::<u64>("numbers").start().unwrap();
    until("subscribed", || producer.consumers() == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        producer.consumers(),
        0,
        "the expired pass's subscription ended"
    );
}

/// A durable producer's log may complete an append before its callback is
/// even registered, calling it at once, inside the append: that path must
/// not wait for anything the producer holds (it once took the ring's lock,
/// held around the append, and hung).
#[cfg(feature = "durable")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_producer_sends_thousands_without_waiting_on_itself() {
    let dir = tempfile::tempdir().unwrap();
    let p = peer("producer", &[], None).await;
    let producer = p
        .streams()
        .produce::<u64>("numbers")
        .durable(dir.path(), statemesh_wal::SyncPolicy::Never)
        .buffer(4096, 16 << 20)
        .online_when(|c| c.minimum_of(0))
        .start()
        .unwrap();
    let c = peer("consumer", &[], Some(&p)).await;
    let mut consumer = c.streams().consume::<u64>("numbers").start().unwrap();
    until("subscribed", || producer.consumers() == 1).await;
    let sending = async {
        for n in 0..3000u64 {
            producer.send(&n).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), sending)
        .await
        .expect("3,000 durable sends within 30 s");
    for n in 0..3000u64 {
        assert_eq!(next(&mut consumer).await.unwrap(), n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_producer_can_exit_at_once_without_losing_items() {
    let a = peer("consumer", &[], None).await;
    let mut consumer = a.streams().consume::<u64>("last-words").start().unwrap();
    let b = peer("producer", &[], Some(&a)).await;
    let producer = b.streams().produce::<u64>("last-words").start().unwrap();
    // Fewer items than a consumer acknowledges at a time: only the
    // acknowledgement sent when it has nothing more to read covers them.
    for n in 0..5u64 {
        producer.send(&n).await.unwrap();
    }
    assert!(producer.flushed(Duration::from_secs(10)).await);
    drop(producer);
    drop(b);
    for n in 0..5u64 {
        assert_eq!(next(&mut consumer).await.unwrap(), n);
    }
}
