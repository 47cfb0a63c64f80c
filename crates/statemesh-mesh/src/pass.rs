//! Mesh passes: what a peer presents to another to be let in.
//!
//! Nodes check tokens; the other peers of a mesh cannot (they hold no
//! JWT key, and must not need one). So a process that joins with a token
//! first asks a node for a **pass**: its peer id, its cluster, an expiry,
//! and the streams it may produce and consume, signed with Ed25519 under
//! a key every node derives from the cluster secret. Any peer checks a
//! pass with the cluster's public key alone, which comes with its own
//! pass. A pass of another cluster fails the signature (another secret)
//! or the cluster id (the same secret reused), and is refused either way.
//!
//! Over TLS a pass also names the SHA-256 of the certificate its holder
//! presents, and each side of a mesh connection checks that the other's
//! certificate is that one: a pass copied by a peer it was shown to is
//! worth nothing without the certificate's key. So a peer needs no
//! certificate from the cluster's CA; one made for the occasion does.

use crate::peer::PeerId;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use statemesh_core::ClusterId;
use statemesh_core::pattern::any_matches;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a pass grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The cluster it is good for.
    pub cluster: ClusterId,
    /// The peer it was issued to.
    pub peer: PeerId,
    /// When it expires, in seconds since the Unix epoch.
    pub expires: u64,
    /// Streams it may produce: names, or patterns (`*`, `prefix*`).
    pub produce: Vec<String>,
    /// Streams it may consume, the same way.
    pub consume: Vec<String>,
    /// The SHA-256 of the TLS certificate (DER) its holder presents, see
    /// [`certificate_hash`]; `None` for a pass good only in plaintext.
    pub certificate: Option<[u8; 32]>,
}

/// The SHA-256 of a certificate (DER), as a pass names it.
#[must_use]
pub fn certificate_hash(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

impl Grant {
    /// Whether it may produce the stream `name`.
    #[must_use]
    pub fn may_produce(&self, name: &str) -> bool {
        any_matches(&self.produce, name)
    }

    /// Whether it may consume the stream `name`.
    #[must_use]
    pub fn may_consume(&self, name: &str) -> bool {
        any_matches(&self.consume, name)
    }

    /// Whether `presented`, the certificate (DER) the holder showed over
    /// TLS, is the one this pass names.
    ///
    /// # Errors
    ///
    /// [`PassError::Certificate`] if not, or if either is missing.
    pub fn check_certificate(&self, presented: Option<&[u8]>) -> Result<(), PassError> {
        match (self.certificate, presented) {
            (Some(named), Some(der)) if named == certificate_hash(der) => Ok(()),
            (None, _) => Err(PassError::Certificate(
                "the pass names no TLS certificate (it was issued for plaintext)",
            )),
            (Some(_), None) => Err(PassError::Certificate("no TLS certificate was presented")),
            (Some(_), Some(_)) => Err(PassError::Certificate(
                "the TLS certificate presented is not the one the pass names: a pass \
                 held by another process",
            )),
        }
    }
}

/// A signed [`Grant`], as it travels.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// The grant, postcard-encoded: the exact bytes signed.
    #[serde(with = "serde_bytes")]
    grant: Vec<u8>,
    /// Ed25519 over `grant`.
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

impl std::fmt::Debug for Pass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pass(..)")
    }
}

/// Why a pass admits nobody.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// Not signed by this cluster's key: forged, damaged, or of a cluster
    /// with another secret.
    #[error("the mesh pass is not signed by this cluster")]
    Signature,
    /// Signed by this key, for another cluster (one that reuses the
    /// secret).
    #[error("the mesh pass is for cluster {theirs}, not this cluster ({ours})")]
    OtherCluster {
        /// The pass's cluster.
        theirs: ClusterId,
        /// This peer's.
        ours: ClusterId,
    },
    /// It expired this long ago.
    #[error("the mesh pass expired {0:?} ago")]
    Expired(Duration),
    /// The signed bytes are not a grant.
    #[error("the mesh pass is malformed: {0}")]
    Malformed(String),
    /// Over TLS, the holder's certificate is not the one the pass names.
    #[error("the mesh pass does not match the TLS certificate: {0}")]
    Certificate(&'static str),
}

/// The cluster's public key: checks passes. Every peer holds one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassVerifier {
    cluster: ClusterId,
    #[serde(with = "serde_bytes")]
    public_key: Vec<u8>,
}

impl std::fmt::Debug for PassVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassVerifier({})", self.cluster)
    }
}

impl PassVerifier {
    /// The cluster whose passes it admits.
    #[must_use]
    pub fn cluster(&self) -> ClusterId {
        self.cluster
    }

    /// What `pass` grants, if this cluster signed it and it has not
    /// expired.
    ///
    /// # Errors
    ///
    /// [`PassError`] saying why it admits nobody.
    pub fn verify(&self, pass: &Pass) -> Result<Grant, PassError> {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&pass.grant, &pass.signature)
            .map_err(|_| PassError::Signature)?;
        let grant: Grant = statemesh_core::decode::from_bytes(&pass.grant)
            .map_err(|e| PassError::Malformed(e.to_string()))?;
        if grant.cluster != self.cluster {
            return Err(PassError::OtherCluster {
                theirs: grant.cluster,
                ours: self.cluster,
            });
        }
        let expires = UNIX_EPOCH + Duration::from_secs(grant.expires);
        if let Ok(ago) = SystemTime::now().duration_since(expires) {
            return Err(PassError::Expired(ago));
        }
        Ok(grant)
    }
}

