//! `statemesh bench`: etcd's benchmark workload against a statemesh
//! cluster (the same harness `bench/vs-etcd.sh` runs against etcd).

pub(crate) mod target;
pub(crate) mod workload;

use crate::connect::ConnectArgs;
use crate::output::outln;
use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;
use target::StatemeshTarget;
use workload::{Op, Target, Workload};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Client counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,256")]
    clients: Vec<usize>,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per measurement (the table shows the median and range).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Connections the clients share, at most (per system, the same for
    /// every system compared).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Bytes per key (a number, or with a unit: 1KiB).
    #[arg(long, default_value = "8")]
    key_size: crate::size::Size,
    /// Bytes per value (a number, or with a unit: 4KiB).
    #[arg(long, default_value = "256")]
    value_size: crate::size::Size,
    /// Distinct keys (written once before the reads).
    #[arg(long, default_value_t = 10_000)]
    key_space: u64,
    /// The map the benchmark writes.
    #[arg(long, default_value = "bench")]
    map: String,
    /// The name to give this system in the table.
    #[arg(long, default_value = "statemesh")]
    label: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Connections to `addresses` (round-robin), `count` of them.
async fn targets(
    connect: &ConnectArgs,
    addresses: &[String],
    count: usize,
    map: &str,
) -> anyhow::Result<Vec<Arc<StatemeshTarget>>> {
    let mut out = Vec::new();
    for i in 0..count.max(1) {
        let mut c = connect.clone();
        c.addrs = vec![addresses[i % addresses.len()].clone()];
        let client = c.client().await?;
        out.push(Arc::new(StatemeshTarget::open(&client, map).await?));
    }
    Ok(out)
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let admin = args.connect.client().await?;
    // Creates the map, then finds its leader: writes go to the leader, as
    // in etcd's benchmark.
    let first = StatemeshTarget::open(&admin, &args.map).await?;
    first
        .put(b"warm-up".to_vec(), vec![0])
        .await
        .map_err(anyhow::Error::msg)?;
    let status = admin.status().await?;
    let leader = status
        .groups
        .iter()
        .find(|(n, _)| *n == args.map)
        .and_then(|(_, g)| g.leader)
        .context("the bench map has no leader")?;
    let leader_address = status
        .members
        .get(&leader)
        .map(|m| m.address.clone())
        .context("the leader is not a member")?;
    let all: Vec<String> = status.members.values().map(|m| m.address.clone()).collect();
    let base = Workload {
        clients: 1,
        duration: Duration::from_secs(args.seconds),
        rounds: args.rounds.max(1),
        key_size: args.key_size.0,
        value_size: args.value_size.0,
        key_space: args.key_space.max(1),
    };
    eprintln!("preloading {} keys", base.key_space);
    workload::preload(Arc::new(first), base)
        .await
        .map_err(anyhow::Error::msg)?;
    outln!(
        "{}-byte keys, {}-byte values, {} s x {} rounds, at most {} connections",
        args.key_size.0,
        args.value_size.0,
        args.seconds,
        base.rounds,
        args.connections
    );
    outln!("{}", workload::header(&[]));
    for op in [Op::Put, Op::GetLinearizable, Op::GetSerializable] {
        for &clients in &args.clients {
            let conns = clients.min(args.connections).max(1);
            let addresses = if op == Op::Put {
                std::slice::from_ref(&leader_address)
            } else {
                &all[..]
            };
            let t = targets(&args.connect, addresses, conns, &args.map).await?;
            let w = Workload { clients, ..base };
            let m = workload::run(&t, op, w).await;
            outln!("{}", workload::row(&args.label, op, clients, &m, &[]));
        }
    }
    Ok(())
}
