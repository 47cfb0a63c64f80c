//! TLS settings.
//!
//! Every node has a certificate signed by the cluster's certificate
//! authority (CA), valid for the names and addresses others reach it by; it
//! serves with it and, when connecting to a peer, presents it as a client
//! certificate, so a cluster may require mutual TLS. A client checks the
//! node's certificate against the CA, and presents its own certificate
//! when the nodes require one.
//!
//! Making certificates (`DevCertificates`) is the node crate's: a client
//! only loads them.
//!
//! Mesh peers are the exception ([`Tls::peer`]): any certificate gets
//! through TLS, and the mesh then checks it against the peer's pass. So
//! a node that does not require client certificates still asks for one,
//! and takes whatever is offered, for the mesh peers among its clients.

mod any;

use any::AnyCertificate;
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
    /// The node files `statemesh::DevCertificates::write` puts in `dir`.
    #[must_use]
    pub fn node_in(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
        }
    }

    /// The client files `statemesh::DevCertificates::write` puts in `dir`.
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
    /// The certificate and key presented, if any.
    identity: Option<Arc<Identity>>,
}

/// A certificate chain and its private key: what one side presents.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// From PEM: the certificate (chain, its own first) and its key.
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`] if either holds nothing usable.
    pub fn from_pem(cert: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        Ok(Self {
            chain: certs(cert, "certificate")?,
            key: key(key_pem, "key")?,
        })
    }

    /// Its own certificate (DER), the one a mesh pass names.
    #[must_use]
    pub fn certificate(&self) -> &[u8] {
        self.chain.first().map_or(&[], |c| c.as_ref())
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("serves", &self.server.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

// rustls 0.23.48 deprecates ring's provider because it has no
// post-quantum key exchange; ring stays until that is worth a C and CMake
// toolchain for every user (docs/decisions.md, "rustls with the `ring`
// provider").
#[allow(deprecated)]
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
        let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = if mutual {
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
                .build()
                .map_err(|e| TlsError::Generate(e.to_string()))?
        } else {
            // Not required, but taken when offered: a mesh peer's
            // certificate is checked against its pass (see the module).
            Arc::new(AnyCertificate::new(provider(), false))
        };
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain.clone(), key.clone_key())?;
        Ok(Self {
            server: Some(Arc::new(server)),
            client: Arc::new(client),
            server_name: None,
            ca_source: None,
            identity: Some(Arc::new(Identity { chain, key })),
        })
    }

    /// A mesh peer's settings: it serves with `identity` and presents it
    /// when dialing, and takes any certificate from the other side (its
    /// pass must name that certificate: the mesh checks, after the
    /// handshake). A client certificate is required.
    ///
    /// # Errors
    ///
    /// [`TlsError`] if rustls refuses the identity.
    pub fn peer(identity: Arc<Identity>) -> Result<Self, TlsError> {
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(AnyCertificate::new(provider(), true)))
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate::new(provider(), true)))
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
        Ok(Self {
            server: Some(Arc::new(server)),
            client: Arc::new(client),
            server_name: None,
            ca_source: None,
            identity: Some(identity),
        })
    }

    /// The certificate and key these settings present, if any.
    #[must_use]
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
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
        let (client, identity) = match identity {
            Some((cert, key_pem)) => {
                let chain = certs(cert, "client certificate")?;
                let key = key(key_pem, "client key")?;
                let client = builder.with_client_auth_cert(chain.clone(), key.clone_key())?;
                (client, Some(Arc::new(Identity { chain, key })))
            }
            None => (builder.with_no_client_auth(), None),
        };
        Ok(Self {
            server: None,
            client: Arc::new(client),
            server_name: None,
            ca_source: None,
            identity,
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
    pub fn ca_source(&self) -> Option<Arc<str>> {
        self.ca_source.clone()
    }

    /// Checks servers' certificates for `name` instead of the host part of
    /// the address connected to.
    #[must_use]
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The acceptor a listener serves with (`None`: client settings).
    #[must_use]
    pub fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.server.clone().map(tokio_rustls::TlsAcceptor::from)
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::clone(&self.client))
    }

    /// The name a server at `address` (`host:port`) must have a
    /// certificate for.
    ///
    /// # Errors
    ///
    /// The host is neither an IP address nor a valid DNS name.
    pub fn server_name_for(&self, address: &str) -> Result<ServerName<'static>, String> {
        let host = match &self.server_name {
            Some(n) => n.clone(),
            None => host_of(address).to_owned(),
        };
        ServerName::try_from(host.clone()).map_err(|e| format!("{host:?}: {e}"))
    }
}

/// The other side's own certificate (DER), from what it presented.
pub(crate) fn first_certificate(presented: Option<&[CertificateDer<'_>]>) -> Option<Vec<u8>> {
    presented?.first().map(|c| c.to_vec())
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
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
