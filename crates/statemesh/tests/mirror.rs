//! Mirrors against servers on loopback in one process: catch-up by changes
//! or by the whole state, pushed updates, identity, resuming on another
//! node and from a directory, and a mirror too slow to keep up.

mod common;

use common::Env;
use serde::{Deserialize, Serialize};
use statemesh::collections::MapState;
use statemesh::{
    Changes, Client, ClientError, HistoryLimits, Kinds, Mirror, MirrorError, MirrorOptions,
    Mirrored, Queryable, Refusal, Resync, StateMachine, Update,
};
use statemesh_test_support::eventually_async;
use std::collections::BTreeMap;
use std::time::Duration;

type Prices = MapState<String, u64>;

/// A counter that starts at `base`: a state machine whose identity depends
/// on its initial state, not only on its type.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counter {
    base: u64,
    count: u64,
}

impl StateMachine for Counter {
    type Command = u64;
    type Response = u64;
    type Snapshot = (u64, u64);

    fn signature(&self) -> String {
        "test::Counter".into()
    }

    fn apply(&mut self, add: u64, version: u64) -> u64 {
        self.apply_recording(add, version, &mut Changes::off())
    }

    fn snapshot(&self) -> (u64, u64) {
        (self.base, self.count)
    }

    fn restore(&mut self, (base, count): (u64, u64)) {
        self.base = base;
        self.count = count;
    }
}

impl statemesh::local::Publish for Counter {}

impl Mirrored for Counter {
    type Change = u64;

    fn apply_recording(&mut self, add: u64, _version: u64, changes: &mut Changes<u64>) -> u64 {
        self.count += add;
        changes.record(|| self.count);
        self.count
    }

    fn apply_change(&mut self, count: u64) {
        // A copy that cannot take one value: what a mirror does when its
        // state machine panics (replicas apply commands, not changes).
        assert_ne!(count, UNAPPLIABLE, "a change this copy cannot apply");
        self.count = count;
    }
}

/// The count a mirror's counter panics on.
const UNAPPLIABLE: u64 = 13;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Total;

impl Queryable for Counter {
    type Query = Total;
    type Answer = u64;

    fn answer(&self, _: Total) -> u64 {
        self.base + self.count
    }
}

/// What the test servers host: the counter and maps of numbers.
fn kinds() -> Kinds {
    let mut kinds = Kinds::new();
    kinds.register(Counter::default);
    kinds.register(Prices::default);
    kinds
}

fn small_history() -> HistoryLimits {
    HistoryLimits {
        versions: 20,
        bytes: 1 << 20,
    }
}
/// The map as the cluster has it, and the version it was read at.
async fn truth(client: &Client, name: &str) -> (BTreeMap<String, u64>, u64) {
    let map = client.map::<String, u64>(name).await.unwrap();
    let (_, version) = map.insert("_probe".into(), 0).await.unwrap();
    (map.iter().await.unwrap().into_iter().collect(), version)
}

fn copy(m: &Mirror<Prices>) -> BTreeMap<String, u64> {
    m.iter().collect()
}

