//! `statemesh`: run a node, make development certificates and tokens, read
//! and write a cluster's collections, and watch a demo cluster survive the
//! loss of its leader.
//!
//! Every command has `--help`. Errors are printed as one line; the exit
//! status says what kind of failure it was (see [`EXIT_CODES`]).

mod bench;
mod catalog;
mod certs;
mod commands;
mod connect;
mod demo;
mod http;
mod local;
mod logging;
mod node;
mod output;
mod readable;
mod report;
mod size;
mod streams;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What the exit statuses mean, as `--help` prints it.
const EXIT_CODES: &str = "Exit status: 0 done; 1 refused or failed (the message says why), or \
`health` found a problem; 2 bad arguments, or `cas` found another value; 3 no member of the cluster could be reached; 4 no quorum: too few voters \
reachable, nothing was written; 5 timed out, nothing was written; 6 timed out after a leader \
took the write: it may have been applied (once).";

/// statemesh: replicated state over Raft, with TLS.
#[derive(Debug, Parser)]
#[command(name = "statemesh", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a node: bootstraps a cluster of one, joins one (--join), or
    /// resumes from its data directory.
    Node(Box<node::NodeArgs>),
    /// Development certificates.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Signs a JWT that lets a client read or write some collections.
    Token(certs::TokenArgs),
    /// Measures puts and reads the way etcd's published benchmark does.
    Bench(Box<bench::BenchArgs>),
    /// Starts a 3-node cluster on loopback, kills its leader and shows that
    /// nothing acknowledged is lost.
    Demo(demo::DemoArgs),
    #[command(flatten)]
    Client(Box<commands::ClientCommand>),
    #[command(flatten)]
    Catalog(catalog::CatalogCommand),
    #[command(flatten)]
    Streams(streams::StreamsCommand),
    /// Reads collections a node on this host publishes to shared memory.
    #[command(subcommand)]
    Local(local::LocalCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A node says what it does; a command that joins the mesh says what
    // goes wrong there (a seed it cannot reach); others only errors.
    let level = match &cli.command {
        Command::Node(_) => "info",
        Command::Streams(s) if !matches!(s, streams::StreamsCommand::Peers { .. }) => "warn",
        _ => "error",
    };
    if let Err(e) = logging::init(level) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => node::run(*args).await,
            Command::Certs(c) => certs::run(c),
            Command::Token(t) => certs::token(&t),
            Command::Demo(d) => demo::run(d).await,
            Command::Bench(b) => bench::run(*b).await,
            Command::Client(c) => commands::run(*c).await,
            Command::Catalog(c) => catalog::run(c).await,
            Command::Streams(s) => streams::run(s).await,
            Command::Local(l) => local::run(l),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Exit>() => ExitCode::from(e.downcast_ref::<Exit>().map_or(1, |x| x.0)),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Ends a command with this status and nothing on stderr: what it had to
/// say went to stdout (a `cas` that did not swap, an unhealthy cluster).
#[derive(Debug)]
struct Exit(u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// An error and its causes on one line, each said once: many errors embed
/// their cause in their own message and also report it as their source,
/// which printed naively reads `X: X`. (A TOML error shows the offending
/// line on lines of its own.)
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = said.join(" ");
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// The exit status for an error (see [`EXIT_CODES`]).
fn exit_code(e: &anyhow::Error) -> u8 {
    use statemesh::ClientError;
    let client = e.chain().find_map(|c| c.downcast_ref::<ClientError>());
    match client {
        // A member that answered and refused the connection (credentials,
        // cluster, version) is a plain failure (1): trying again will not
        // mend it.
        Some(ClientError::Unreachable { .. }) => 3,
        Some(ClientError::NoQuorum { .. }) => 4,
        Some(ClientError::Timeout {
            maybe_applied: false,
            ..
        }) => 5,
        Some(ClientError::Timeout { .. } | ClientError::Indeterminate(_)) => 6,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// Every command's arguments are well formed (clap checks this only
    /// when a command is first used, by panicking).
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn each_cause_is_said_once_on_one_line() {
        let cause = || std::io::Error::other("no space left");
        let e = anyhow::Error::from(cause()).context("writing d1/LOCK");
        assert_eq!(one_line(&e), "writing d1/LOCK: no space left");
        let e = anyhow::Error::from(cause()).context(format!("writing d1/LOCK: {}", cause()));
        assert_eq!(one_line(&e), "writing d1/LOCK: no space left");
        let e = anyhow::anyhow!("bad key\n  |\n1 | x = \n  |");
        assert_eq!(one_line(&e), "bad key | 1 | x = |");
    }
}
