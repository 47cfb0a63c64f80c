//! A mesh peer's TLS identity: the certificate it presents, which its
//! pass names (see [`crate::pass`]).
//!
//! A peer that has a certificate (a node's, or a client's in a cluster
//! that requires them) presents it; one that has none makes a
//! self-signed one when it starts. Nobody checks these against the
//! cluster's CA: the pass, signed by the cluster, says which certificate
//! its holder presents, and the TLS handshake proves the holder has the
//! key.

use crate::pass::certificate_hash;
use statemesh_client::network::{Identity, Security, TlsError};
use std::sync::Arc;

/// The name in a certificate made by [`ephemeral`] (nobody checks it).
const NAME: &str = "statemesh-mesh-peer.invalid";

/// A new self-signed certificate and its key (ECDSA P-256), for this run
/// of a peer.
///
/// # Errors
///
/// [`TlsError::Generate`] if no key could be made (no randomness).
pub fn ephemeral() -> Result<Arc<Identity>, TlsError> {
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(generate)?;
    let cert = rcgen::CertificateParams::new(vec![NAME.to_owned()])
        .map_err(generate)?
        .self_signed(&key)
        .map_err(generate)?;
    Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).map(Arc::new)
}

/// What `security` presents, or a new [`ephemeral`] identity if it is
/// TLS without a certificate; `None` in plaintext.
///
/// # Errors
///
/// As [`ephemeral`].
pub fn for_security(security: &Security) -> Result<Option<Arc<Identity>>, TlsError> {
    match security {
        Security::Plaintext => Ok(None),
        Security::Tls(tls) => match tls.identity() {
            Some(identity) => Ok(Some(Arc::clone(identity))),
            None => ephemeral().map(Some),
        },
    }
}

/// The [`certificate_hash`] of `identity`'s certificate, as a pass for
/// its holder names it.
#[must_use]
pub fn hash(identity: &Identity) -> [u8; 32] {
    certificate_hash(identity.certificate())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ephemeral_identity_is_new() {
        let a = ephemeral().unwrap();
        let b = ephemeral().unwrap();
        assert_ne!(hash(&a), hash(&b));
        assert!(!a.certificate().is_empty());
    }
}
