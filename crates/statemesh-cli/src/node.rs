//! `statemesh node`: a server process.

use crate::certs::read_secret;
use crate::connect::TlsArgs;
use crate::output::outln;
use anyhow::Context;
use clap::{Args, ValueEnum};
use statemesh::local::LocalOptions;
use statemesh::network::Authenticator;
use statemesh::{MemberRole, Server, ServerOptions, TcpOptions};
use std::path::PathBuf;
use std::time::Duration;

/// What a node may do in its cluster.
#[derive(Debug, Clone, Copy, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RoleArg {
    /// May vote (promoted once caught up while the cluster wants voters).
    Voter,
    /// Stays a learner: follows every change, never votes.
    Reader,
}

/// Settings of a node. Each comes from its flag, else its environment
/// variable, else the TOML file given by --config (same names, in
/// kebab-case), else its default.
///
/// The file is read in three passes rather than with serde's `flatten`,
/// which loses the position of every error: its keys are checked against
/// the flags, then the node's settings and the TLS settings are each read
/// from it.
#[derive(Debug, Clone, Default, Args, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct NodeArgs {
    /// A TOML file with any of these settings.
    #[arg(long, env = "STATEMESH_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Where the node keeps its id, logs and snapshots (required).
    #[arg(long, env = "STATEMESH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where it listens [default: 127.0.0.1:7400].
    #[arg(long, env = "STATEMESH_LISTEN")]
    listen: Option<String>,
    /// The address others reach it at [default: the one it listens on].
    #[arg(long, env = "STATEMESH_ADVERTISE")]
    advertise: Option<String>,
    /// Join the cluster through these members (comma-separated or
    /// repeated); without it, a new node starts a cluster of one.
    #[arg(long, env = "STATEMESH_JOIN", value_delimiter = ',')]
    #[serde(default)]
    join: Vec<String>,
    /// voter or reader [default: voter].
    #[arg(long, env = "STATEMESH_ROLE", value_enum)]
    role: Option<RoleArg>,
    #[command(flatten)]
    #[serde(skip)]
    tls: TlsArgs,
    /// Require clients and peers to present a certificate signed by the CA.
    #[arg(long, env = "STATEMESH_MUTUAL_TLS")]
    #[serde(default)]
    mutual_tls: bool,
    /// The cluster secret [default: the cluster.secret of --certs].
    #[arg(long, env = "STATEMESH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// A file holding the cluster secret.
    #[arg(long, env = "STATEMESH_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// A file holding the key of client JWTs [default: the jwt.key of
    /// --certs, if there].
    #[arg(long, env = "STATEMESH_JWT_KEY_FILE")]
    jwt_key_file: Option<PathBuf>,
    /// How many voters the cluster aims for, an odd number [default: 3].
    #[arg(long, env = "STATEMESH_VOTERS")]
    voters: Option<usize>,
    /// Seconds a voter may be unreachable before a caught-up learner
    /// replaces it [default: 10].
    #[arg(long, env = "STATEMESH_REPLACE_AFTER")]
    replace_after: Option<u64>,
    /// Versions of each collection's changes kept for mirrors (a mirror
    /// further behind receives the whole state) [default: 4096].
    #[arg(long, env = "STATEMESH_HISTORY_VERSIONS")]
    history_versions: Option<usize>,
    /// Bytes of each collection's changes kept for mirrors (`16MiB`,
    /// `10MB`, or a number of bytes) [default: 16MiB].
    #[arg(long, env = "STATEMESH_HISTORY_BYTES")]
    history_bytes: Option<crate::size::Size>,
    /// Publish these collections to shared memory for processes on this
    /// host (`statemesh local get`), each as the region of its name
    /// (comma-separated or repeated).
    #[arg(long, env = "STATEMESH_PUBLISH", value_delimiter = ',')]
    #[serde(default)]
    publish: Vec<String>,
    /// The directory of those regions [default: /dev/shm].
    #[arg(long, env = "STATEMESH_PUBLISH_DIR")]
    publish_dir: Option<PathBuf>,
    /// Tags this node shows in the mesh, for streams that choose peers by
    /// tag (`region=eu`; comma-separated or repeated).
    #[arg(long, env = "STATEMESH_TAG", value_delimiter = ',')]
    #[serde(default)]
    tag: Vec<String>,
    /// On SIGTERM or Ctrl-C, leave the cluster (the others stop counting
    /// this node) before stopping.
    #[arg(long, env = "STATEMESH_LEAVE_ON_SHUTDOWN")]
    #[serde(default)]
    leave_on_shutdown: bool,
    /// Exit (status 0) once the node learns it was removed from the
    /// cluster; `--exit-when-removed=false` keeps it running, refusing
    /// clients, until it is added back [default: true].
    #[arg(long, env = "STATEMESH_EXIT_WHEN_REMOVED", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    exit_when_removed: Option<bool>,
    /// Serve HTTP here: the status page at /, /status.json, /metrics (Prometheus), /health and /ready.
    #[arg(long, env = "STATEMESH_HTTP")]
    http: Option<String>,
    /// Write the address the node listens on to this file once it does
    /// (for scripts that start nodes on port 0).
    #[arg(long, env = "STATEMESH_ADDRESS_FILE")]
    address_file: Option<PathBuf>,
}

