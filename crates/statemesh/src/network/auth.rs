//! Who may connect, and what a client may touch.
//!
//! Two kinds of token are accepted:
//!
//! - the **cluster secret**, a string every node of the cluster is given.
//!   Nodes prove to each other with it that they belong to the cluster; a
//!   client that presents it may read and write everything.
//! - a **JWT** signed with HS256 under a key the nodes share, carrying an
//!   expiry (`exp`, seconds since the Unix epoch) and the collections the
//!   holder may read (`read`) and write (`write`), each a list of names
//!   where `*` matches any name and `prefix*` any name with that prefix.
//!   Writing implies reading.
//!
//! Secrets and signatures are compared in constant time: both sides are
//! hashed (or MACed) first, so neither the content nor the length of the
//! expected value leaks through timing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A shared secret (the cluster secret, or a JWT signing key). Its `Debug`
/// form never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Wraps a secret. An empty secret is allowed but matches only an
    /// empty token.
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// A fresh random secret of 32 bytes from the operating system,
    /// printed as 64 hex digits (what `statemesh certs init` writes for a
    /// development cluster).
    ///
    /// # Errors
    ///
    /// The operating system gave no random bytes.
    pub fn generate() -> std::io::Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether `presented` is this secret, in time independent of both.
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        let a = Sha256::digest(&self.0);
        let b = Sha256::digest(presented);
        a.ct_eq(&b).into()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What a JWT grants; the claims it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who holds it (for the logs).
    pub sub: String,
    /// When it expires, in seconds since the Unix epoch.
    pub exp: u64,
    /// Collections the holder may read.
    #[serde(default)]
    pub read: Vec<String>,
    /// Collections the holder may read and write.
    #[serde(default)]
    pub write: Vec<String>,
}

impl Claims {
    /// Claims for `subject`, valid for `ttl` from now, with no access yet.
    #[must_use]
    pub fn new(subject: impl Into<String>, ttl: Duration) -> Self {
        let exp = (SystemTime::now() + ttl)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            sub: subject.into(),
            exp,
            read: Vec::new(),
            write: Vec::new(),
        }
    }

    /// Adds collections (names or patterns) the holder may read.
    #[must_use]
    pub fn read(mut self, pattern: impl Into<String>) -> Self {
        self.read.push(pattern.into());
        self
    }

    /// Adds collections (names or patterns) the holder may write.
    #[must_use]
    pub fn write(mut self, pattern: impl Into<String>) -> Self {
        self.write.push(pattern.into());
        self
    }

    /// Signs the claims with HS256 under `key`: the token to give a client.
    #[must_use]
    pub fn sign(&self, key: &Secret) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Claims are plain strings and numbers: serde_json cannot fail here.
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let signing_input = format!("{header}.{claims}");
        let signature =
            URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()).finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }
}

fn mac(key: &Secret, input: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(input);
    m
}

/// Whether a client reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads a collection.
    Read,
    /// Changes a collection.
    Write,
}

/// What an authenticated client may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who it is: `cluster-secret`, or the JWT's subject.
    pub subject: String,
    /// When the grant ends (`None`: never).
    pub expires: Option<SystemTime>,
    read: Vec<String>,
    write: Vec<String>,
}

impl Grant {
    /// Everything, for ever: the holder of the cluster secret.
    pub(crate) fn everything() -> Self {
        Self {
            subject: "cluster-secret".into(),
            expires: None,
            read: Vec::new(),
            write: vec!["*".into()],
        }
    }

    /// Whether it allows `access` to collection `name`.
    #[must_use]
    pub fn allows(&self, name: &str, access: Access) -> bool {
        let matches = |patterns: &[String]| patterns.iter().any(|p| pattern_matches(p, name));
        matches(&self.write) || (access == Access::Read && matches(&self.read))
    }

    /// Whether it has expired.
    #[must_use]
    pub fn expired(&self) -> bool {
        self.expires.is_some_and(|e| e <= SystemTime::now())
    }
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// It is neither the cluster secret nor a JWT with a valid signature.
    #[error("the token is not valid for this cluster")]
    Invalid,
    /// A JWT that is not well formed, or uses another algorithm.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A JWT past its expiry.
    #[error("the token expired {0:?} ago")]
    Expired(Duration),
}

/// Checks tokens: the cluster secret, and JWTs if a signing key is set.
#[derive(Debug, Clone)]
pub struct Authenticator {
    secret: Secret,
    jwt_key: Option<Secret>,
}

