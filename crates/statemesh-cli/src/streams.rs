//! The mesh on the command line: the catalog of peers as a node knows it,
//! and streams of JSON values published from standard input and printed
//! to standard output.

use crate::connect::ConnectArgs;
use crate::output::outln;
use crate::report::Output;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use statemesh::Json;
use statemesh::mesh::catalog::{Entry, Liveness};
use statemesh::mesh::peer::{PeerId, Role};
use statemesh::mesh::{ConsumeError, Mesh, catalog_through};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// How long `publish` waits at the end of its input for consumers to take
/// what it sent.
const FLUSH: Duration = Duration::from_secs(10);

/// How long `publish` waits for consumers before saying it waits.
const QUIET_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Subcommand)]
pub(crate) enum StreamsCommand {
    /// Lists the mesh's peers as the node answering knows them (itself
    /// first): id, address, node or process, tags, the streams each
    /// produces, and whether it answers probes.
    Peers {
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Publishes each line of standard input, a JSON value, to stream
    /// STREAM; waits for a consumer before the first, and at the end of
    /// the input until every consumer has taken every item (up to 10 s).
    /// Lines that are not JSON are reported and skipped (exit status 1).
    Publish {
        /// The stream.
        stream: String,
        /// The field of each (object) value whose value is the item's key,
        /// which consumers' --filter patterns match.
        #[arg(long)]
        key_field: Option<String>,
        /// Wait for this many consumers before publishing.
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        /// Items kept for consumers that reconnect.
        #[arg(long, default_value_t = 1024)]
        buffer: usize,
        /// How long to wait for consumers, before the first item or when
        /// none is left; past it, the command fails (exit status 1) saying
        /// how many lines were published (e.g. 30s, 10m).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
        wait: Duration,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// Prints the items of stream STREAM, from every producer of it, as
    /// JSON lines until stopped (Ctrl-C) or --count items have come. Lost
    /// items (a producer that dropped them before they reached this
    /// process) are reported on standard error, with how many.
    Subscribe {
        /// The stream.
        stream: String,
        /// Only producers with all of these tags (comma-separated or
        /// repeated: --tags region=eu,role=pricing).
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Only items whose key matches one of these patterns (`eu/*`);
        /// the producer applies it, so other items never cross the
        /// network.
        #[arg(long)]
        filter: Vec<String>,
        /// Stop after this many items.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        peer: PeerArgs,
    },
}

/// How a command joins the mesh as a peer of its own.
#[derive(Debug, Args)]
pub(crate) struct PeerArgs {
    /// This process's name in the mesh: with the same name and token, a
    /// restarted process is the same peer and resumes where it stopped
    /// [default: a random name].
    #[arg(long)]
    name: Option<String>,
    /// Where this process accepts mesh connections: every node and peer
    /// must be able to reach it.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The address others dial, if not the one bound (a wildcard
    /// --listen, or behind a translation).
    #[arg(long)]
    advertise: Option<String>,
    /// A tag others may choose this peer by (repeatable: --tag
    /// role=pricing).
    #[arg(long = "tag", value_name = "TAG")]
    tag: Vec<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

impl PeerArgs {
    /// Joins the mesh through the cluster: a node issues the pass.
    async fn join(&self) -> anyhow::Result<Mesh> {
        // Under TLS the peer presents its client certificate if it has
        // one, or one it makes now: its pass names it (no CA needed).
        let client = self.connect.client().await?;
        let name = match &self.name {
            Some(n) => n.clone(),
            None => format!("cli-{}", PeerId::random()?),
        };
        let mut builder = Mesh::through(&client, &name)
            .await?
            .listen(self.listen.clone());
        if let Some(a) = &self.advertise {
            builder = builder.advertise(a.clone());
        }
        for tag in &self.tag {
            builder = builder.tag(tag.clone());
        }
        Ok(builder.start().await?)
    }
}

pub(crate) async fn run(command: StreamsCommand) -> anyhow::Result<()> {
    match command {
        StreamsCommand::Peers { output, connect } => {
            let peers = catalog_through(&connect.client().await?).await?;
            peers_out(&peers, output)
        }
        StreamsCommand::Publish {
            stream,
            key_field,
            consumers,
            buffer,
            wait,
            peer,
        } => publish(&stream, key_field, (consumers, wait), buffer, &peer).await,
        StreamsCommand::Subscribe {
            stream,
            tags,
            filter,
            count,
            peer,
        } => subscribe(&stream, tags, filter, count, &peer).await,
    }
}

fn peers_out(peers: &[Entry], output: Output) -> anyhow::Result<()> {
    let role = |e: &Entry| match e.info.role {
        Role::Node(id) => format!("node {id}"),
        Role::Process => "process".to_owned(),
    };
    let liveness = |e: &Entry| match e.liveness {
        Liveness::Alive => "alive",
        Liveness::Suspect => "suspect",
    };
    let streams =
        |e: &Entry| -> Vec<String> { e.info.streams.iter().map(|s| s.name.clone()).collect() };
    match output {
        Output::Json => {
            let rows: Vec<_> = peers
                .iter()
                .map(|e| {
                    json!({
                        "id": e.info.id.to_string(),
                        "address": e.info.address,
                        "role": match e.info.role {
                            Role::Node(_) => "node",
                            Role::Process => "process",
                        },
                        "node": match e.info.role {
                            Role::Node(id) => Some(id),
                            Role::Process => None,
                        },
                        "tags": e.info.tags.iter().collect::<Vec<_>>(),
                        "streams": streams(e),
                        "liveness": liveness(e),
                    })
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&rows)?);
        }
        Output::Table => {
            outln!(
                "{:<32} {:<21} {:<22} {:<8} {:<24} STREAMS",
                "ID",
                "ADDRESS",
                "ROLE",
                "LIVENESS",
                "TAGS"
            );
            for e in peers {
                let tags = e.info.tags.to_string();
                let streams = streams(e).join(",");
                outln!(
                    "{:<32} {:<21} {:<22} {:<8} {:<24} {}",
                    e.info.id.to_string(),
                    e.info.address,
                    role(e),
                    liveness(e),
                    if tags.is_empty() { "-" } else { &tags },
                    if streams.is_empty() { "-" } else { &streams },
                );
            }
        }
    }
    Ok(())
}

/// The key of `value` for consumers' filters: the field's string, or its
/// JSON text if it is not a string.
fn key_of(value: &Json, field: &str) -> String {
    match value.0.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

async fn publish(
    stream: &str,
    key_field: Option<String>,
    (consumers, wait): (usize, Duration),
    buffer: usize,
    peer: &PeerArgs,
) -> anyhow::Result<()> {
    let mesh = peer.join().await?;
    let mut builder = mesh
        .streams()
        .produce::<Json>(stream)
        .online_when(|c| c.minimum_of(consumers))
        .buffer(buffer, 64 << 20);
    if let Some(field) = key_field {
        builder = builder.key(move |v| key_of(v, &field));
    }
    let producer = builder.start()?;
    let when = producer.when();
    let stream_name = stream.to_owned();
    // Says once each time publishing stops for want of consumers, unless
    // they come within a moment (subscribers already running take a few
    // milliseconds to find a new producer: no reason to say "waiting").
    let waiting = tokio::spawn(async move {
        loop {
            if tokio::time::timeout(QUIET_WAIT, when.online())
                .await
                .is_err()
            {
                eprintln!("waiting for {consumers} consumer(s) of {stream_name}");
                when.online().await;
            }
            when.offline().await;
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let (mut number, mut bad, mut published) = (0u64, 0u64, 0u64);
    while let Some(line) = lines.next_line().await.context("reading standard input")? {
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        match line.parse::<Json>() {
            Ok(value) => {
                if tokio::time::timeout(wait, producer.when().online())
                    .await
                    .is_err()
                {
                    waiting.abort();
                    bail!(
                        "fewer than {consumers} consumer(s) of {stream} for {}: {published} \
                         line(s) published, line {number} and after not",
                        humantime::format_duration(wait),
                    );
                }
                producer.send(&value).await?;
                published += 1;
            }
            Err(e) => {
                bad += 1;
                eprintln!("line {number}: not JSON ({e}): not published");
            }
        }
    }
    // Consumers that leave once they have everything are no reason to
    // say "waiting".
    waiting.abort();
    let flushed = producer.flushed(FLUSH).await;
    drop(producer);
    mesh.leave().await;
    if !flushed {
        bail!("a consumer had not taken every item {FLUSH:?} after the end of the input");
    }
    if bad > 0 {
        bail!("{bad} line(s) were not JSON and were not published");
    }
    Ok(())
}

async fn subscribe(
    stream: &str,
    tags: Vec<String>,
    filter: Vec<String>,
    count: Option<usize>,
    peer: &PeerArgs,
) -> anyhow::Result<()> {
    let mesh = peer.join().await?;
    let mut consumer = mesh
        .streams()
        .consume::<Json>(stream)
        .require(move |producer| producer.tags.contains_all(&tags))
        .filter(filter)
        .start()?;
    let mut taken = 0usize;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while count.is_none_or(|c| taken < c) {
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = &mut interrupted => break,
        };
        match next {
            Some(Ok(value)) => {
                taken += 1;
                outln!("{value}");
            }
            // This process's pass expired: nothing more will come.
            Some(Err(e @ ConsumeError::Expired { .. })) => bail!("{e}"),
            // Losses, refusals by one producer, an item that does not
            // decode: said, and the stream goes on.
            Some(Err(e)) => eprintln!("{e}"),
            None => break,
        }
    }
    drop(consumer);
    mesh.leave().await;
    Ok(())
}