/// What admits a process to the mesh: its pass, and the cluster's key
/// that checks everyone else's.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// This process's pass.
    pub pass: Pass,
    /// Checks the passes of the peers it meets.
    pub verifier: PassVerifier,
}

/// Issues passes: held by nodes, derived from the cluster secret.
pub struct PassIssuer {
    cluster: ClusterId,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for PassIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassIssuer({})", self.cluster)
    }
}

impl PassIssuer {
    /// The issuer of cluster `cluster`, whose nodes share `secret`: every
    /// node derives the same key, so a pass from any node is good at every
    /// peer.
    #[must_use]
    pub fn new(secret: &[u8], cluster: ClusterId) -> Self {
        let seed = Sha256::new()
            .chain_update(b"statemesh mesh pass key\0")
            .chain_update(secret)
            .finalize();
        // A 32-byte seed is all Ed25519 needs; any seed is a valid key.
        let key = Ed25519KeyPair::from_seed_unchecked(&seed)
            .unwrap_or_else(|_| unreachable!("an Ed25519 seed is any 32 bytes"));
        Self { cluster, key }
    }

    /// The key that checks this issuer's passes.
    #[must_use]
    pub fn verifier(&self) -> PassVerifier {
        PassVerifier {
            cluster: self.cluster,
            public_key: self.key.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `grant` as given: the fuzz targets sign edited grants, so
    /// that their edits reach the grant's decoder behind the signature.
    #[doc(hidden)]
    #[must_use]
    pub fn sign_bytes(&self, grant: Vec<u8>) -> Pass {
        let signature = self.key.sign(&grant).as_ref().to_vec();
        Pass { grant, signature }
    }

    /// The signed bytes of `pass` (for the fuzz targets).
    #[doc(hidden)]
    #[must_use]
    pub fn grant_bytes(pass: &Pass) -> &[u8] {
        &pass.grant
    }

    /// A pass for `peer`, good for `ttl`, to produce and consume what the
    /// patterns allow, in a plaintext mesh (over TLS, see
    /// [`PassIssuer::issue_bound`]).
    #[must_use]
    pub fn issue(
        &self,
        peer: PeerId,
        ttl: Duration,
        produce: Vec<String>,
        consume: Vec<String>,
    ) -> Pass {
        self.issue_bound(peer, ttl, produce, consume, None)
    }

    /// [`PassIssuer::issue`], for the holder of the TLS certificate whose
    /// [`certificate_hash`] is `certificate`.
    #[must_use]
    pub fn issue_bound(
        &self,
        peer: PeerId,
        ttl: Duration,
        produce: Vec<String>,
        consume: Vec<String>,
        certificate: Option<[u8; 32]>,
    ) -> Pass {
        let expires = (SystemTime::now() + ttl)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let grant = Grant {
            cluster: self.cluster,
            peer,
            expires,
            produce,
            consume,
            certificate,
        };
        // A grant of ids, numbers and strings always encodes.
        self.sign_bytes(postcard::to_allocvec(&grant).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(n: u128) -> ClusterId {
        format!("{n:032x}").parse().unwrap()
    }

    fn everything(issuer: &PassIssuer, ttl: Duration) -> Pass {
        issuer.issue(
            PeerId::from(9),
            ttl,
            vec!["prices/*".into()],
            vec!["*".into()],
        )
    }

    #[test]
    fn a_pass_of_this_cluster_grants_its_scopes() {
        let issuer = PassIssuer::new(b"secret", cluster(1));
        let grant = issuer
            .verifier()
            .verify(&everything(&issuer, Duration::from_secs(60)))
            .unwrap();
        assert_eq!(grant.peer, PeerId::from(9));
        assert!(grant.may_produce("prices/eu"));
        assert!(!grant.may_produce("orders"));
        assert!(grant.may_consume("orders"));
        // Another node with the same secret checks it the same way.
        let other_node = PassIssuer::new(b"secret", cluster(1)).verifier();
        assert!(
            other_node
                .verify(&everything(&issuer, Duration::from_secs(60)))
                .is_ok()
        );
    }

    #[test]
    fn another_cluster_a_forgery_and_an_old_pass_are_refused() {
        let ours = PassIssuer::new(b"secret", cluster(1)).verifier();
        let other_secret = PassIssuer::new(b"other", cluster(1));
        assert_eq!(
            ours.verify(&everything(&other_secret, Duration::from_secs(60))),
            Err(PassError::Signature)
        );
        let same_secret = PassIssuer::new(b"secret", cluster(2));
        assert!(matches!(
            ours.verify(&everything(&same_secret, Duration::from_secs(60))),
            Err(PassError::OtherCluster { .. })
        ));
        let issuer = PassIssuer::new(b"secret", cluster(1));
        let mut forged = everything(&issuer, Duration::from_secs(60));
        if let Some(b) = forged.grant.last_mut() {
            *b ^= 1;
        }
        assert_eq!(ours.verify(&forged), Err(PassError::Signature));
        // Good until the second it was issued in: already over.
        let old = issuer.issue(PeerId::from(9), Duration::ZERO, vec![], vec![]);
        assert!(matches!(ours.verify(&old), Err(PassError::Expired(_))));
    }
}
