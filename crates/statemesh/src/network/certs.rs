//! Development certificates: a CA, and node and client certificates
//! signed by it, made on this machine (`statemesh certs init`). Nothing
//! ships a private key: each cluster's keys are made on its own machine.

use statemesh_client::network::TlsError;
use std::path::Path;

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
fn write_new(path: &Path, content: &[u8], secret: bool) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use statemesh_client::network::{Tls, TlsFiles};

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
