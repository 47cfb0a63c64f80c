//! `statemesh`: run a node, make development certificates and tokens, read
//! and write a cluster's collections, and watch a demo cluster survive the
//! loss of its leader.
//!
//! Every command has `--help`. Errors are printed as one line and exit
//! with status 1.

mod bench;
mod certs;
mod commands;
mod connect;
mod demo;
mod http;
mod local;
mod node;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// statemesh: replicated state over Raft, with TLS.
#[derive(Debug, Parser)]
#[command(name = "statemesh", version, about, long_about = None)]
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
    Client(commands::ClientCommand),
    /// Reads collections a node on this host publishes to shared memory.
    #[command(subcommand)]
    Local(local::LocalCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Node(_));
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("STATEMESH_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(if quiet { "error" } else { "info" })
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
            Command::Client(c) => commands::run(c).await,
            Command::Local(l) => local::run(l),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the causes print (a TOML error shows the
            // offending line on lines of its own).
            let text = format!("{e:#}");
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("error: {}", line.join(" "));
            ExitCode::FAILURE
        }
    }
}
