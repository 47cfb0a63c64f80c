//! The first frame each side sends: who it is and what it speaks.
//!
//! ```text
//! | magic "STMESH\r\n" | version u16 LE | postcard body |
//! ```
//!
//! The magic and the version come first and never change shape, so any
//! future version can tell a peer of another version what it speaks. The
//! connecting side sends a [`Hello`]; the accepting side answers with a
//! [`Welcome`] under its own version. A side that sees another version
//! stops without decoding the body.

use super::ConnectionError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use statemesh_core::{ClusterId, NodeId};

/// Starts every handshake. `\r\n` catches transports that rewrite line
/// ends; the rest catches a client of another protocol.
pub const MAGIC: [u8; 8] = *b"STMESH\r\n";

/// The protocol this build speaks.
pub const PROTOCOL_VERSION: u16 = 3;

/// The largest handshake accepted: a token and a cluster name fit easily.
pub const MAX_HANDSHAKE: usize = 64 * 1024;

/// What the connecting side says first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The cluster it means to reach.
    pub cluster: String,
    pub peer: Peer,
}

/// Who is connecting.
#[derive(Clone, Serialize, Deserialize)]
pub enum Peer {
    /// Another node of the cluster, with the cluster secret.
    Node {
        id: NodeId,
        #[serde(with = "serde_bytes")]
        secret: Vec<u8>,
        /// Its cluster's id, once it has one (a node that is joining
        /// learns it from the member it joins through).
        cluster_id: Option<ClusterId>,
    },
    /// A client, with its token.
    Client { token: String },
    /// A peer of the cluster's mesh (statemesh-mesh), with its pass: the
    /// postcard bytes of a signed mesh pass, which only mesh peers read.
    Mesh {
        #[serde(with = "serde_bytes")]
        pass: Vec<u8>,
    },
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node { id, .. } => write!(f, "node {id}"),
            Self::Client { .. } => f.write_str("client"),
            Self::Mesh { .. } => f.write_str("mesh peer"),
        }
    }
}

/// The accepting side's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Welcome {
    /// Accepted; the accepting node's id and its cluster's id.
    Accepted {
        node: NodeId,
        cluster_id: Option<ClusterId>,
    },
    /// Refused, and why.
    Refused(String),
    /// Not ready yet (starting up): try again shortly.
    NotReady(String),
    /// The client's token expired this many milliseconds ago: a new token
    /// is needed, not another try.
    Expired { ago_ms: u64 },
    /// Accepted by a mesh peer, which proves itself with its own pass.
    Mesh {
        #[serde(with = "serde_bytes")]
        pass: Vec<u8>,
    },
}

/// Encodes a handshake body under this build's version.
pub fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    encode_as(PROTOCOL_VERSION, body)
}

pub fn encode_as<T: Serialize>(version: u16, body: &T) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    // Our own handshake types always encode.
    out.extend_from_slice(&postcard::to_allocvec(body).unwrap_or_default());
    out
}

/// Checks magic and version, then decodes the body.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ConnectionError> {
    let Some((magic, rest)) = payload.split_first_chunk::<8>() else {
        return Err(ConnectionError::BadMagic);
    };
    if *magic != MAGIC {
        return Err(ConnectionError::BadMagic);
    }
    let Some((version, body)) = rest.split_first_chunk::<2>() else {
        return Err(ConnectionError::Handshake("no protocol version".into()));
    };
    let theirs = u16::from_le_bytes(*version);
    if theirs != PROTOCOL_VERSION {
        return Err(ConnectionError::Version {
            ours: PROTOCOL_VERSION,
            theirs,
        });
    }
    statemesh_core::decode::from_bytes(body).map_err(|e| ConnectionError::Handshake(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let hello = Hello {
            cluster: "c".into(),
            peer: Peer::Client { token: "t".into() },
        };
        let bytes = encode(&hello);
        let back: Hello = decode(&bytes).unwrap();
        assert_eq!(back.cluster, "c");
        assert!(matches!(
            decode::<Hello>(b"GET / HTTP/1.1\r\n"),
            Err(ConnectionError::BadMagic)
        ));
        assert!(matches!(
            decode::<Hello>(&encode_as(PROTOCOL_VERSION + 1, &hello)),
            Err(ConnectionError::Version { theirs, .. }) if theirs == PROTOCOL_VERSION + 1
        ));
        let mut short = bytes.clone();
        short.truncate(12);
        assert!(matches!(
            decode::<Hello>(&short),
            Err(ConnectionError::Handshake(_))
        ));
        assert!(matches!(
            decode::<Hello>(&MAGIC),
            Err(ConnectionError::Handshake(_))
        ));
    }
}
