//! TLS settings, and development certificates.
//!
//! Every node has a certificate signed by the cluster's certificate
//! authority (CA), valid for the names and addresses others reach it by; it
//! serves with it and, when connecting to a peer, presents it as a client
//! certificate, so a cluster may require mutual TLS. A client checks the
//! node's certificate against the CA, and presents its own certificate
//! when the nodes require one.
//!
//! [`DevCertificates`] makes a CA and certificates for a development
//! cluster (`statemesh certs init`). Nothing ships a private key: each
//! cluster's keys are made on its own machine.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How connections are protected.
#[derive(Clone, Debug)]
pub enum Security {
    /// TLS with these settings (the default for a node).
    Tls(Arc<Tls>),
    /// No encryption and no server authentication: for benchmarks against
    /// systems run the same way, and for tests. Tokens still apply, but
    /// travel in the clear.
    Plaintext,
}

/// Paths of a node's PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) that sign the cluster's certificates.
    pub ca: PathBuf,
    /// This side's certificate chain.
    pub cert: PathBuf,
    /// This side's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The node files [`DevCertificates::write`] puts in `dir`.
    #[must_use]
    pub fn node_in(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
        }
    }

    /// The client files [`DevCertificates::write`] puts in `dir`.
    #[must_use]
    pub fn client_in(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("client.pem"),
            key: dir.join("client.key"),
        }
    }
}

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{what}: {reason}")]
    Pem {
        /// Which file (or part) it was.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificates or key.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate could not be generated.
    #[error("generating certificates: {0}")]
    Generate(String),
}

/// TLS settings: what a node serves with and what it (or a client)
/// connects with.
pub struct Tls {
    server: Option<Arc<ServerConfig>>,
    client: Arc<ClientConfig>,
    server_name: Option<String>,
    /// Where the trusted CA came from (its file), for error messages.
    ca_source: Option<Arc<str>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("serves", &self.server.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

fn key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem, "CA certificate")? {
        roots.add(c)?;
    }
    Ok(roots)
}

impl Tls {
    /// A node's settings from PEM bytes: it serves with `cert`/`key`,
    /// presents them to peers, and trusts certificates signed by `ca`.
    /// With `mutual`, it refuses clients (and peers) without such a
    /// certificate.
    ///
    /// # Errors
    ///
    /// [`TlsError`] if a PEM holds no certificate or key, or rustls
    /// refuses them.
    pub fn node(ca: &[u8], cert: &[u8], key_pem: &[u8], mutual: bool) -> Result<Self, TlsError> {
        let roots = Arc::new(roots(ca)?);
        let chain = certs(cert, "node certificate")?;
        let key = key(key_pem, "node key")?;
        let verifier = if mutual {
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
                .build()
                .map_err(|e| TlsError::Generate(e.to_string()))?
        } else {
            WebPkiClientVerifier::no_client_auth()
        };
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(Self {
            server: Some(Arc::new(server)),
            client: Arc::new(client),
            server_name: None,
            ca_source: None,
        })
    }

    /// [`Tls::node`] from files.
    ///
    /// # Errors
    ///
    /// As [`Tls::node`], and [`TlsError::Io`] if a file cannot be read.
    pub fn node_from_files(files: &TlsFiles, mutual: bool) -> Result<Self, TlsError> {
        Ok(Self::node(
            &read(&files.ca)?,
            &read(&files.cert)?,
            &read(&files.key)?,
            mutual,
        )?
        .with_ca_source(&files.ca))
    }