impl NodeArgs {
    /// Fills what the flags left unset from the TOML file.
    fn merged(self) -> anyhow::Result<Self> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let bad = || format!("{}: not a node configuration", path.display());
        let table: toml::Table = toml::from_str(&text).with_context(bad)?;
        check_keys(&table, &text).with_context(bad)?;
        let mut file: NodeArgs = toml::from_str(&text).with_context(bad)?;
        file.tls = toml::from_str(&text).with_context(bad)?;
        let t = self.tls;
        let f = file.tls;
        Ok(Self {
            config: self.config,
            data_dir: self.data_dir.or(file.data_dir),
            listen: self.listen.or(file.listen),
            advertise: self.advertise.or(file.advertise),
            join: if self.join.is_empty() {
                file.join
            } else {
                self.join
            },
            role: self.role.or(file.role),
            tls: TlsArgs {
                certs: t.certs.or(f.certs),
                ca: t.ca.or(f.ca),
                cert: t.cert.or(f.cert),
                key: t.key.or(f.key),
                plaintext: t.plaintext || f.plaintext,
                cluster: t.cluster.or(f.cluster),
            },
            mutual_tls: self.mutual_tls || file.mutual_tls,
            secret: self.secret.or(file.secret),
            secret_file: self.secret_file.or(file.secret_file),
            jwt_key_file: self.jwt_key_file.or(file.jwt_key_file),
            voters: self.voters.or(file.voters),
            replace_after: self.replace_after.or(file.replace_after),
            history_versions: self.history_versions.or(file.history_versions),
            history_bytes: self.history_bytes.or(file.history_bytes),
            publish: if self.publish.is_empty() {
                file.publish
            } else {
                self.publish
            },
            publish_dir: self.publish_dir.or(file.publish_dir),
            tag: if self.tag.is_empty() {
                file.tag
            } else {
                self.tag
            },
            address_file: self.address_file.or(file.address_file),
            http: self.http.or(file.http),
            leave_on_shutdown: self.leave_on_shutdown || file.leave_on_shutdown,
            exit_when_removed: self.exit_when_removed.or(file.exit_when_removed),
        })
    }

    fn options(&self) -> anyhow::Result<ServerOptions> {
        // Flags that contradict each other first: no file fixes them.
        anyhow::ensure!(
            !(self.tls.plaintext && self.mutual_tls),
            "--plaintext and --mutual-tls contradict each other: mutual TLS needs TLS"
        );
        if let Some(v) = self.voters {
            anyhow::ensure!(
                v % 2 == 1,
                "--voters {v}: give a positive odd number (an even count tolerates no more \
                 failures than the odd number below it)"
            );
        }
        let data_dir = self
            .data_dir
            .clone()
            .context("give --data-dir (or data-dir in the --config file)")?;
        let secret = match (&self.secret, &self.secret_file, &self.tls.certs) {
            (Some(s), _, _) => statemesh::network::Secret::new(s.as_str()),
            (None, Some(f), _) => read_secret(f)?,
            (None, None, Some(d)) => read_secret(&d.join("cluster.secret"))?,
            (None, None, None) => anyhow::bail!(
                "give --secret, --secret-file or --certs DIR (whose cluster.secret is used)"
            ),
        };
        let jwt_key = match (&self.jwt_key_file, &self.tls.certs) {
            (Some(f), _) => Some(read_secret(f)?),
            (None, Some(d)) if d.join("jwt.key").exists() => Some(read_secret(&d.join("jwt.key"))?),
            _ => None,
        };
        let network = TcpOptions::new(
            self.tls.cluster(),
            self.tls.node_security(self.mutual_tls)?,
            Authenticator::new(secret, jwt_key),
        );
        let listen = self
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:7400".into());
        let mut o = ServerOptions::new(data_dir, listen, network);
        o.advertise.clone_from(&self.advertise);
        o.join.clone_from(&self.join);
        o.role = match self.role {
            Some(RoleArg::Reader) => MemberRole::Reader,
            _ => MemberRole::Voter,
        };
        if let Some(v) = self.voters {
            o.target_voters = v;
        }
        if let Some(s) = self.replace_after {
            o.replace_after = Duration::from_secs(s);
        }
        if let Some(v) = self.history_versions {
            o.history.versions = v;
        }
        if let Some(b) = self.history_bytes {
            o.history.bytes = b.0;
        }
        o.publish.clone_from(&self.publish);
        o.tags.clone_from(&self.tag);
        if let Some(d) = &self.publish_dir {
            o.local = LocalOptions::new().dir(d);
        }
        Ok(o)
    }
}