impl Authenticator {
    /// Accepts `secret` (nodes and administrators) and, if `jwt_key` is
    /// given, JWTs signed with it.
    #[must_use]
    pub fn new(secret: Secret, jwt_key: Option<Secret>) -> Self {
        Self { secret, jwt_key }
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Whether `token` is the cluster secret (what a node must present).
    #[must_use]
    pub fn is_cluster_secret(&self, token: &str) -> bool {
        self.secret.matches(token.as_bytes())
    }

    /// What `token` grants.
    ///
    /// # Errors
    ///
    /// [`AuthError`] saying why it grants nothing.
    pub fn check(&self, token: &str) -> Result<Grant, AuthError> {
        // Decide by shape first, so a JWT is never compared with the secret
        // and vice versa; both comparisons are constant-time anyway.
        let looks_like_jwt = token.split('.').count() == 3;
        if !looks_like_jwt || self.jwt_key.is_none() {
            return if self.is_cluster_secret(token) {
                Ok(Grant::everything())
            } else {
                Err(AuthError::Invalid)
            };
        }
        let key = self.jwt_key.as_ref().ok_or(AuthError::Invalid)?;
        let claims = verify_jwt(key, token)?;
        let expires = UNIX_EPOCH + Duration::from_secs(claims.exp);
        if let Ok(ago) = SystemTime::now().duration_since(expires) {
            return Err(AuthError::Expired(ago));
        }
        Ok(Grant {
            subject: claims.sub,
            expires: Some(expires),
            read: claims.read,
            write: claims.write,
        })
    }
}

fn verify_jwt(key: &Secret, token: &str) -> Result<Claims, AuthError> {
    let malformed = |what: &str| AuthError::Malformed(what.to_owned());
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("no signature"))?;
    let (header, claims) = signing_input
        .split_once('.')
        .ok_or_else(|| malformed("no claims"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed("the signature is not base64url"))?;
    // The signature is checked before anything else is decoded: nothing
    // from an unsigned token is parsed past its base64.
    mac(key, signing_input.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| AuthError::Invalid)?;
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| malformed("the header is not base64url JSON"))?;
    if header.alg != "HS256" {
        return Err(AuthError::Malformed(format!(
            "algorithm {:?} (only HS256 is accepted)",
            header.alg
        )));
    }
    URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or_else(|| malformed("the claims are not base64url JSON with sub and exp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(Secret::new("s3cret"), Some(Secret::new("jwt-key")))
    }

    #[test]
    fn cluster_secret_grants_everything() {
        let g = auth().check("s3cret").unwrap();
        assert!(g.allows("anything", Access::Write));
        assert!(!g.expired());
        assert_eq!(auth().check("s3cret!"), Err(AuthError::Invalid));
        assert_eq!(auth().check(""), Err(AuthError::Invalid));
    }

    #[test]
    fn jwt_scopes() {
        let key = Secret::new("jwt-key");
        let token = Claims::new("alice", Duration::from_secs(60))
            .read("*")
            .write("orders")
            .write("cfg-*")
            .sign(&key);
        let g = auth().check(&token).unwrap();
        assert_eq!(g.subject, "alice");
        assert!(g.allows("orders", Access::Write));
        assert!(g.allows("cfg-a", Access::Write));
        assert!(!g.allows("users", Access::Write));
        assert!(g.allows("users", Access::Read));
        let reader = Claims::new("bob", Duration::from_secs(60))
            .read("orders")
            .sign(&key);
        let g = auth().check(&reader).unwrap();
        assert!(g.allows("orders", Access::Read));
        assert!(!g.allows("orders", Access::Write));
        assert!(!g.allows("users", Access::Read));
    }

    #[test]
    fn expired_forged_and_malformed_jwts() {
        let key = Secret::new("jwt-key");
        let mut old = Claims::new("carol", Duration::ZERO).write("*");
        old.exp -= 10;
        assert!(matches!(
            auth().check(&old.sign(&key)),
            Err(AuthError::Expired(_))
        ));
        let forged = Claims::new("mallory", Duration::from_secs(60))
            .write("*")
            .sign(&Secret::new("other-key"));
        assert_eq!(auth().check(&forged), Err(AuthError::Invalid));
        // A valid signature over a changed claim set is refused.
        let good = Claims::new("dave", Duration::from_secs(60))
            .read("x")
            .sign(&key);
        let parts: Vec<&str> = good.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims::new("dave", Duration::from_secs(60)).write("*")).unwrap(),
        );
        let tampered = format!("{}.{evil}.{}", parts[0], parts[2]);
        assert_eq!(auth().check(&tampered), Err(AuthError::Invalid));
        assert!(matches!(
            auth().check("a.b.!!"),
            Err(AuthError::Malformed(_))
        ));
        // alg "none" is refused even when "signed" correctly.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let input = format!("{header}.{}", parts[1]);
        let sig = URL_SAFE_NO_PAD.encode(mac(&key, input.as_bytes()).finalize().into_bytes());
        assert!(matches!(
            auth().check(&format!("{input}.{sig}")),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn without_a_jwt_key_only_the_secret_works() {
        let a = Authenticator::new(Secret::new("s"), None);
        let token = Claims::new("x", Duration::from_secs(60))
            .write("*")
            .sign(&Secret::new("k"));
        assert_eq!(a.check(&token), Err(AuthError::Invalid));
        assert!(a.check("s").is_ok());
    }

    #[test]
    fn generated_secrets_differ() {
        let a = Secret::generate().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, Secret::generate().unwrap());
    }
}