    /// A client's settings: trust certificates signed by `ca`, and present
    /// `identity` (certificate and key PEM) if the nodes require one.
    ///
    /// # Errors
    ///
    /// As [`Tls::node`].
    pub fn client(ca: &[u8], identity: Option<(&[u8], &[u8])>) -> Result<Self, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots(ca)?);
        let client = match identity {
            Some((cert, key_pem)) => builder.with_client_auth_cert(
                certs(cert, "client certificate")?,
                key(key_pem, "client key")?,
            )?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            server: None,
            client: Arc::new(client),
            server_name: None,
            ca_source: None,
        })
    }

    /// [`Tls::client`] from files; the certificate and key are used if
    /// both exist.
    ///
    /// # Errors
    ///
    /// As [`Tls::client`], and [`TlsError::Io`] if a file cannot be read.
    pub fn client_from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        let ca = read(&files.ca)?;
        let tls = if files.cert.exists() && files.key.exists() {
            let (cert, key) = (read(&files.cert)?, read(&files.key)?);
            Self::client(&ca, Some((&cert, &key)))?
        } else {
            Self::client(&ca, None)?
        };
        Ok(tls.with_ca_source(&files.ca))
    }

    fn with_ca_source(mut self, ca: &Path) -> Self {
        self.ca_source = Some(ca.display().to_string().into());
        self
    }

    /// The CA file trusted, if these settings came from files.
    pub(crate) fn ca_source(&self) -> Option<Arc<str>> {
        self.ca_source.clone()
    }

    /// Checks servers' certificates for `name` instead of the host part of
    /// the address connected to.
    #[must_use]
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    pub(crate) fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.server.clone().map(tokio_rustls::TlsAcceptor::from)
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::clone(&self.client))
    }

    /// The name a server at `address` (`host:port`) must have a
    /// certificate for.
    pub(crate) fn server_name_for(&self, address: &str) -> Result<ServerName<'static>, String> {
        let host = match &self.server_name {
            Some(n) => n.clone(),
            None => host_of(address).to_owned(),
        };
        ServerName::try_from(host.clone()).map_err(|e| format!("{host:?}: {e}"))
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A development certificate authority with a node and a client
/// certificate signed by it, made on this machine.
pub struct DevCertificates {
    /// The CA certificate (PEM).
    pub ca: String,
    /// The CA's private key (PEM), to sign more certificates later.
    pub ca_key: String,
    /// The node certificate (PEM), valid for the hosts given, as server and
    /// as client.
    pub node: String,
    /// The node's private key (PEM).
    pub node_key: String,
    /// The client certificate (PEM).
    pub client: String,
    /// The client's private key (PEM).
    pub client_key: String,
}

impl std::fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCertificates").finish_non_exhaustive()
    }
}

impl DevCertificates {
    /// Makes a CA, a node certificate valid for `hosts` (names or IP
    /// addresses; `localhost`, `127.0.0.1` and `::1` are always included)
    /// and a client certificate, with fresh ECDSA P-256 keys.
    ///
    /// # Errors
    ///
    /// [`TlsError::Generate`] if a host is not a valid name.
    pub fn generate(hosts: &[String]) -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "statemesh development CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(gen_err)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, cn: &str, usages: Vec<ExtendedKeyUsagePurpose>| {
            let mut p = CertificateParams::new(names).map_err(gen_err)?;
            p.distinguished_name.push(DnType::CommonName, cn);
            p.use_authority_key_identifier_extension = true;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = usages;
            let key = KeyPair::generate().map_err(gen_err)?;
            let cert = p.signed_by(&key, &issuer).map_err(gen_err)?;
            Ok::<_, TlsError>((cert.pem(), key.serialize_pem()))
        };
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for h in hosts {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
        let (node, node_key) = leaf(
            names,
            "statemesh node",
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        let (client, client_key) = leaf(
            vec!["statemesh-client".to_owned()],
            "statemesh client",
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )?;
        Ok(Self {
            ca: ca_cert.pem(),
            ca_key: ca_key_pem,
            node,
            node_key,
            client,
            client_key,
        })
    }

    /// The files [`DevCertificates::write`] makes.
    pub const FILES: [&str; 8] = [
        "ca.pem",
        "ca.key",
        "node.pem",
        "node.key",
        "client.pem",
        "client.key",
        "cluster.secret",
        "jwt.key",
    ];

    /// Writes `ca.pem`, `ca.key`, `node.pem`, `node.key`, `client.pem` and
    /// `client.key` into `dir` (created if missing), with a fresh cluster
    /// secret (`cluster.secret`) and JWT signing key (`jwt.key`): all a
    /// development cluster needs. Keys and secrets are readable by their
    /// owner only. Refuses to overwrite anything, and writes nothing if any
    /// of them exists.
    ///
    /// # Errors
    ///
    /// [`TlsError::Io`] if a file cannot be written or already exists.
    pub fn write(&self, dir: &Path) -> Result<(), TlsError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // All or nothing: a half-written set is worse than none.
        if let Some(name) = Self::FILES.iter().find(|n| dir.join(n).exists()) {
            let path = dir.join(name);
            return Err(io(&path)(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            )));
        }
        let secret = super::Secret::generate().map_err(io(dir))?;
        let jwt_key = super::Secret::generate().map_err(io(dir))?;
        let files = [
            ("ca.pem", &self.ca, false),
            ("ca.key", &self.ca_key, true),
            ("node.pem", &self.node, false),
            ("node.key", &self.node_key, true),
            ("client.pem", &self.client, false),
            ("client.key", &self.client_key, true),
            ("cluster.secret", &secret, true),
            ("jwt.key", &jwt_key, true),
        ];
        for (name, content, secret) in files {
            let path = dir.join(name);
            write_new(&path, content.as_bytes(), secret).map_err(io(&path))?;
        }
        Ok(())
    }
}

