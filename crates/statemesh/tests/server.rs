//! Servers on loopback in one process: a cluster formed by joining, the
//! membership policy, clients and their tokens.

use statemesh::collections::{
    CellState, MapState, OnceState, PriorityQueueState, SetState, VecState,
};
use statemesh::network::{
    AuthError, Authenticator, Claims, ConnectionError, DevCertificates, Secret, Tls,
};
use statemesh::{
    Client, ClientError, ClientOptions, Json, Kinds, MemberRole, Refusal, Role, Security, Server,
    ServerOptions, TcpOptions,
};
use statemesh_test_support::eventually_async;
use std::sync::Arc;
use std::time::Duration;

const CLUSTER: &str = "server-test";
const SECRET: &str = "the-cluster-secret";
const JWT_KEY: &str = "the-jwt-key";

struct Env {
    certs: DevCertificates,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            certs: DevCertificates::generate(&[]).unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn node_security(&self) -> Security {
        let c = &self.certs;
        Security::Tls(Arc::new(
            Tls::node(
                c.ca.as_bytes(),
                c.node.as_bytes(),
                c.node_key.as_bytes(),
                false,
            )
            .unwrap(),
        ))
    }

    fn options(&self, name: &str, join: &[String], role: MemberRole) -> ServerOptions {
        let network = TcpOptions::new(
            CLUSTER,
            self.node_security(),
            Authenticator::new(Secret::new(SECRET), Some(Secret::new(JWT_KEY))),
        );
        let mut o = ServerOptions::new(self.dir.path().join(name), "127.0.0.1:0", network);
        o.join = join.to_vec();
        o.role = role;
        o.replace_after = Duration::from_secs(2);
        o
    }

    async fn client(&self, addresses: &[String], token: &str) -> Result<Client, ClientError> {
        let security = Security::Tls(Arc::new(
            Tls::client(self.certs.ca.as_bytes(), None).unwrap(),
        ));
        let mut o = ClientOptions::new(CLUSTER, security);
        o.timeout = Duration::from_secs(5);
        Client::connect(addresses, token, o).await
    }
}

/// The JSON collections these tests open.
fn kinds() -> Kinds {
    let mut k = Kinds::new();
    k.register(MapState::<String, Json>::default);
    k.register(CellState::<Json>::default);
    k.register(OnceState::<Json>::default);
    k.register(SetState::<String>::default);
    k.register(VecState::<Json>::default);
    k.register(PriorityQueueState::<i64, String, Json>::unbounded);
    k
}

async fn start(env: &Env, name: &str, join: &[String], role: MemberRole) -> Server {
    Server::start(env.options(name, join, role), kinds())
        .await
        .unwrap()
}

