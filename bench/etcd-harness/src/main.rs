//! Runs etcd's benchmark workload against an etcd cluster and a statemesh
//! cluster, one after the other, with the same load generator, and prints
//! one table with the ratio of each measurement.
//!
//! `etcd-harness ETCD_ENDPOINTS STATEMESH_ADDRESSES SECRET [SECONDS ROUNDS]`
//! (endpoints and addresses comma-separated; both clusters plaintext).
//!
//! `etcd-harness failover ...` measures failover instead (see
//! `failover.rs` and bench/failover.sh).

mod failover;
#[path = "../../../crates/statemesh-cli/src/bench/target.rs"]
mod target;
#[path = "../../../crates/statemesh-cli/src/bench/workload.rs"]
mod workload;

use etcd_client::{Client as Etcd, GetOptions};
use statemesh::{Client, ClientOptions, Security};
use std::sync::Arc;
use std::time::Duration;
use target::StatemeshTarget;
use workload::{Measured, Op, Target, Workload};

struct EtcdTarget(Etcd);

impl Target for EtcdTarget {
    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        let mut c = self.0.clone();
        c.put(key, value, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn get(&self, key: Vec<u8>, linearizable: bool) -> Result<(), String> {
        let mut c = self.0.clone();
        let options = (!linearizable).then(|| GetOptions::new().with_serializable());
        c.get(key, options)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

const CLIENTS: [usize; 2] = [1, 256];
const CONNECTIONS: usize = 32;

async fn etcd_leader(endpoints: &[String]) -> String {
    for e in endpoints {
        if let Ok(mut c) = Etcd::connect([e.as_str()], None).await
            && let Ok(s) = c.status().await
            && let Some(h) = s.header()
            && s.leader() == h.member_id()
        {
            return e.clone();
        }
    }
    panic!("no etcd leader among {endpoints:?}");
}

async fn etcd_targets(endpoints: &[String], n: usize) -> Vec<Arc<EtcdTarget>> {
    let mut out = Vec::new();
    for i in 0..n {
        let e = &endpoints[i % endpoints.len()];
        out.push(Arc::new(EtcdTarget(
            Etcd::connect([e.as_str()], None).await.expect("etcd"),
        )));
    }
    out
}

async fn statemesh_client(address: &str, secret: &str) -> Client {
    let options = ClientOptions::new("statemesh", Security::Plaintext);
    Client::connect(&[address.to_owned()], secret, options)
        .await
        .expect("statemesh")
}

async fn statemesh_targets(
    addresses: &[String],
    secret: &str,
    n: usize,
) -> Vec<Arc<StatemeshTarget>> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = statemesh_client(&addresses[i % addresses.len()], secret).await;
        out.push(Arc::new(
            StatemeshTarget::open(&c, "bench").await.expect("bench map"),
        ));
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("failover") {
        failover::main(&args[2..]).await;
        return;
    }
    assert!(
        args.len() >= 4,
        "usage: etcd-harness ETCD_ENDPOINTS STATEMESH_ADDRESSES SECRET [SECONDS ROUNDS]"
    );
    let etcd: Vec<String> = args[1].split(',').map(str::to_owned).collect();
    let sm: Vec<String> = args[2].split(',').map(str::to_owned).collect();
    let secret = args[3].clone();
    let seconds = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rounds = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = Workload {
        clients: 1,
        duration: Duration::from_secs(seconds),
        rounds,
        key_size: 8,
        value_size: 256,
        key_space: 10_000,
    };

    // Writes go to each system's leader; reads to every member.
    let etcd_lead = etcd_leader(&etcd).await;
    let admin = statemesh_client(&sm[0], &secret).await;
    let first = StatemeshTarget::open(&admin, "bench")
        .await
        .expect("bench map");
    first
        .put(b"warm-up".to_vec(), vec![0])
        .await
        .expect("first write");
    let status = admin.status().await.expect("status");
    let leader = status
        .groups
        .iter()
        .find(|(n, _)| n == "bench")
        .and_then(|(_, g)| g.leader)
        .expect("leader");
    let sm_lead = status.members[&leader].address.clone();

    eprintln!("preloading {} keys into each", base.key_space);
    workload::preload(Arc::new(first), base)
        .await
        .expect("statemesh preload");
    workload::preload(
        etcd_targets(std::slice::from_ref(&etcd_lead), 1)
            .await
            .remove(0),
        base,
    )
    .await
    .expect("etcd preload");

    let mut table = Vec::new();
    for op in [Op::Put, Op::GetLinearizable, Op::GetSerializable] {
        for clients in CLIENTS {
            let conns = clients.min(CONNECTIONS);
            let w = Workload { clients, ..base };
            let (e_addrs, s_addrs) = if op == Op::Put {
                (vec![etcd_lead.clone()], vec![sm_lead.clone()])
            } else {
                (etcd.clone(), sm.clone())
            };
            eprintln!("{} with {clients} clients", op.name());
            let e = workload::run(&etcd_targets(&e_addrs, conns).await, op, w).await;
            let s = workload::run(&statemesh_targets(&s_addrs, &secret, conns).await, op, w).await;
            table.push((op, clients, e, s));
        }
    }
    println!(
        "8-byte keys, 256-byte values, {seconds} s x {rounds} rounds, at most {CONNECTIONS} connections, 3 nodes on loopback, fsync on every commit"
    );
    println!("{}", workload::header(&["statemesh / etcd, ops/s"]));
    let ratio =
        |e: &Measured, s: &Measured| s.ops_per_sec().0 / e.ops_per_sec().0.max(f64::MIN_POSITIVE);
    for (op, clients, e, s) in &table {
        println!(
            "{}",
            workload::row("etcd 3.4", *op, *clients, e, &[String::new()])
        );
        let r = format!("{:.2}x", ratio(e, s));
        println!("{}", workload::row("statemesh", *op, *clients, s, &[r]));
    }
}