async fn converged(m: &Mirror<Prices>, client: &Client, name: &str) {
    let (want, version) = truth(client, name).await;
    let mut when = m.when();
    tokio::time::timeout(Duration::from_secs(30), when.reaches(version))
        .await
        .expect("the mirror reaches the cluster's version");
    assert_eq!(copy(m), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_converge_from_nothing_an_old_version_and_a_recent_one() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], small_history()).await;
    let client = env.client(&[node.address().to_owned()]).await;
    let prices = client.map::<String, u64>("prices").await.unwrap();
    for i in 0..10 {
        prices.insert(format!("k{i}"), i).await.unwrap();
    }

    // From nothing, on a collection whose whole history the node holds:
    // changes, not the state.
    let fresh = Mirror::<Prices>::open(&client, "prices").await.unwrap();
    converged(&fresh, &client, "prices").await;
    assert_eq!(fresh.stats().full_states, 0, "{:?}", fresh.stats());

    // Two copies on disk, closed at the same version.
    let old_dir = env.dir.path().join("old");
    let recent_dir = env.dir.path().join("recent");
    let current_dir = env.dir.path().join("current");
    for dir in [&old_dir, &recent_dir, &current_dir] {
        let m = Mirror::<Prices>::open_with(
            &client,
            "prices",
            Prices::default(),
            MirrorOptions::default().persist_in(dir),
        )
        .await
        .unwrap();
        converged(&m, &client, "prices").await;
        m.close().await.unwrap();
    }

    // A copy that is current opens at once: the node says so instead of
    // leaving it to wait for the next write.
    let current = tokio::time::timeout(
        Duration::from_secs(5),
        Mirror::<Prices>::open_with(
            &client,
            "prices",
            Prices::default(),
            MirrorOptions::default().persist_in(&current_dir),
        ),
    )
    .await
    .expect("a current copy opens without waiting for a write")
    .unwrap();
    assert_eq!(current.resumed_from(), Some(current.version()));
    let stats = current.stats();
    assert_eq!((stats.full_states, stats.diffs), (0, 0), "{stats:?}");
    converged(&current, &client, "prices").await;
    drop(current);

    // A few changes: within the history of 20 versions.
    for i in 0..5 {
        prices.insert(format!("r{i}"), i).await.unwrap();
    }
    let recent = Mirror::<Prices>::open_with(
        &client,
        "prices",
        Prices::default(),
        MirrorOptions::default().persist_in(&recent_dir),
    )
    .await
    .unwrap();
    converged(&recent, &client, "prices").await;
    assert_eq!(recent.stats().full_states, 0, "{:?}", recent.stats());

    // Many more: the old copy is out of the history and gets the state.
    for i in 0..60 {
        prices.insert(format!("o{i}"), i).await.unwrap();
    }
    prices.remove("k3".into()).await.unwrap();
    let old = Mirror::<Prices>::open_with(
        &client,
        "prices",
        Prices::default(),
        MirrorOptions::default().persist_in(&old_dir),
    )
    .await
    .unwrap();
    converged(&old, &client, "prices").await;
    assert_eq!(old.stats().full_states, 1, "{:?}", old.stats());

    // The live ones followed every change.
    converged(&fresh, &client, "prices").await;
    converged(&recent, &client, "prices").await;
    assert_eq!(fresh.stats().full_states, 0);
    assert!(!copy(&fresh).contains_key("k3"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_arrive_in_order_as_they_commit() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], HistoryLimits::default()).await;
    let client = env.client(&[node.address().to_owned()]).await;
    let prices = client.map::<String, u64>("prices").await.unwrap();
    let mirror = Mirror::<Prices>::open(&client, "prices").await.unwrap();
    let mut updates = mirror.updates();
    let mut versions = Vec::new();
    for i in 0..20u64 {
        let (_, v) = prices.insert(format!("k{}", i % 5), i).await.unwrap();
        versions.push(v);
    }
    let mut seen = BTreeMap::new();
    let mut last = mirror.version().min(versions[0] - 1);
    while last < *versions.last().unwrap() {
        let u = tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .unwrap()
            .unwrap();
        match &*u {
            Update::Changes { from, to, changes } => {
                assert!(*from <= last.max(*from) && to > from, "{u:?}");
                last = *to;
                for c in changes {
                    if let statemesh::collections::MapChange::Put(k, v) = c {
                        seen.insert(k.clone(), *v);
                    }
                }
            }
            Update::Reset { .. } => panic!("a mirror that keeps up gets no reset: {u:?}"),
        }
    }
    assert_eq!(seen, copy(&mirror));
    assert_eq!(seen.get("k4"), Some(&19));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_identity_is_refused_naming_both() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], HistoryLimits::default()).await;
    let client = env.client(&[node.address().to_owned()]).await;
    let counter = client.open::<Counter>("counter").await.unwrap();
    counter.execute(5).await.unwrap();

    let same = Mirror::<Counter>::open(&client, "counter").await.unwrap();
    assert_eq!(same.read_with(|c| c.count), 5);

    // Same type, another initial state: another collection.
    let other = Counter { base: 7, count: 0 };
    let err = Mirror::open_with(&client, "counter", other.clone(), MirrorOptions::default())
        .await
        .unwrap_err();
    match err {
        MirrorError::Client(ClientError::Refused(Refusal::Identity { ours, theirs, .. })) => {
            assert_eq!(ours, statemesh::Identity::of("counter", &other).to_hex());
            assert_eq!(
                theirs,
                statemesh::Identity::of("counter", &Counter::default()).to_hex()
            );
        }
        other => panic!("{other:?}"),
    }
    // A client handle is refused the same way.
    let err = client.open_with("counter", &other).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Refused(Refusal::Identity { .. })),
        "{err}"
    );
    // Another type altogether.
    let err = Mirror::<Prices>::open(&client, "counter")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MirrorError::Client(ClientError::Refused(Refusal::Mismatch { .. }))
        ),
        "{err}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_resumes_on_another_node_without_the_whole_state() {
    let env = Env::new(kinds());
    let ([a, b, c], all) = env.three().await;
    let client = env.client(&all).await;
    let prices = client.map::<String, u64>("prices").await.unwrap();
    eventually_async("three voters", async || prices_status(&client).await == 3).await;
    for i in 0..10 {
        prices.insert(format!("k{i}"), i).await.unwrap();
    }
    // The mirror's own client starts at node a.
    let mirror_client = env.client(&all).await;
    let mirror = Mirror::<Prices>::open(&mirror_client, "prices")
        .await
        .unwrap();
    converged(&mirror, &client, "prices").await;

    a.shutdown().await;
    let survivors = env.client(&all[1..]).await;
    let prices = survivors.map::<String, u64>("prices").await.unwrap();
    for i in 10..30 {
        prices.insert(format!("k{i}"), i).await.unwrap();
    }
    converged(&mirror, &survivors, "prices").await;
    let stats = mirror.stats();
    assert!(stats.resubscriptions >= 1, "{stats:?}");
    assert_eq!(stats.full_states, 0, "{stats:?}");
    b.shutdown().await;
    c.shutdown().await;
}

