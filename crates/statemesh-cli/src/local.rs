//! `statemesh local`: reads collections a node on this host publishes to
//! shared memory (`statemesh node --publish`), without a connection.

use crate::commands::Kind;
use crate::output::outln;
use anyhow::{Context, bail};
use clap::Subcommand;
use statemesh::Json;
use statemesh::collections::{CellState, MapState};
use statemesh::hooks::Hooked;
use statemesh::local::{Local, LocalOptions, LocalRead, Publish};
use statemesh_cli::kinds::JsonEvents;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
    /// Prints the JSON value at KEY of the map NAME that a node on this
    /// host publishes (or a published cell's value, with --kind cell and
    /// no KEY; an event collection's, with --kind events). Fails if the
    /// node has stopped, unless --allow-stale.
    Get {
        /// The collection.
        name: String,
        /// The key (for a map).
        key: Option<String>,
        /// What kind of collection it is.
        #[arg(long, value_enum, default_value = "map")]
        kind: Kind,
        /// The regions' directory [default: /dev/shm].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Wait (up to --timeout) until this version is published (and
        /// until the collection is published at all).
        #[arg(long)]
        wait_for: Option<u64>,
        /// Seconds --wait-for waits.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Print `{"version":V,"value":X}` instead of the value alone.
        #[arg(long)]
        versioned: bool,
        /// Read what a node that has stopped or died left in shared memory
        /// (refused otherwise: it may be stale).
        #[arg(long)]
        allow_stale: bool,
        /// The node whose publication to read, when several nodes on this
        /// host publish the collection.
        #[arg(long)]
        node: Option<u64>,
        /// Read this region, by its full name, instead of finding the
        /// collection's (for a program that publishes its own).
        #[arg(long, conflicts_with = "node")]
        region: Option<String>,
    },
}

pub(crate) fn run(command: LocalCommand) -> anyhow::Result<()> {
    let LocalCommand::Get {
        name,
        key,
        kind,
        dir,
        wait_for,
        timeout,
        versioned,
        allow_stale,
        node,
        region,
    } = command;
    let options = dir
        .map_or_else(LocalOptions::new, |d| LocalOptions::new().dir(d))
        .allow_stale(allow_stale);
    let region = match region {
        Some(r) => r,
        // --wait-for waits for the region to appear too (a node that has
        // just started publishes once it hosts the collection).
        None => {
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                match find(&name, node, &options) {
                    Err(_) if wait_for.is_some() && std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    found => break found?,
                }
            }
        }
    };
    let wait = wait_for.map(|v| (v, Duration::from_secs(timeout)));
    let (value, version) = match (kind, &key) {
        (Kind::Map, Some(key)) => read(
            &region,
            &options,
            wait,
            &MapState::<String, Json>::default(),
            |r| r.get(key),
        )?,
        (Kind::Events, Some(key)) => {
            read(&region, &options, wait, &Hooked::new(JsonEvents)?, |r| {
                r.hooked().get(key)
            })?
        }
        (Kind::Map | Kind::Events, None) => bail!("give the KEY to read from map {name:?}"),
        (Kind::Cell, None) => {
            let (value, version) = read(
                &region,
                &options,
                wait,
                &CellState::<Json>::default(),
                |r| r.get(),
            )?;
            (Some(value.unwrap_or_default()), version)
        }
        (Kind::Cell, Some(_)) => bail!("a cell has no keys: drop KEY"),
    };
    match value {
        Some(v) => print(versioned, version, &v)?,
        None => bail!(
            "map {name:?} has no key {:?} at version {version}",
            key.unwrap_or_default()
        ),
    }
    Ok(())
}

/// The region in which a node on this host publishes `collection`: the
/// only one, node `node`'s, or the only one whose node runs.
fn find(collection: &str, node: Option<u64>, options: &LocalOptions) -> anyhow::Result<String> {
    let mut found = statemesh::local::find(collection, options)?;
    found.retain(|r| node.is_none_or(|n| r.node == n));
    if found.len() > 1 {
        let running: Vec<_> = found
            .iter()
            .filter(|r| {
                Local::<CellState<Json>>::open_with(&r.name, options, &CellState::default())
                    .is_ok_and(|l| l.publisher_attached())
            })
            .cloned()
            .collect();
        if running.len() == 1 {
            found = running;
        }
    }
    match &found[..] {
        [] => match node {
            Some(n) => bail!("node {n} does not publish {collection:?} on this host"),
            None => bail!(
                "no node on this host publishes {collection:?} (start one with --publish {collection})"
            ),
        },
        [one] => Ok(one.name.clone()),
        many => {
            let nodes: Vec<String> = many.iter().map(|r| r.node.to_string()).collect();
            bail!(
                "{} nodes on this host publish {collection:?} ({}): choose one with --node",
                many.len(),
                nodes.join(", ")
            )
        }
    }
}

fn print(versioned: bool, version: u64, value: &Json) -> anyhow::Result<()> {
    if versioned {
        outln!(r#"{{"version":{version},"value":{value}}}"#);
    } else {
        outln!("{value}");
    }
    Ok(())
}

/// Opens region `name` as a collection like `initial`, waits if asked, and
/// reads it with `get`.
fn read<SM: Publish, T>(
    name: &str,
    options: &LocalOptions,
    wait: Option<(u64, Duration)>,
    initial: &SM,
    get: impl FnOnce(LocalRead<'_, SM>) -> Result<T, statemesh::local::LocalError>,
) -> anyhow::Result<(T, u64)> {
    let mut local = Local::<SM>::open_with(name, options, initial)?;
    if let Some((version, timeout)) = wait {
        let reached = local.wait_for(version, timeout)?;
        if reached < version {
            bail!("region {name:?} reached version {reached}, not {version}, in {timeout:?}");
        }
    }
    let read = local.read()?;
    let version = read.version();
    let value = get(read).with_context(|| format!("reading region {name:?}"))?;
    Ok((value, version))
}
