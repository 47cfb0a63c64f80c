//! The client commands' shape on the command line, kept apart from what
//! they do so `--help` text and the code that runs can be read alone.

use crate::connect::ConnectArgs;
use crate::report::Output;
use clap::{Subcommand, ValueEnum};

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
