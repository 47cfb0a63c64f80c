//! `statemesh certs init` and `statemesh token`.

use crate::output::outln;
use anyhow::Context;
use clap::{Args, Subcommand};
use statemesh::network::{Claims, DevCertificates, Secret};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Makes a development CA, a node certificate, a client certificate, a
    /// cluster secret and a JWT key in DIR. Refuses to replace existing
    /// ones unless given --force.
    Init {
        /// Where to write them.
        dir: PathBuf,
        /// More names or addresses the node certificate is valid for
        /// (localhost, 127.0.0.1 and ::1 always are).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Replace the certificates, keys and secrets already in DIR (nodes
        /// and clients using the old ones can no longer connect).
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { dir, hosts, force } => {
            let present: Vec<&str> = DevCertificates::FILES
                .into_iter()
                .filter(|n| dir.join(n).exists())
                .collect();
            if !present.is_empty() && !force {
                anyhow::bail!(
                    "{} already holds certificates or secrets ({}): nodes and clients using them \
                     would be locked out; pass --force to replace them",
                    dir.display(),
                    present.join(", ")
                );
            }
            for name in present {
                let path = dir.join(name);
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
            let certs = DevCertificates::generate(&hosts)?;
            certs
                .write(&dir)
                .with_context(|| format!("writing to {}", dir.display()))?;
            outln!(
                "wrote a development CA, node and client certificates, cluster.secret and jwt.key to {}",
                dir.display()
            );
            outln!(
                "start a node with: statemesh node --certs {} --data-dir DIR --listen 127.0.0.1:7400",
                dir.display()
            );
            Ok(())
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The JWT signing key file (`jwt.key` of `certs init`).
    #[arg(long, env = "STATEMESH_JWT_KEY_FILE")]
    jwt_key_file: PathBuf,
    /// Who the token is for.
    #[arg(long, default_value = "client")]
    subject: String,
    /// A collection (or `prefix*`, or `*`) it may read; repeatable.
    #[arg(long)]
    read: Vec<String>,
    /// A collection (or pattern) it may read and write; repeatable.
    #[arg(long)]
    write: Vec<String>,
    /// A mesh stream (or pattern) it may publish; repeatable.
    #[arg(long)]
    produce: Vec<String>,
    /// A mesh stream (or pattern) it may subscribe to; repeatable.
    #[arg(long)]
    consume: Vec<String>,
    /// How long it is valid, in seconds (at least 1).
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

pub(crate) fn token(args: &TokenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(args.read.is_empty()
            && args.write.is_empty()
            && args.produce.is_empty()
            && args.consume.is_empty()),
        "the token would allow nothing: give --read or --write (a collection, prefix* or *), \
         or --produce or --consume (a stream, prefix* or *)"
    );
    anyhow::ensure!(
        args.ttl > 0,
        "--ttl 0: a token must be valid for at least a second"
    );
    let key = read_secret(&args.jwt_key_file)?;
    let mut claims = Claims::new(args.subject.clone(), Duration::from_secs(args.ttl));
    claims.read.clone_from(&args.read);
    claims.write.clone_from(&args.write);
    claims.produce.clone_from(&args.produce);
    claims.consume.clone_from(&args.consume);
    outln!("{}", claims.sign(&key)?);
    Ok(())
}

/// A secret from a file, trimmed of surrounding whitespace.
pub(crate) fn read_secret(path: &std::path::Path) -> anyhow::Result<Secret> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let text = text.trim();
    anyhow::ensure!(!text.is_empty(), "{} is empty", path.display());
    Ok(Secret::new(text))
}