/// The members of `prices` that vote, as the answering node sees them.
async fn prices_status(client: &Client) -> usize {
    client
        .status()
        .await
        .map(|s| {
            s.groups
                .iter()
                .find(|(n, _)| n == "prices")
                .map_or(0, |(_, g)| g.voters.len())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_too_slow_is_resynchronised_and_holds_nobody_up() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], small_history()).await;
    let client = env.client(&[node.address().to_owned()]).await;
    let prices = client.map::<String, u64>("prices").await.unwrap();
    let mirror = Mirror::<Prices>::open(&client, "prices").await.unwrap();
    let mut updates = mirror.updates();

    // The mirror cannot apply anything while its state is held: it stops
    // acknowledging. The cluster goes on committing all the same.
    let stuck: statemesh::View<Prices> = (*mirror).clone();
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || stuck.read_with(|_| release.recv()));
    for i in 0..200 {
        prices.insert(format!("k{}", i % 50), i).await.unwrap();
    }
    hold.send(()).unwrap();
    holder.join().unwrap().unwrap();

    converged(&mirror, &client, "prices").await;
    assert!(mirror.stats().full_states >= 1, "{:?}", mirror.stats());
    let mut reset = false;
    while let Ok(u) = updates.try_recv() {
        if let Update::Reset { reason, .. } = &*u {
            assert_eq!(*reason, Resync::TooSlow);
            reset = true;
        }
    }
    assert!(reset, "the mirror was told it was too slow");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_mirrors_follow_ten_thousand_updates() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], HistoryLimits::default()).await;
    let address = vec![node.address().to_owned()];
    let writer = env.client(&address).await;
    writer.map::<String, u64>("prices").await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(env.client(&address).await);
    }
    let mut mirrors = Vec::new();
    for i in 0..1000 {
        mirrors.push(
            Mirror::<Prices>::open(&clients[i % clients.len()], "prices")
                .await
                .unwrap(),
        );
    }
    // 10,000 updates of 2,000 keys: 1,000 writes of 10, from 4 writers.
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4u64 {
        let map = writer.map::<String, u64>("prices").await.unwrap();
        writers.spawn(async move {
            for i in 0..250u64 {
                let n = w * 250 + i;
                let entries = (0..10)
                    .map(|k| (format!("k{}", (n * 10 + k) % 2000), n))
                    .collect();
                map.extend(entries).await.unwrap();
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    let (want, version) = truth(&writer, "prices").await;
    assert_eq!(want.len(), 2001);
    for m in &mirrors {
        let mut when = m.when();
        tokio::time::timeout(Duration::from_secs(60), when.reaches(version))
            .await
            .expect("every mirror reaches the cluster's version");
        assert_eq!(copy(m), want);
        assert_eq!(m.stats().full_states, 0, "{:?}", m.stats());
    }
    node.shutdown().await;
}

/// A mirror whose state machine panics on a change takes nothing down with
/// it: its connection goes on carrying requests and another mirror's
/// pushes, and the mirror keeps its last good state and asks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_a_mirror_cannot_apply_disturbs_nothing_else() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], HistoryLimits::default()).await;
    let client = env.client(&[node.address().to_owned()]).await;
    let counter = client.open::<Counter>("counter").await.unwrap();
    let (_, five) = counter.execute(5).await.unwrap();
    let fragile = Mirror::<Counter>::open(&client, "counter").await.unwrap();
    let prices = client.map::<String, u64>("prices").await.unwrap();
    let healthy = Mirror::<Prices>::open(&client, "prices").await.unwrap();

    counter.execute(UNAPPLIABLE - 5).await.unwrap();
    eventually_async("the mirror to ask again", async || {
        fragile.stats().resubscriptions >= 2
    })
    .await;
    assert_eq!(fragile.version(), five);
    assert_eq!(fragile.read_with(|c| c.count), 5);
    assert!(fragile.stopped().is_none());

    // The same client, and so the same connection, works on (a reader
    // that died with the mirror would leave these waiting).
    tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0..20 {
            prices.insert(format!("k{i}"), i).await.unwrap();
        }
        converged(&healthy, &client, "prices").await;
    })
    .await
    .expect("the connection still carries requests and pushes");
    // Its subscription was never cut.
    assert_eq!(healthy.stats().resubscriptions, 0);
    node.shutdown().await;
}
