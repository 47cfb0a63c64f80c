//! `create`, `collections` and `drop`: making a collection on purpose,
//! seeing what the cluster holds, and removing a collection with its
//! files from every node.

use crate::commands::Kind;
use crate::connect::ConnectArgs;
use crate::output::outln;
use crate::report::Output;
use clap::Subcommand;
use serde_json::json;
use statemesh::collections::{CellState, MapState};
use statemesh::hooks::Hooked;
use statemesh::{Client, ClientError, CollectionInfo, Json, Refusal, StateMachine};
use statemesh_cli::kinds::{JsonEvents, describe};

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Creates the collection NAME, empty, on every node. Writing to a
    /// collection that does not exist creates it too; reading never does.
    Create {
        /// What kind of collection: map, cell or events.
        #[arg(value_enum)]
        kind: Kind,
        /// The collection.
        name: String,
        /// Succeed if a collection of that name and kind exists already.
        #[arg(long)]
        if_not_exists: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Lists the collections: kind, version, entries, and the disk each
    /// takes on the node that answers.
    Collections {
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Removes collection NAME from the cluster: every node deletes its
    /// files (a node that is down does so when it comes back), and its
    /// mirrors stop. Cannot be undone.
    Drop {
        /// The collection.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

pub(crate) async fn run(command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Create {
            kind,
            name,
            if_not_exists,
            connect,
        } => {
            let client = connect.client().await?;
            let signature = create(&client, kind, &name).await;
            match signature {
                Ok(signature) => outln!("created {name:?}: {}", describe(&signature)),
                Err(ClientError::Refused(Refusal::Exists {
                    signature: theirs, ..
                })) if if_not_exists && theirs == kind_signature(kind)? => {
                    outln!("{name:?} exists: {}", describe(&theirs));
                }
                Err(e) => return Err(e.into()),
            }
        }
        CatalogCommand::Collections { output, connect } => {
            let all = connect.client().await?.collections().await?;
            print(&all, output)?;
        }
        CatalogCommand::Drop { name, connect } => {
            connect.client().await?.drop_collection(&name).await?;
            outln!("dropped {name:?}");
        }
    }
    Ok(())
}

/// The signature of the state machine behind `kind`.
fn kind_signature(kind: Kind) -> anyhow::Result<String> {
    Ok(match kind {
        Kind::Map => MapState::<String, Json>::default().signature(),
        Kind::Cell => CellState::<Json>::default().signature(),
        Kind::Events => Hooked::new(JsonEvents)?.signature(),
    })
}

/// Creates `name` as a `kind`; its signature.
async fn create(client: &Client, kind: Kind, name: &str) -> Result<String, ClientError> {
    match kind {
        Kind::Map => {
            client.create::<MapState<String, Json>>(name).await?;
        }
        Kind::Cell => {
            client.create::<CellState<Json>>(name).await?;
        }
        Kind::Events => {
            let events = Hooked::new(JsonEvents)
                .map_err(|e| ClientError::Decode(format!("the JSON events hooks: {e}")))?;
            client.create_with(name, &events).await?;
        }
    }
    kind_signature(kind).map_err(|e| ClientError::Decode(e.to_string()))
}

fn print(all: &[CollectionInfo], output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => {
            let all: Vec<_> = all
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "kind": describe(&c.signature),
                        "signature": c.signature,
                        "version": c.version,
                        "entries": c.entries,
                        "disk_bytes": c.disk_bytes,
                        "leader": c.leader,
                    })
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&all)?);
        }
        Output::Table => {
            let dash = || "-".to_owned();
            let rows: Vec<[String; 6]> = all
                .iter()
                .map(|c| {
                    let kind = describe(&c.signature);
                    [
                        c.name.clone(),
                        kind.strip_prefix("a ").unwrap_or(&kind).to_owned(),
                        c.version.map_or_else(dash, |v| v.to_string()),
                        c.entries.map_or_else(dash, |v| v.to_string()),
                        format!(
                            "{:.1}",
                            byte_unit::Byte::from_u64(c.disk_bytes)
                                .get_appropriate_unit(byte_unit::UnitType::Binary)
                        ),
                        c.leader.map_or_else(dash, |l| l.to_string()),
                    ]
                })
                .collect();
            // Names and kinds are as wide as the widest one; numbers are
            // right-aligned.
            let width = |i: usize, title: &str| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([title.len()])
                    .max()
                    .unwrap_or(0)
            };
            let (name, kind) = (width(0, "NAME"), width(1, "KIND"));
            outln!(
                "{:<name$}  {:<kind$}  {:>9}  {:>9}  {:>10}  LEADER",
                "NAME",
                "KIND",
                "VERSION",
                "ENTRIES",
                "DISK"
            );
            for [n, k, version, entries, disk, leader] in &rows {
                outln!("{n:<name$}  {k:<kind$}  {version:>9}  {entries:>9}  {disk:>10}  {leader}");
            }
        }
    }
    Ok(())
}
