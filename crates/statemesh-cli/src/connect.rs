//! How a command reaches a cluster: addresses, TLS files and the token.

use anyhow::{Context, bail};
use clap::Args;
use statemesh::network::TlsFiles;
use statemesh::{Client, ClientOptions, Security, Tls};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The cluster name when none is given.
pub(crate) const DEFAULT_CLUSTER: &str = "statemesh";

/// TLS settings shared by nodes and clients.
#[derive(Debug, Clone, Default, Args, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct TlsArgs {
    /// A directory made by `statemesh certs init` (CA, certificates,
    /// cluster secret, JWT key).
    #[arg(long, env = "STATEMESH_CERTS")]
    pub(crate) certs: Option<PathBuf>,
    /// The CA certificate (PEM), instead of --certs.
    #[arg(long, env = "STATEMESH_CA")]
    pub(crate) ca: Option<PathBuf>,
    /// This side's certificate (PEM), instead of --certs.
    #[arg(long, env = "STATEMESH_CERT")]
    pub(crate) cert: Option<PathBuf>,
    /// This side's private key (PEM), instead of --certs.
    #[arg(
        long = "key",
        id = "tls-key",
        value_name = "KEY_FILE",
        env = "STATEMESH_KEY"
    )]
    pub(crate) key: Option<PathBuf>,
    /// No TLS at all: for benchmarks and closed networks only (tokens then
    /// travel in the clear).
    #[arg(long, env = "STATEMESH_PLAINTEXT")]
    #[serde(default)]
    pub(crate) plaintext: bool,
    /// The cluster's name [default: statemesh].
    #[arg(long, env = "STATEMESH_CLUSTER")]
    pub(crate) cluster: Option<String>,
}

impl TlsArgs {
    pub(crate) fn cluster(&self) -> String {
        self.cluster
            .clone()
            .unwrap_or_else(|| DEFAULT_CLUSTER.to_owned())
    }

    /// The files given, with those of `--certs` filling the gaps.
    fn files(&self, node: bool) -> Option<TlsFiles> {
        let base = self.certs.as_ref().map(|d| {
            if node {
                TlsFiles::node_in(d)
            } else {
                TlsFiles::client_in(d)
            }
        });
        let ca = self
            .ca
            .clone()
            .or_else(|| base.as_ref().map(|b| b.ca.clone()))?;
        let cert = self
            .cert
            .clone()
            .or_else(|| base.as_ref().map(|b| b.cert.clone()));
        let key = self
            .key
            .clone()
            .or_else(|| base.as_ref().map(|b| b.key.clone()));
        Some(TlsFiles {
            ca,
            cert: cert.unwrap_or_default(),
            key: key.unwrap_or_default(),
        })
    }

    /// A node's security: TLS from the files given, or plaintext if asked.
    pub(crate) fn node_security(&self, mutual: bool) -> anyhow::Result<Security> {
        if self.plaintext {
            return Ok(Security::Plaintext);
        }
        let Some(files) = self.files(true) else {
            bail!(
                "TLS is on by default: give --certs DIR (make one with `statemesh certs init DIR`) \
                 or --ca, --cert and --key; or --plaintext"
            );
        };
        if files.cert.as_os_str().is_empty() || files.key.as_os_str().is_empty() {
            bail!(
                "no certificate and key: give --cert and --key, or --certs DIR holding node.pem and node.key"
            );
        }
        let tls = Tls::node_from_files(&files, mutual).context("loading TLS files")?;
        Ok(Security::Tls(Arc::new(tls)))
    }

    /// A client's security: the CA to trust (and a client certificate if
    /// one is there), or plaintext.
    pub(crate) fn client_security(&self) -> anyhow::Result<Security> {
        if self.plaintext {
            return Ok(Security::Plaintext);
        }
        let Some(files) = self.files(false) else {
            bail!("give --certs DIR or --ca FILE to check the nodes' certificates, or --plaintext");
        };
        let tls = Tls::client_from_files(&files).context("loading TLS files")?;
        Ok(Security::Tls(Arc::new(tls)))
    }
}

/// Where a client command connects, and as whom.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// Members of the cluster (comma-separated or repeated).
    #[arg(
        long = "addr",
        env = "STATEMESH_ADDR",
        value_delimiter = ',',
        default_value = "127.0.0.1:7400"
    )]
    pub(crate) addrs: Vec<String>,
    /// The token: the cluster secret or a JWT [default: the cluster.secret
    /// of --certs].
    #[arg(long, env = "STATEMESH_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the token.
    #[arg(long, env = "STATEMESH_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// How long the command may take in all, across members and leader
    /// elections (e.g. 5s, 800ms); past it, it fails and says whether a
    /// write may have been applied.
    #[arg(long, env = "STATEMESH_TIMEOUT", value_parser = humantime::parse_duration, default_value = "5s")]
    pub(crate) timeout: Duration,
    /// How long one member may take to accept the connection (TCP, TLS,
    /// handshake). Members are tried a quarter second apart, without
    /// waiting for one that hangs.
    #[arg(long, env = "STATEMESH_DIAL_TIMEOUT", value_parser = humantime::parse_duration, default_value = "2s")]
    pub(crate) dial_timeout: Duration,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

impl ConnectArgs {
    fn token(&self) -> anyhow::Result<String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let file = self
            .token_file
            .clone()
            .or_else(|| self.tls.certs.as_ref().map(|d| d.join("cluster.secret")));
        let Some(file) = file else {
            bail!("give --token, --token-file or --certs DIR (whose cluster.secret is used)");
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading the token from {}", file.display()))?;
        Ok(text.trim().to_owned())
    }

    pub(crate) async fn client(&self) -> anyhow::Result<Client> {
        self.client_with(self.tls.client_security()?).await
    }

    /// A client that connects with `security` (a mesh peer's, which also
    /// serves).
    pub(crate) async fn client_with(&self, security: Security) -> anyhow::Result<Client> {
        let mut options = ClientOptions::new(self.tls.cluster(), security);
        options.timeout = self.timeout;
        options.attempt_timeout = options.attempt_timeout.min(self.timeout);
        options.limits.connect_timeout = self.dial_timeout;
        Client::connect(&self.addrs, self.token()?, options)
            .await
            .context("connecting")
    }
}
