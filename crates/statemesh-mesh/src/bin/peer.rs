//! `statemesh-mesh-peer`: one mesh peer in a process of its own, driven
//! line by line on standard input, for the tests with real processes
//! (`tests/processes.rs`); not a tool for users.
//!
//! ```text
//! statemesh-mesh-peer NAME SECRET [--seed ADDR] [--tag TAG]... [--listen ADDR] [--advertise ADDR]
//!                     [--durable DIR] [--produce PATTERNS] [--consume PATTERNS]
//! ```
//!
//! It joins cluster `test` with a pass for peer `NAME` signed under
//! `SECRET` (so a restarted peer is the same peer), allowing the streams
//! the comma-separated `PATTERNS` name (default `*`), prints
//! `ready ID ADDRESS`, then takes commands (one that fails prints
//! `error WHY`):
//!
//! - `produce STREAM ITEMS POLICY MINIMUM`: produces `STREAM` with a
//!   replay buffer of `ITEMS` (and 64 MiB), lag policy `drop` or
//!   `disconnect`, online with `MINIMUM` consumers, items keyed `even` or
//!   `odd`, its buffer in `DIR/STREAM` with `--durable`; prints
//!   `producing STREAM`.
//! - `produce-for-validators STREAM N`: produces `STREAM`, online with
//!   `N` consumers tagged `role=validator`; prints `producing STREAM`.
//! - `online STREAM`: prints `online STREAM true|false`.
//! - `wait STREAM N`: waits until `N` consumers are subscribed; prints
//!   `consumers STREAM N`.
//! - `send STREAM FROM COUNT PAD`: sends items `FROM..FROM+COUNT`, each
//!   with `PAD` bytes of padding, waiting while the producer is offline;
//!   prints `sent STREAM LAST`.
//! - `consume STREAM [FILTER]`: consumes `STREAM`; prints `item STREAM N`
//!   for each item, `lagged STREAM COUNT|unknown` for each loss and
//!   `refused STREAM REASON`.
//! - `consume-as-text STREAM`: consumes `STREAM` as strings (another type
//!   than the producer's), printing as `consume` does.
//! - `catalog`: prints `catalog ID,ID,...` (the other peers' ids, sorted).
//! - `memory`: prints `memory RSS_KIB`.
//! - `leave`: leaves the mesh; prints `left MILLIS` (how long it took).
//!
//! It exits when standard input closes.

use serde::{Deserialize, Serialize};
use statemesh_mesh::pass::{Credentials, PassIssuer};
use statemesh_mesh::peer::PeerId;
use statemesh_mesh::stream::{LagPolicy, Missed};
use statemesh_mesh::{ConsumeError, Mesh, Producer, Security};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the test streams carry.
#[derive(Serialize, Deserialize)]
struct Item {
    n: u64,
    #[serde(with = "serde_bytes")]
    pad: Vec<u8>,
}

