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
//!   Writing implies reading. `produce` and `consume` list, the same way,
//!   the mesh streams the holder may produce and consume (in the pass a
//!   node issues it).
//!
//! The cluster secret is compared in constant time: both sides are hashed
//! first, so neither its content nor its length leaks through timing.
//! JWTs are signed and checked by `jsonwebtoken` with the algorithm pinned
//! to HS256: a token whose header names any other algorithm (`none`
//! included) is refused before its claims are looked at.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use statemesh_core::pattern::any_matches;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

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
    /// Mesh streams the holder may produce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub produce: Vec<String>,
    /// Mesh streams the holder may consume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consume: Vec<String>,
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
            produce: Vec::new(),
            consume: Vec::new(),
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

    /// Adds mesh streams (names or patterns) the holder may produce.
    #[must_use]
    pub fn produce(mut self, pattern: impl Into<String>) -> Self {
        self.produce.push(pattern.into());
        self
    }

    /// Adds mesh streams (names or patterns) the holder may consume.
    #[must_use]
    pub fn consume(mut self, pattern: impl Into<String>) -> Self {
        self.consume.push(pattern.into());
        self
    }

    /// Signs the claims with HS256 under `key`: the token to give a client.
    ///
    /// # Errors
    ///
    /// [`EmptyKey`]: a token signed with no key at all would prove nothing.
    pub fn sign(&self, key: &Secret) -> Result<String, EmptyKey> {
        let key = EncodingKey::from_secret(key.as_bytes()).map_err(|_| EmptyKey)?;
        // With a key, HMAC signs, and the claims are plain strings and
        // numbers: encoding cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), self, &key).map_err(|_| EmptyKey)
    }
}

/// A JWT signing key that is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JWT signing key is empty")]
pub struct EmptyKey;

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
    /// Mesh streams it may produce (patterns).
    pub produce: Vec<String>,
    /// Mesh streams it may consume (patterns).
    pub consume: Vec<String>,
}

impl Grant {
    /// Everything, for ever: the holder of the cluster secret.
    pub(crate) fn everything() -> Self {
        Self {
            subject: "cluster-secret".into(),
            expires: None,
            read: Vec::new(),
            write: vec!["*".into()],
            produce: vec!["*".into()],
            consume: vec!["*".into()],
        }
    }

    /// Whether it allows `access` to collection `name`.
    #[must_use]
    pub fn allows(&self, name: &str, access: Access) -> bool {
        any_matches(&self.write, name) || (access == Access::Read && any_matches(&self.read, name))
    }

    /// Whether it has expired.
    #[must_use]
    pub fn expired(&self) -> bool {
        self.expires.is_some_and(|e| e <= SystemTime::now())
    }
}

pub use statemesh_client::network::AuthError;

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
            produce: claims.produce,
            consume: claims.consume,
        })
    }
}

fn verify_jwt(key: &Secret, token: &str) -> Result<Claims, AuthError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = Validation::new(Algorithm::HS256);
    // The expiry is checked by the caller, to say how long ago it passed
    // (and with no leeway: a token is good until its `exp`, not after).
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    // No token is signed under an empty key (`Claims::sign` refuses one).
    let key = DecodingKey::from_secret(key.as_bytes()).map_err(|_| AuthError::Invalid)?;
    match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => AuthError::Invalid,
            ErrorKind::InvalidAlgorithm => {
                AuthError::Malformed("an algorithm other than HS256".to_owned())
            }
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
                AuthError::Malformed("not three base64url parts".to_owned())
            }
            ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => AuthError::Malformed(
                "the header or claims are not JSON with sub and exp".to_owned(),
            ),
            _ => AuthError::Malformed(e.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};

    /// The HS256 signature of `input`, computed without the JWT library:
    /// how a forger holding the key would sign a header of their choice.
    fn hs256(key: &[u8], input: &str) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        m.update(input.as_bytes());
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    }

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
            .sign(&key)
            .unwrap();
        let g = auth().check(&token).unwrap();
        assert_eq!(g.subject, "alice");
        assert!(g.allows("orders", Access::Write));
        assert!(g.allows("cfg-a", Access::Write));
        assert!(!g.allows("users", Access::Write));
        assert!(g.allows("users", Access::Read));
        let reader = Claims::new("bob", Duration::from_secs(60))
            .read("orders")
            .sign(&key)
            .unwrap();
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
            auth().check(&old.sign(&key).unwrap()),
            Err(AuthError::Expired(_))
        ));
        let forged = Claims::new("mallory", Duration::from_secs(60))
            .write("*")
            .sign(&Secret::new("other-key"))
            .unwrap();
        assert_eq!(auth().check(&forged), Err(AuthError::Invalid));
        // A valid signature over a changed claim set is refused.
        let good = Claims::new("dave", Duration::from_secs(60))
            .read("x")
            .sign(&key)
            .unwrap();
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
        let sig = hs256(b"jwt-key", &input);
        assert!(matches!(
            auth().check(&format!("{input}.{sig}")),
            Err(AuthError::Malformed(_))
        ));
        // So is another algorithm the library knows, whatever the signature.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        let input = format!("{header}.{}", parts[1]);
        let sig = hs256(b"jwt-key", &input);
        assert!(matches!(
            auth().check(&format!("{input}.{sig}")),
            Err(AuthError::Malformed(m)) if m.contains("HS256")
        ));
    }

    #[test]
    fn without_a_jwt_key_only_the_secret_works() {
        let a = Authenticator::new(Secret::new("s"), None);
        let token = Claims::new("x", Duration::from_secs(60))
            .write("*")
            .sign(&Secret::new("k"))
            .unwrap();
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