/// Refuses a key of the configuration file that is not a setting, naming
/// its line and the nearest setting.
fn check_keys(table: &toml::Table, text: &str) -> anyhow::Result<()> {
    use clap::Args as _;
    let command = NodeArgs::augment_args(clap::Command::new("node"));
    let known: Vec<&str> = command
        .get_arguments()
        .filter_map(clap::Arg::get_long)
        .filter(|&k| k != "config")
        .collect();
    for key in table.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let line = text
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or_else(String::new, |n| format!("line {}: ", n + 1));
        let nearest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(k, key), *k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let hint = nearest.map_or_else(
            || " (see statemesh node --help for the settings)".to_owned(),
            |(_, k)| format!(": did you mean `{k}`?"),
        );
        anyhow::bail!("{line}`{key}` is not a setting{hint}");
    }
    Ok(())
}

pub(crate) async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let args = args.merged()?;
    let options = args.options()?;
    let http = match &args.http {
        Some(address) => Some((
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on {address} for --http"))?,
            crate::http::recorder()?,
        )),
        None => None,
    };
    let server =
        std::sync::Arc::new(Server::start(options, statemesh_cli::kinds::standard()).await?);
    let endpoint = match http {
        Some((listener, metrics)) => {
            outln!("operations endpoint on http://{}", listener.local_addr()?);
            let server = std::sync::Arc::clone(&server);
            Some(tokio::spawn(crate::http::serve(listener, metrics, server)))
        }
        None => None,
    };
    if let Some(f) = &args.address_file {
        // Written whole then renamed, so a reader never sees half of it.
        let tmp = f.with_extension("tmp");
        std::fs::write(&tmp, server.address())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, f).with_context(|| format!("writing {}", f.display()))?;
    }
    outln!("node {} listening on {}", server.id(), server.address());
    let exit_when_removed = args.exit_when_removed.unwrap_or(true);
    let removed = async {
        if exit_when_removed {
            server.removed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    // The server logs the removal itself.
    let signalled = tokio::select! {
        r = wait_for_signal() => { r?; true }
        () = removed => false,
    };
    if signalled {
        tracing::info!("shutting down");
    }
    if signalled && args.leave_on_shutdown {
        match server.leave(Duration::from_secs(30)).await {
            Ok(()) => tracing::info!("left the cluster"),
            Err(e) => tracing::warn!("leaving the cluster: {e}"),
        }
    }
    if let Some(e) = endpoint {
        e.abort();
        let _ = e.await;
    }
    match std::sync::Arc::try_unwrap(server) {
        Ok(server) => server.shutdown().await,
        // The endpoint still holds it: the process is ending anyway.
        Err(_) => tracing::debug!("exiting with the operations endpoint open"),
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
