//! The commands that talk to a running cluster.

use crate::connect::ConnectArgs;
use crate::output::outln;
use crate::readable::ReadableMap;
use crate::report::{self, Output};
use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use statemesh::collections::{CellState, MapChange, MapState};
use statemesh::hooks::{Hooked, JsonEvents};
use statemesh::{
    Client, Consistency, Json, Member, MemberRole, Mirror, MirrorOptions, Mirrored, RemoteMap,
    Resync, Update,
};
use tokio::sync::broadcast;

#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Asks every member for its own state: whether it answers, when it
    /// was last heard from, and for each group its role, the leader it
    /// follows, term, applied version and lag behind the leader.
    Status {
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Exits 0 only if every member answers and every group has a leader;
    /// otherwise prints what is wrong and exits 1 (like `etcdctl endpoint
    /// health`).
    Health {
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Prints the JSON value at KEY of map MAP.
    Get {
        /// The map.
        map: String,
        /// The key.
        key: String,
        /// Read the answering node's replica without asking the leader
        /// (faster, possibly stale).
        #[arg(long)]
        local: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Stores a JSON value at KEY of map MAP (created if missing); prints
    /// the previous value and the version.
    Put {
        /// The map.
        map: String,
        /// The key.
        key: String,
        /// The value, as JSON (`'"text"'`, `42`, `'{"a":1}'`), or `-` to
        /// read it from standard input.
        value: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Stores NEW at KEY if it holds EXPECTED (`-` for absent; NEW `-`
    /// removes); prints whether it did, and exits 2 if it did not.
    Cas {
        /// The map.
        map: String,
        /// The key.
        key: String,
        /// The JSON value the key must hold, or `-` for absent.
        expected: String,
        /// The JSON value to store, or `-` to remove the key.
        new: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Removes KEY from map MAP; prints the value it had.
    Del {
        /// The map.
        map: String,
        /// The key.
        key: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Prints every entry of map MAP as JSON lines, in key order.
    List {
        /// The map.
        map: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Reads or writes a cell holding a JSON value.
    #[command(subcommand)]
    Cell(CellCommand),
    /// Streams the changes to a collection as JSON lines until stopped
    /// (pushed by the nodes as they commit).
    Watch {
        /// The collection.
        name: String,
        /// What kind of collection it is.
        #[arg(long, value_enum, default_value = "map")]
        kind: Kind,
        /// Stop after this many changes.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Follows a collection from outside the cluster: prints its state,
    /// then each change as it commits, as JSON lines. With --dir it keeps
    /// its copy there and, started again, resumes from it.
    Mirror {
        /// The collection.
        name: String,
        /// What kind of collection it is.
        #[arg(long, value_enum, default_value = "map")]
        kind: Kind,
        /// Keep the copy in this directory and resume from it.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Stop after this many changes (not counting the state printed
        /// first).
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Sends a JSON event to the event collection NAME (created if
    /// missing); its hooks apply it on every replica. Prints the hook's
    /// answer and the version, or its refusal (exit 1). Events:
    /// {"op":"put","key":K,"value":V}, {"op":"remove","key":K},
    /// {"op":"add","key":K,"by":N}, {"op":"move","from":A,"to":B,"amount":N}.
    Event {
        /// The collection.
        name: String,
        /// The event, as JSON, or `-` to read it from standard input.
        event: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Adds, removes or promotes members.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Asks a node to write a snapshot of a collection now.
    Snapshot {
        /// The collection (`_cluster` for the cluster's own state).
        collection: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CellCommand {
    /// Prints the cell's JSON value.
    Get {
        /// The cell.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Sets the cell's JSON value; prints the previous one and the version.
    Set {
        /// The cell.
        name: String,
        /// The value, as JSON, or `-` to read it from standard input.
        value: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MembersCommand {
    /// Lists the members: id, address, intended role, whether it answers,
    /// when it was last heard from, its lag and its role in each group.
    List {
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Records node ID at ADDRESS as a member (it is then added to every
    /// group as a learner and promoted as the policy says).
    Add {
        /// The node's id (its data directory's `node-id`).
        id: u64,
        /// Where it listens.
        address: String,
        /// voter or reader.
        #[arg(long, value_enum, default_value = "voter")]
        role: crate::node::RoleArg,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Removes node ID from the cluster (a graceful leave).
    Remove {
        /// The node's id.
        id: u64,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Lets reader ID vote (it is promoted once caught up, while the
    /// cluster wants voters).
    Promote {
        /// The node's id.
        id: u64,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// What kind of collection `watch`, `mirror` and `local get` read.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// A map from strings to JSON values.
    Map,
    /// A cell of a JSON value.
    Cell,
    /// A map changed by JSON events (what `statemesh event` sends to).
    Events,
}

fn json(text: &str) -> anyhow::Result<Json> {
    text.parse()
        .with_context(|| format!("{text:?} is not JSON (quote strings: '\"text\"')"))
}

/// A JSON value from the command line, or from standard input if `-`.
fn json_or_stdin(text: &str) -> anyhow::Result<Json> {
    if text != "-" {
        return json(text);
    }
    let mut all = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut all)
        .context("reading the value from standard input")?;
    all.trim()
        .parse()
        .context("standard input does not hold one JSON value")
}

fn optional_json(text: &str) -> anyhow::Result<Option<Json>> {
    if text == "-" {
        Ok(None)
    } else {
        json(text).map(Some)
    }
}

fn show(v: Option<&Json>) -> String {
    v.map_or_else(|| "null".to_owned(), ToString::to_string)
}

/// The map `name`, created if missing: for commands that write.
async fn map(connect: &ConnectArgs, name: &str) -> anyhow::Result<RemoteMap<String, Json>> {
    let client = connect.client().await?;
    Ok(client.map::<String, Json>(name).await?)
}

pub(crate) async fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Status { output, connect } => {
            report::status(&connect.client().await?.report().await?, output)?;
        }
        ClientCommand::Health { output, connect } => {
            if !report::health(&connect.client().await?.report().await?, output)? {
                return Err(crate::Exit(1).into());
            }
        }
        ClientCommand::Get {
            map: name,
            key,
            local,
            connect,
        } => {
            let consistency = if local {
                Consistency::Local
            } else {
                Consistency::Linearizable
            };
            let client = connect.client().await?;
            let m = ReadableMap::open(&client, &name, consistency).await?;
            match m.get(&key).await? {
                Some(v) => outln!("{v}"),
                None => bail!("map {name:?} has no key {key:?}"),
            }
        }
        ClientCommand::Put {
            map: name,
            key,
            value,
            connect,
        } => {
            let value = json_or_stdin(&value)?;
            let (previous, version) = map(&connect, &name).await?.insert(key, value).await?;
            outln!(
                r#"{{"previous":{},"version":{version}}}"#,
                show(previous.as_ref())
            );
        }
        ClientCommand::Cas {
            map: name,
            key,
            expected,
            new,
            connect,
        } => {
            let (expected, new) = (optional_json(&expected)?, optional_json(&new)?);
            let (r, version) = map(&connect, &name)
                .await?
                .compare_exchange(key, expected, new)
                .await?;
            match r {
                Ok(prev) => outln!(
                    r#"{{"swapped":true,"previous":{},"version":{version}}}"#,
                    show(prev.as_ref())
                ),
                Err(current) => {
                    outln!(
                        r#"{{"swapped":false,"current":{},"version":{version}}}"#,
                        show(current.as_ref())
                    );
                    // Like a miss in grep: scripts tell it from a swap.
                    return Err(crate::Exit(2).into());
                }
            }
        }
        ClientCommand::Del {
            map: name,
            key,
            connect,
        } => {
            let (previous, version) = map(&connect, &name).await?.remove(key).await?;
            outln!(
                r#"{{"previous":{},"version":{version}}}"#,
                show(previous.as_ref())
            );
        }
        ClientCommand::List { map: name, connect } => {
            let client = connect.client().await?;
            let m = ReadableMap::open(&client, &name, Consistency::Linearizable).await?;
            for (k, v) in m.list().await? {
                outln!(r#"{{"key":{},"value":{v}}}"#, serde_json::Value::String(k));
            }
        }
        ClientCommand::Cell(CellCommand::Get { name, connect }) => {
            let cell: statemesh::RemoteCell<Json> =
                connect.client().await?.open_existing(&name).await?;
            outln!("{}", show(cell.read().await?.as_ref()));
        }
        ClientCommand::Cell(CellCommand::Set {
            name,
            value,
            connect,
        }) => {
            let value = json_or_stdin(&value)?;
            let cell = connect.client().await?.cell::<Json>(&name).await?;
            let (previous, version) = cell.write(value).await?;
            outln!(
                r#"{{"previous":{},"version":{version}}}"#,
                show(previous.as_ref())
            );
        }
        ClientCommand::Watch {
            name,
            kind,
            count,
            connect,
        } => {
            let follow = Follow {
                name: &name,
                dir: None,
                count,
                print_state: false,
            };
            follow.run_kind(kind, &connect).await?;
        }
        ClientCommand::Mirror {
            name,
            kind,
            dir,
            count,
            connect,
        } => {
            let follow = Follow {
                name: &name,
                dir,
                count,
                print_state: true,
            };
            follow.run_kind(kind, &connect).await?;
        }
        ClientCommand::Event {
            name,
            event,
            connect,
        } => {
            let event = json_or_stdin(&event)?;
            let hooked = Hooked::new(JsonEvents)?;
            let collection = connect.client().await?.open_with(&name, &hooked).await?;
            let (answer, version) = collection.send_event(event).await?;
            match answer {
                Ok(output) => outln!(r#"{{"output":{output},"version":{version}}}"#),
                Err(refusal) => {
                    bail!("the hooks refused the event at version {version}: {refusal}")
                }
            }
        }
        ClientCommand::Members(m) => members(m).await?,
        ClientCommand::Snapshot {
            collection,
            connect,
        } => {
            connect.client().await?.snapshot(&collection).await?;
            outln!("snapshot of {collection:?} written");
        }
    }
    Ok(())
}

async fn members(command: MembersCommand) -> anyhow::Result<()> {
    match command {
        MembersCommand::List { output, connect } => {
            report::members(&connect.client().await?.report().await?, output)?;
        }
        MembersCommand::Add {
            id,
            address,
            role,
            connect,
        } => {
            let role = match role {
                crate::node::RoleArg::Voter => MemberRole::Voter,
                crate::node::RoleArg::Reader => MemberRole::Reader,
            };
            connect
                .client()
                .await?
                .join(id, Member { address, role })
                .await?;
            outln!("node {id} added");
        }
        MembersCommand::Remove { id, connect } => {
            connect.client().await?.leave(id).await?;
            outln!("node {id} removed");
        }
        MembersCommand::Promote { id, connect } => {
            let client = connect.client().await?;
            let status = client.status().await?;
            let Some(member) = status.members.get(&id) else {
                bail!("node {id} is not a member");
            };
            let member = Member {
                address: member.address.clone(),
                role: MemberRole::Voter,
            };
            client.join(id, member).await?;
            outln!("node {id} may vote");
        }
    }
    Ok(())
}

/// How `watch` and `mirror` follow a collection.
struct Follow<'a> {
    name: &'a str,
    dir: Option<std::path::PathBuf>,
    count: Option<usize>,
    /// Print the state first (`mirror`) or only what changes (`watch`).
    print_state: bool,
}

impl Follow<'_> {
    /// Follows a collection of `kind` through a client made from `connect`.
    async fn run_kind(&self, kind: Kind, connect: &ConnectArgs) -> anyhow::Result<()> {
        let client = connect.client().await?;
        match kind {
            Kind::Map => self.run(&client, MapState::<String, Json>::default()).await,
            Kind::Cell => self.run(&client, CellState::<Json>::default()).await,
            Kind::Events => self.run(&client, Hooked::new(JsonEvents)?).await,
        }
    }

    /// Mirrors the collection and prints it as JSON lines: a map's entries
    /// (`"removed":true` for keys that went, `"cleared":true` when all
    /// did), a cell's value; a `"reset"` line before a whole state.
    async fn run<SM>(&self, client: &Client, initial: SM) -> anyhow::Result<()>
    where
        SM: Mirrored + Printed,
    {
        let mut options = MirrorOptions::default();
        if let Some(dir) = &self.dir {
            options = options.persist_in(dir);
        }
        let mirror = Mirror::open_with(client, self.name, initial, options)
            .await
            .with_context(|| format!("mirroring {:?}", self.name))?;
        let mut updates = mirror.updates();
        let (lines, mut version) = mirror.read_versioned(|sm| sm.lines());
        let received = if mirror.stats().full_states > 0 {
            "the whole state".to_owned()
        } else {
            format!(
                "the changes since version {}",
                mirror.resumed_from().unwrap_or(0)
            )
        };
        eprintln!(
            "mirroring {:?} at version {version}: received {received}",
            self.name
        );
        if self.print_state {
            for line in lines {
                outln!(r#"{{"version":{version},{line}}}"#);
            }
        }
        let mut printed = 0;
        while self.count.is_none_or(|c| printed < c) {
            let next = tokio::select! {
                next = updates.recv() => next,
                why = mirror.until_stopped() => bail!(why.to_string()),
            };
            let update = match next {
                Ok(u) => u,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind to print each change: print the state.
                    let (lines, v) = mirror.read_versioned(|sm| sm.lines());
                    outln!(r#"{{"version":{v},"reset":"lagged"}}"#);
                    for line in lines {
                        outln!(r#"{{"version":{v},{line}}}"#);
                    }
                    version = v;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let why = mirror
                        .stopped()
                        .map_or_else(|| "the mirror stopped".to_owned(), |e| e.to_string());
                    bail!(why);
                }
            };
            match &*update {
                Update::Changes { to, .. } if *to <= version => {}
                Update::Changes { to, changes, .. } => {
                    version = *to;
                    for change in changes {
                        outln!(r#"{{"version":{to},{}}}"#, SM::change_line(change));
                        printed += 1;
                    }
                }
                Update::Reset { version: v, reason } => {
                    version = *v;
                    let reason = match reason {
                        Resync::Behind => "behind",
                        Resync::TooSlow => "too slow",
                    };
                    outln!(r#"{{"version":{v},"reset":"{reason}"}}"#);
                    for line in mirror.read_with(SM::lines) {
                        outln!(r#"{{"version":{v},{line}}}"#);
                    }
                }
            }
        }
        mirror.close().await?;
        Ok(())
    }
}

/// How a collection the command line follows prints: the body of each JSON
/// line (without braces and version).
trait Printed: Mirrored {
    /// The whole state.
    fn lines(&self) -> Vec<String>;
    /// One change.
    fn change_line(change: &Self::Change) -> String;
}

fn key(k: &str) -> String {
    serde_json::Value::String(k.to_owned()).to_string()
}

impl Printed for MapState<String, Json> {
    fn lines(&self) -> Vec<String> {
        self.as_map()
            .iter()
            .map(|(k, v)| format!(r#""key":{},"value":{v}"#, key(k)))
            .collect()
    }

    fn change_line(change: &MapChange<String, Json>) -> String {
        match change {
            MapChange::Put(k, v) => format!(r#""key":{},"value":{v}"#, key(k)),
            MapChange::Remove(k) => format!(r#""key":{},"removed":true"#, key(k)),
            MapChange::Clear => r#""cleared":true"#.to_owned(),
        }
    }
}

impl Printed for CellState<Json> {
    fn lines(&self) -> Vec<String> {
        vec![format!(r#""value":{}"#, show(self.value()))]
    }

    fn change_line(change: &Option<Json>) -> String {
        format!(r#""value":{}"#, show(change.as_ref()))
    }
}

impl Printed for Hooked<JsonEvents> {
    fn lines(&self) -> Vec<String> {
        self.state().lines()
    }

    fn change_line(change: &MapChange<String, Json>) -> String {
        MapState::<String, Json>::change_line(change)
    }
}