fn voters_of(status: &statemesh::ClusterStatus, group: &str) -> Vec<u64> {
    status
        .groups
        .iter()
        .find(|(n, _)| n == group)
        .map(|(_, g)| g.voters.iter().copied().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_forms_by_joining_and_serves_clients() {
    let env = Env::new();
    let first = start(&env, "a", &[], MemberRole::Voter).await;
    let seed = vec![first.address().to_owned()];
    let second = start(&env, "b", &seed, MemberRole::Voter).await;
    let third = start(&env, "c", &seed, MemberRole::Voter).await;
    let reader = start(&env, "d", &seed, MemberRole::Reader).await;
    let all = [
        first.address(),
        second.address(),
        third.address(),
        reader.address(),
    ]
    .map(str::to_owned)
    .to_vec();
    let voters = {
        let mut v = vec![first.id(), second.id(), third.id()];
        v.sort_unstable();
        v
    };
    eventually_async("three voters in _cluster", async || {
        voters_of(&first.status().await, "_cluster") == voters
    })
    .await;

    let admin = env.client(&all, SECRET).await.unwrap();
    let map = admin.map::<String, Json>("config").await.unwrap();
    let (prev, v) = map
        .insert("a".into(), Json(serde_json::json!({"x": 1})))
        .await
        .unwrap();
    assert_eq!(prev, None);
    assert!(v > 0);
    assert_eq!(
        map.get(&"a".to_owned()).await.unwrap(),
        Some(Json(serde_json::json!({"x": 1})))
    );
    // The collection spreads to every member: three voters, the reader a
    // learner.
    eventually_async("the collection on every member", async || {
        let s = first.status().await;
        voters_of(&s, "config") == voters
    })
    .await;
    for server in [&first, &second, &third, &reader] {
        let s = server.status().await;
        let g = &s.groups.iter().find(|(n, _)| n == "config").unwrap().1;
        if server.id() == reader.id() {
            assert_eq!(g.role, Role::Learner);
        }
    }
    // Each node's own copy tells when it has the write.
    for server in [&first, &second, &third, &reader] {
        let mut when = server.when("config").await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), when.reaches(v))
            .await
            .unwrap_or_else(|_| panic!("node {} never applied {v}", server.id()));
    }
    assert!(matches!(
        first.when("nothing").await,
        Err(Refusal::NoSuchCollection(name)) if name == "nothing"
    ));
    // Each node answers from its own replica once it has the write.
    for address in &all {
        let c = env
            .client(std::slice::from_ref(address), SECRET)
            .await
            .unwrap();
        let m = c
            .map::<String, Json>("config")
            .await
            .unwrap()
            .with_consistency(statemesh::Consistency::Local);
        m.wait_version(v - 1, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(m.get(&"a".to_owned()).await.unwrap().is_some(), "{address}");
    }
    // A client of a follower learns where the leader is and writes there.
    let leader = first
        .status()
        .await
        .groups
        .iter()
        .find(|(n, _)| n == "config")
        .unwrap()
        .1
        .leader
        .unwrap();
    let servers = [&first, &second, &third];
    let follower = servers.iter().find(|s| s.id() != leader).unwrap();
    let leading = servers.iter().find(|s| s.id() == leader).unwrap();
    let c = env
        .client(&[follower.address().to_owned()], SECRET)
        .await
        .unwrap();
    let m = c.map::<String, Json>("config").await.unwrap();
    m.insert("via".into(), Json(serde_json::json!(1)))
        .await
        .unwrap();
    assert_eq!(m.leader_address().as_deref(), Some(leading.address()));
    let (_, v2) = m
        .insert("via".into(), Json(serde_json::json!(2)))
        .await
        .unwrap();
    assert!(v2 > v);
    assert_eq!(m.leader_address().as_deref(), Some(leading.address()));

    // A collection of another type under the same name is refused.
    let other = admin.cell::<Json>("config").await;
    assert!(
        matches!(other, Err(ClientError::Refused(Refusal::Mismatch { .. }))),
        "{other:?}"
    );

    reader.shutdown().await;
    third.shutdown().await;
    second.shutdown().await;
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked() {
    let env = Env::new();
    let server = start(&env, "a", &[], MemberRole::Voter).await;
    let at = vec![server.address().to_owned()];
    let admin = env.client(&at, SECRET).await.unwrap();
    admin.map::<String, Json>("orders").await.unwrap();

    // A wrong token is refused at the handshake.
    let wrong = env.client(&at, "guess").await;
    assert!(
        matches!(wrong, Err(ClientError::Connection { .. })),
        "{wrong:?}"
    );
    // An expired JWT too.
    let key = Secret::new(JWT_KEY);
    let mut old = Claims::new("old", Duration::ZERO).write("*");
    old.exp -= 60;
    let expired = env.client(&at, &old.sign(&key).unwrap()).await;
    assert!(
        matches!(
            expired,
            Err(ClientError::Connection {
                error: ConnectionError::Auth(AuthError::Expired(ago)),
                ..
            }) if ago >= Duration::from_secs(59)
        ),
        "{expired:?}"
    );
    // A read-only JWT reads but cannot write.
    let reader = Claims::new("ro", Duration::from_secs(600))
        .read("orders")
        .sign(&key)
        .unwrap();
    let ro = env.client(&at, &reader).await.unwrap();
    let orders = ro.map::<String, Json>("orders").await.unwrap();
    assert_eq!(orders.len().await.unwrap(), 0);
    let write = orders.insert("k".into(), Json(serde_json::json!(1))).await;
    assert!(
        matches!(write, Err(ClientError::Refused(Refusal::Forbidden { .. }))),
        "{write:?}"
    );
    // It may not create collections, nor read others.
    let create = ro.map::<String, Json>("users").await;
    assert!(
        matches!(create, Err(ClientError::Refused(Refusal::Forbidden { .. }))),
        "{create:?}"
    );
    // A token that expires while connected is cut off when it does.
    let short = Claims::new("short", Duration::from_secs(2))
        .write("orders")
        .sign(&key)
        .unwrap();
    let c = env.client(&at, &short).await.unwrap();
    let m = c.map::<String, Json>("orders").await.unwrap();
    m.insert("a".into(), Json(serde_json::json!(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The node closed the connection when the token expired; the client's
    // next try is refused for that reason, and says so.
    let late = m.get(&"a".to_owned()).await;
    assert!(
        matches!(
            late,
            Err(ClientError::Connection {
                error: ConnectionError::Auth(AuthError::Expired(_)),
                ..
            })
        ),
        "an expired token's read: {late:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_voter_is_replaced_by_a_learner() {
    let env = Env::new();
    let first = start(&env, "a", &[], MemberRole::Voter).await;
    let seed = vec![first.address().to_owned()];
    let second = start(&env, "b", &seed, MemberRole::Voter).await;
    let third = start(&env, "c", &seed, MemberRole::Voter).await;
    let ids = [first.id(), second.id(), third.id()];
    eventually_async("three voters", async || {
        voters_of(&first.status().await, "_cluster").len() == 3
    })
    .await;
    let spare = start(&env, "d", &seed, MemberRole::Voter).await;
    let spare_id = spare.id();
    eventually_async("the spare is a learner", async || {
        let s = first.status().await;
        let g = &s.groups[0].1;
        g.learners.contains(&spare_id)
    })
    .await;
    // A voter that is not the one we ask goes away.
    let status = first.status().await;
    let leader = status.groups[0].1.leader.unwrap();
    let servers = [first, second, third];
    let victim = ids.iter().copied().find(|&i| i != leader).unwrap();
    let mut alive = Vec::new();
    for s in servers {
        if s.id() == victim {
            s.shutdown().await;
        } else {
            alive.push(s);
        }
    }
    eventually_async("the spare replaces the lost voter", async || {
        let v = voters_of(&alive[0].status().await, "_cluster");
        v.contains(&spare_id) && !v.contains(&victim) && v.len() == 3
    })
    .await;
    spare.shutdown().await;
    for s in alive {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_handles_of_every_collection() {
    let env = Env::new();
    let server = start(&env, "a", &[], MemberRole::Voter).await;
    let at = vec![server.address().to_owned()];
    let c = env.client(&at, SECRET).await.unwrap();
    let j = |v: serde_json::Value| Json(v);

    let cell = c.cell::<Json>("cell").await.unwrap();
    assert_eq!(cell.write(j(1.into())).await.unwrap().0, None);
    assert_eq!(
        cell.compare_exchange(Some(j(2.into())), None)
            .await
            .unwrap()
            .0,
        Err(Some(j(1.into())))
    );
    assert_eq!(cell.clear().await.unwrap().0, Some(j(1.into())));
    assert_eq!(cell.read().await.unwrap(), None);

    let once = c.open::<OnceState<Json>>("once").await.unwrap();
    assert_eq!(once.get().await.unwrap(), None);
    assert_eq!(once.set(j("a".into())).await.unwrap().0, Ok(()));
    assert_eq!(once.set(j("b".into())).await.unwrap().0, Err(j("a".into())));
    assert_eq!(once.wait_value().await.unwrap(), j("a".into()));

    let set = c.open::<SetState<String>>("set").await.unwrap();
    assert!(set.insert("x".into()).await.unwrap().0);
    assert!(!set.insert("x".into()).await.unwrap().0);
    assert_eq!(set.extend(vec!["y".into(), "z".into()]).await.unwrap().0, 2);
    assert!(set.contains(&"y".into()).await.unwrap());
    assert_eq!(set.iter().await.unwrap(), ["x", "y", "z"]);
    assert!(
        set.is_subset(&["x".to_owned(), "y".into(), "z".into(), "w".into()])
            .await
            .unwrap()
    );
    assert_eq!(
        set.remove_many(vec!["x".into(), "q".into()])
            .await
            .unwrap()
            .0,
        1
    );
    assert_eq!(set.clear().await.unwrap().0, 2);
    assert!(set.is_empty().await.unwrap());

    let vec = c.open::<VecState<Json>>("vec").await.unwrap();
    assert_eq!(vec.push_back(j(1.into())).await.unwrap().0, 1);
    assert_eq!(vec.push_front(j(0.into())).await.unwrap().0, 2);
    assert_eq!(
        vec.extend(vec![j(2.into()), j(3.into())]).await.unwrap().0,
        4
    );
    assert!(
        vec.insert(9, j(9.into())).await.unwrap().0.is_err(),
        "out of range"
    );
    assert_eq!(vec.swap(0, 3).await.unwrap().0, Ok(()));
    assert_eq!(vec.front().await.unwrap(), Some(j(3.into())));
    assert_eq!(vec.back().await.unwrap(), Some(j(0.into())));
    assert_eq!(vec.index_of(&j(2.into())).await.unwrap(), Some(2));
    assert_eq!(vec.remove(1).await.unwrap().0, Ok(j(1.into())));
    assert_eq!(vec.pop_back().await.unwrap().0, Some(j(0.into())));
    assert_eq!(vec.pop_front().await.unwrap().0, Some(j(3.into())));
    assert_eq!(vec.get(0).await.unwrap(), Some(j(2.into())));
    assert_eq!(vec.truncate(0).await.unwrap().0, 1);
    assert_eq!(vec.len().await.unwrap(), 0);

    let pq = c
        .open_with("pq", &PriorityQueueState::<i64, String, Json>::unbounded())
        .await
        .unwrap();
    for (p, k) in [(5, "e"), (1, "a"), (3, "c"), (3, "b")] {
        pq.insert(p, k.into(), j(p.into())).await.unwrap();
    }
    assert_eq!(pq.min().await.unwrap().unwrap().key, "a");
    assert_eq!(pq.max().await.unwrap().unwrap().key, "e");
    let keys = |es: Vec<statemesh::collections::Entry<i64, String, Json>>| {
        es.into_iter().map(|e| e.key).collect::<Vec<_>>()
    };
    assert_eq!(keys(pq.iter(false).await.unwrap()), ["a", "b", "c", "e"]);
    assert_eq!(keys(pq.iter(true).await.unwrap()), ["e", "c", "b", "a"]);
    assert_eq!(pq.update_priority("a".into(), 10).await.unwrap().0, Some(1));
    assert_eq!(
        pq.update_value("b".into(), j(0.into())).await.unwrap().0,
        Some(j(3.into()))
    );
    assert_eq!(
        pq.compare_exchange_value("b".into(), j(0.into()), j(7.into()))
            .await
            .unwrap()
            .0,
        Ok(j(0.into()))
    );
    assert_eq!(
        keys(pq.remove_range(3..=5).await.unwrap().0),
        ["b", "c", "e"]
    );
    assert_eq!(pq.remove("a".into()).await.unwrap().0.unwrap().priority, 10);
    assert!(pq.is_empty().await.unwrap());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_just_made_is_found_on_every_member() {
    let env = Env::new();
    let first = start(&env, "a", &[], MemberRole::Voter).await;
    let seed = vec![first.address().to_owned()];
    let maker = env.client(&seed, SECRET).await.unwrap();
    type M = MapState<String, Json>;
    for i in 0..20 {
        maker.create::<M>(&format!("early{i}")).await.unwrap();
    }
    // A member that has just joined has not caught up with the record of
    // the collections yet, and one made through another member reaches
    // its copy a moment later: either way a client asking it finds them.
    let second = start(&env, "b", &seed, MemberRole::Voter).await;
    let other = env
        .client(&[second.address().to_owned()], SECRET)
        .await
        .unwrap();
    let listed = other.collections().await.unwrap();
    assert_eq!(listed.len(), 20, "{listed:?}");
    other.open_existing::<M>("early19").await.unwrap();
    for i in 0..10 {
        let name = format!("fresh{i}");
        maker.create::<M>(&name).await.unwrap();
        let listed = other.collections().await.unwrap();
        assert!(listed.iter().any(|c| c.name == name), "{name}: {listed:?}");
        other.open_existing::<M>(&name).await.unwrap();
    }
    for s in [first, second] {
        s.shutdown().await;
    }
}