/// Creates `path` (failing if it exists), owner-only if `secret`.
pub(crate) fn write_new(path: &Path, content: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

/// The rustls error inside an I/O error from a TLS handshake, if any.
fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A failed TLS handshake in a person's words, with what to change where
/// that is known.
pub(crate) fn describe(e: &std::io::Error, ca: Option<&str>) -> String {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as E};
    match rustls_error(e) {
        Some(E::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature)) => match ca {
            Some(file) => format!(
                "the node's certificate is not signed by {file}: pass the cluster's --ca \
                 (or --certs)"
            ),
            None => {
                "the node's certificate is not signed by the CA given: pass the cluster's CA".into()
            }
        },
        Some(E::InvalidCertificate(
            Cert::NotValidForName | Cert::NotValidForNameContext { .. },
        )) => "the node's certificate does not name the host dialed: dial a name or address \
             its certificate holds"
            .into(),
        Some(E::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. })) => {
            "the node's certificate has expired".into()
        }
        Some(E::InvalidCertificate(other)) => {
            format!("the node's certificate is not accepted: {other:?}")
        }
        // What a TLS client reads from a node that answers in plaintext.
        Some(E::InvalidMessage(_)) => {
            "the node does not speak TLS: connect without TLS (--plaintext)".into()
        }
        Some(E::AlertReceived(
            Alert::CertificateRequired | Alert::BadCertificate | Alert::UnknownCA,
        )) => "the node requires a client certificate signed by the cluster's CA (it runs \
               with mutual TLS): give a client certificate and key"
            .into(),
        Some(other) => format!("tls: {other}"),
        None => format!("tls: {e}"),
    }
}

/// Whether a failed TLS handshake would fail the same way again.
pub(crate) fn is_permanent(e: &std::io::Error) -> bool {
    matches!(
        rustls_error(e),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::InvalidMessage(_)
                | rustls::Error::AlertReceived(_)
                | rustls::Error::PeerIncompatible(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificates_build_node_and_client_settings() {
        let certs = DevCertificates::generate(&["node-a.example".into()]).unwrap();
        let node = Tls::node(
            certs.ca.as_bytes(),
            certs.node.as_bytes(),
            certs.node_key.as_bytes(),
            true,
        )
        .unwrap();
        assert!(node.acceptor().is_some());
        let client = Tls::client(
            certs.ca.as_bytes(),
            Some((certs.client.as_bytes(), certs.client_key.as_bytes())),
        )
        .unwrap();
        assert!(client.acceptor().is_none());
        assert!(client.server_name_for("127.0.0.1:7000").is_ok());
        assert!(client.server_name_for("[::1]:7000").is_ok());
        assert!(client.server_name_for("node-a.example:1").is_ok());
    }

    #[test]
    fn bad_pem_is_a_typed_error() {
        assert!(matches!(
            Tls::client(b"not a certificate", None),
            Err(TlsError::Pem { .. })
        ));
        let certs = DevCertificates::generate(&[]).unwrap();
        assert!(matches!(
            Tls::node(certs.ca.as_bytes(), certs.node.as_bytes(), b"", false),
            Err(TlsError::Pem { .. })
        ));
    }

    #[test]
    fn write_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let certs = DevCertificates::generate(&[]).unwrap();
        certs.write(dir.path()).unwrap();
        assert!(matches!(certs.write(dir.path()), Err(TlsError::Io { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("node.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "a key is readable by others");
        }
        Tls::node_from_files(&TlsFiles::node_in(dir.path()), false).unwrap();
        Tls::client_from_files(&TlsFiles::client_in(dir.path())).unwrap();
    }
}
