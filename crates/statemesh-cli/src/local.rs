//! `statemesh local`: reads collections a node on this host publishes to
//! shared memory (`statemesh node --publish`), without a connection.

use crate::commands::Kind;
use anyhow::{Context, bail};
use clap::Subcommand;
use statemesh::Json;
use statemesh::collections::{CellState, MapState};
use statemesh::hooks::{Hooked, JsonEvents};
use statemesh::local::{Local, LocalOptions, LocalRead, Publish};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
    /// Prints the JSON value at KEY of the map published as NAME (or a
    /// published cell's value, with --kind cell and no KEY; an event
    /// collection's, with --kind events).
    Get {
        /// The region (the collection's name).
        name: String,
        /// The key (for a map).
        key: Option<String>,
        /// What kind of collection it is.
        #[arg(long, value_enum, default_value = "map")]
        kind: Kind,
        /// The regions' directory [default: /dev/shm].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Wait (up to --timeout) until this version is published.
        #[arg(long)]
        wait_for: Option<u64>,
        /// Seconds --wait-for waits.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Print `{"version":V,"value":X}` instead of the value alone.
        #[arg(long)]
        versioned: bool,
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
    } = command;
    let options = dir.map_or_else(LocalOptions::new, |d| LocalOptions::new().dir(d));
    let wait = wait_for.map(|v| (v, Duration::from_secs(timeout)));
    let (value, version) = match (kind, &key) {
        (Kind::Map, Some(key)) => read(
            &name,
            &options,
            wait,
            &MapState::<String, Json>::default(),
            |r| r.get(key),
        )?,
        (Kind::Events, Some(key)) => read(&name, &options, wait, &Hooked::new(JsonEvents)?, |r| {
            r.hooked().get(key)
        })?,
        (Kind::Map | Kind::Events, None) => bail!("give the KEY to read from map {name:?}"),
        (Kind::Cell, None) => {
            let (value, version) =
                read(&name, &options, wait, &CellState::<Json>::default(), |r| {
                    r.get()
                })?;
            (Some(value.unwrap_or_default()), version)
        }
        (Kind::Cell, Some(_)) => bail!("a cell has no keys: drop KEY"),
    };
    match value {
        Some(v) => print(versioned, version, &v),
        None => bail!(
            "map {name:?} has no key {:?} at version {version}",
            key.unwrap_or_default()
        ),
    }
    Ok(())
}

fn print(versioned: bool, version: u64, value: &Json) {
    if versioned {
        println!(r#"{{"version":{version},"value":{value}}}"#);
    } else {
        println!("{value}");
    }
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
