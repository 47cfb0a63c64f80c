//! Streams through statemesh's mesh against NATS core pub/sub and Redis
//! pub/sub: the same producers, consumers and items, one system after the
//! other within each round, and one table at the end. See
//! bench/streams.sh for what is measured and why it is fair.
//!
//! `streams-harness NATS_URL REDIS_URL [SECONDS ROUNDS]` (and, run by
//! itself, `streams-harness consume ...`: see `consume.rs`)
//!
//! `STREAMS_SYSTEMS=statemesh,nats,redis` and
//! `STREAMS_CELLS=64:1:1,4096:10:1` (size:producers:consumers) narrow the
//! run; `STREAMS_LOG=statemesh_mesh=debug` logs the mesh (a tracing
//! filter).

mod consume;
mod mesh;
mod nats;
mod phase;
mod redis;
mod report;
mod setup;
mod tally;

use phase::Plan;
use report::{Cell, Sample, System};
use std::collections::BTreeMap;
use std::time::Duration;

const SIZES: [usize; 2] = [64, 4096];
/// (producers, consumers).
const TOPOLOGIES: [(usize, usize); 4] = [(1, 1), (1, 10), (1, 100), (10, 1)];
const WARM_UP: Duration = Duration::from_secs(1);

/// The latency phase's rate, in items published per second over all
/// producers: well under what the slowest of the three delivers in the
/// cell on this machine (2 cores), so that none is saturated, and the same
/// for all three.
/// It is set in deliveries per second (40,000 of 64 B, 20,000 of 4 KiB),
/// divided by the consumers each item goes to.
fn latency_rate(size: usize, consumers: usize) -> f64 {
    let deliveries_per_s: f64 = if size <= 64 { 40_000.0 } else { 20_000.0 };
    #[allow(clippy::cast_precision_loss)]
    let per_item = consumers as f64;
    deliveries_per_s / per_item
}

fn wanted<T: PartialEq + Clone>(var: &str, all: &[T], parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    match std::env::var(var) {
        Ok(list) if !list.is_empty() => {
            let chosen: Vec<T> = list.split(',').filter_map(|s| parse(s.trim())).collect();
            all.iter().filter(|x| chosen.contains(x)).cloned().collect()
        }
        _ => all.to_vec(),
    }
}

/// Consumers per consumer process.
const PER_PROCESS: usize = 25;

async fn set_up(
    system: System,
    urls: &(String, String),
    producers: usize,
    consumers: usize,
    run: u64,
) -> Result<setup::Setup, String> {
    let mut mesh_producers = None;
    let (publishers, target) = match system {
        System::Statemesh => {
            let p = mesh::producers(producers, run).await?;
            let seed = p.seed();
            mesh_producers = Some(p);
            (Vec::new(), seed)
        }
        System::Nats => (nats::publishers(&urls.0, producers).await?, urls.0.clone()),
        System::Redis => (redis::publishers(&urls.1, producers).await?, urls.1.clone()),
    };
    let mut groups = Vec::new();
    let mut left = consumers;
    while left > 0 {
        let n = left.min(PER_PROCESS);
        let args = [
            system.to_string(),
            producers.to_string(),
            n.to_string(),
            target.clone(),
            format!("{run}-{}", groups.len()),
        ];
        groups.push(setup::Group::start(&args).await?);
        left -= n;
    }
    let mut setup = setup::Setup {
        publishers,
        groups,
        consumers,
        keep: Vec::new(),
    };
    match system {
        System::Statemesh => {
            let p = mesh_producers.take().ok_or("no producers")?;
            p.subscribed(consumers).await?;
            let (publishers, meshes) = p.into_publishers();
            setup.publishers = publishers;
            setup.keep.extend(
                meshes
                    .into_iter()
                    .map(|m| Box::new(m) as Box<dyn std::any::Any + Send>),
            );
        }
        // Each consumer process flushed its subscriptions to the server.
        System::Nats => {}
        System::Redis => redis::subscribed(&urls.1, consumers).await?,
    }
    Ok(setup)
}

#[tokio::main]
async fn main() {
    // STREAMS_LOG=statemesh_mesh=debug shows what the mesh does.
    if let Ok(filter) = std::env::var("STREAMS_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("consume") {
        consume::main(&args[2..]).await;
        return;
    }
    assert!(
        args.len() >= 3,
        "usage: streams-harness NATS_URL REDIS_URL [SECONDS ROUNDS]"
    );
    let urls = (args[1].clone(), args[2].clone());
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3);
    let systems = wanted("STREAMS_SYSTEMS", &System::ALL, System::parse);
    let all_cells: Vec<Cell> = TOPOLOGIES
        .iter()
        .flat_map(|&(p, c)| SIZES.iter().map(move |&s| Cell::new(s, p, c)))
        .collect();
    let cells = wanted("STREAMS_CELLS", &all_cells, Cell::parse);
    let window = Duration::from_secs(seconds);
    let mut samples: BTreeMap<(Cell, System), Vec<Sample>> = BTreeMap::new();
    let mut phase_id = 0;
    let mut run = 0;
    let started = std::time::Instant::now();
    for round in 1..=rounds {
        for &(producers, consumers) in &TOPOLOGIES {
            let here: Vec<Cell> = cells
                .iter()
                .filter(|c| c.producers == producers && c.consumers == consumers)
                .copied()
                .collect();
            if here.is_empty() {
                continue;
            }
            for &system in &systems {
                run += 1;
                let mut setup = match set_up(system, &urls, producers, consumers, run).await {
                    Ok(s) => s,
                    Err(e) => panic!("{system} {producers}→{consumers}: {e}"),
                };
                for &cell in &here {
                    phase_id += 1;
                    let throughput = Plan {
                        id: phase_id,
                        size: cell.size,
                        rate: None,
                        warm_up: WARM_UP,
                        window,
                    };
                    let t = phase::run(&mut setup, &throughput)
                        .await
                        .unwrap_or_else(|e| panic!("{system} {cell}: {e}"));
                    phase_id += 1;
                    let rate = latency_rate(cell.size, consumers);
                    let latency = Plan {
                        id: phase_id,
                        size: cell.size,
                        rate: Some(rate),
                        warm_up: WARM_UP,
                        window,
                    };
                    let l = phase::run(&mut setup, &latency)
                        .await
                        .unwrap_or_else(|e| panic!("{system} {cell}: {e}"));
                    let sample = Sample::new(&t, &l, rate);
                    eprintln!(
                        "[{:>4}s] round {round} {cell} {system:<9} {}",
                        started.elapsed().as_secs(),
                        sample.describe()
                    );
                    samples.entry((cell, system)).or_default().push(sample);
                }
                drop(setup);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    println!();
    print!(
        "{}",
        report::table(&cells, &systems, &samples, seconds, rounds)
    );
}