const USAGE: &str = "usage: statemesh-mesh-peer NAME SECRET [--seed ADDR] [--tag TAG]... \
                     [--listen ADDR] [--advertise ADDR] [--durable DIR] \
                     [--produce PATTERNS] [--consume PATTERNS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, secret, options)) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("statemesh-mesh-peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(name, secret, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("statemesh-mesh-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Options {
    seeds: Vec<String>,
    tags: Vec<String>,
    listen: Option<String>,
    advertise: Option<String>,
    durable: Option<String>,
    /// Stream patterns the pass allows producing and consuming.
    produce: Vec<String>,
    consume: Vec<String>,
}

fn parse(args: &[String]) -> Option<(&str, &str, Options)> {
    let [name, secret, rest @ ..] = args else {
        return None;
    };
    let mut options = Options {
        produce: vec!["*".into()],
        consume: vec!["*".into()],
        ..Options::default()
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next()?.clone();
        match flag.as_str() {
            "--seed" => options.seeds.push(value),
            "--tag" => options.tags.push(value),
            "--listen" => options.listen = Some(value),
            "--durable" => options.durable = Some(value),
            "--produce" => {
                options.produce = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--consume" => {
                options.consume = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--advertise" => options.advertise = Some(value),
            _ => return None,
        }
    }
    Some((name, secret, options))
}

async fn run(name: &str, secret: &str, options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let cluster = "000000000000000000000000000000aa".parse()?;
    let issuer = PassIssuer::new(secret.as_bytes(), cluster);
    let credentials = Credentials {
        pass: issuer.issue(
            PeerId::from_name(name),
            Duration::from_secs(3600),
            options.produce.clone(),
            options.consume.clone(),
        ),
        verifier: issuer.verifier(),
    };
    let mut builder = Mesh::builder("test", Security::Plaintext, credentials);
    for seed in options.seeds {
        builder = builder.seed(seed);
    }
    for tag in options.tags {
        builder = builder.tag(tag);
    }
    if let Some(address) = options.listen {
        builder = builder.listen(address);
    }
    if let Some(address) = options.advertise {
        builder = builder.advertise(address);
    }
    let durable = options.durable;
    let mesh = builder.start().await?;
    println!("ready {} {}", mesh.id(), mesh.me().address);
    let mut state = State {
        mesh,
        durable,
        producers: HashMap::new(),
        consumers: Vec::new(),
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        // A command that fails says why and the peer goes on, as a
        // program would after a refused call.
        if let Err(e) = state.handle(&line).await {
            println!("error {e}");
        }
    }
    Ok(())
}

/// What the commands work on.
struct State {
    mesh: Mesh,
    durable: Option<String>,
    producers: HashMap<String, Producer<Item>>,
    consumers: Vec<tokio::task::JoinHandle<()>>,
}

impl State {
    async fn handle(&mut self, line: &str) -> Result<(), Box<dyn std::error::Error>> {
        let (mesh, durable, producers, consumers) = (
            &self.mesh,
            &self.durable,
            &mut self.producers,
            &mut self.consumers,
        );
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["produce", stream, items, policy, minimum] => {
                let minimum: usize = minimum.parse()?;
                let policy = if policy == "drop" {
                    LagPolicy::DropOldest
                } else {
                    LagPolicy::Disconnect
                };
                let mut builder = mesh
                    .streams()
                    .produce::<Item>(stream)
                    .buffer(items.parse()?, 64 << 20)
                    .on_lag(policy)
                    .online_when(|c| c.minimum_of(minimum))
                    .key(|item| if item.n % 2 == 0 { "even" } else { "odd" }.to_owned());
                if let Some(dir) = &durable {
                    builder = builder.durable(
                        std::path::Path::new(dir).join(stream),
                        statemesh_wal::SyncPolicy::Never,
                    );
                }
                let producer = builder.start()?;
                producers.insert(stream.to_owned(), producer);
                println!("producing {stream}");
            }
            ["send", stream, from, count, pad] => {
                let producer = producers.get(stream).ok_or("no such producer")?;
                let (from, count): (u64, u64) = (from.parse()?, count.parse()?);
                let pad = vec![0x5A; pad.parse()?];
                for n in from..from + count {
                    let item = Item {
                        n,
                        pad: pad.clone(),
                    };
                    producer.send(&item).await?;
                }
                println!("sent {stream} {}", (from + count).saturating_sub(1));
            }
            ["consume", stream, ref filter @ ..] => {
                let mut consumer = mesh
                    .streams()
                    .consume::<Item>(stream)
                    .filter(filter.iter().copied())
                    .start()?;
                let stream = stream.to_owned();
                consumers.push(tokio::spawn(async move {
                    while let Some(next) = consumer.next().await {
                        match next {
                            Ok(item) => println!("item {stream} {}", item.n),
                            Err(ConsumeError::Lagged { missed, .. }) => match missed {
                                Missed::Exactly(n) => println!("lagged {stream} {n}"),
                                Missed::Unknown => println!("lagged {stream} unknown"),
                            },
                            Err(e) => println!("refused {stream} {e}"),
                        }
                    }
                }));
            }
            ["produce-for-validators", stream, n] => {
                let n: usize = n.parse()?;
                let producer = mesh
                    .streams()
                    .produce::<Item>(stream)
                    .online_when(|c| c.minimum_of(n).with_tags(["role=validator"]))
                    .start()?;
                producers.insert(stream.to_owned(), producer);
                println!("producing {stream}");
            }
            ["online", stream] => {
                let producer = producers.get(stream).ok_or("no such producer")?;
                println!("online {stream} {}", producer.when().is_online());
            }
            ["wait", stream, n] => {
                let producer = producers.get(stream).ok_or("no such producer")?;
                let n: usize = n.parse()?;
                while producer.consumers() < n {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                println!("consumers {stream} {n}");
            }
            ["catalog"] => {
                let mut ids: Vec<String> = mesh
                    .catalog()
                    .iter()
                    .map(|e| e.info.id.to_string())
                    .collect();
                ids.sort();
                println!("catalog {}", ids.join(","));
            }
            ["leave"] => {
                let started = std::time::Instant::now();
                mesh.leave().await;
                println!("left {}", started.elapsed().as_millis());
            }
            ["memory"] => {
                let status = std::fs::read_to_string("/proc/self/status")?;
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .map(|v| v.trim().trim_end_matches(" kB").to_owned())
                    .unwrap_or_default();
                println!("memory {rss}");
            }
            ["consume-as-text", stream] => {
                let mut consumer = mesh.streams().consume::<String>(stream).start()?;
                let stream = stream.to_owned();
                consumers.push(tokio::spawn(async move {
                    while let Some(next) = consumer.next().await {
                        match next {
                            Ok(text) => println!("item {stream} {text}"),
                            Err(e) => println!("refused {stream} {e}"),
                        }
                    }
                }));
            }
            _ => return Err(format!("unknown command {line:?}").into()),
        }
        Ok(())
    }
}
