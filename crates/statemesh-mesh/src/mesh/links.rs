//! Connections this peer opened to others, one per address, dialed on
//! first use and again after one breaks.

use super::error::MeshError;
use crate::pass::{Credentials, Grant, Pass, PassError};
use statemesh_client::network::connection::Connection;
use statemesh_client::network::handshake::{Hello, Peer};
use statemesh_client::network::{Limits, Security};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What this peer dials others with.
#[derive(Debug)]
pub(crate) struct Dialer {
    /// The cluster's name.
    pub(crate) cluster: String,
    pub(crate) security: Security,
    pub(crate) limits: Limits,
    /// This peer's pass, and the key that checks the others'.
    pub(crate) credentials: Credentials,
}

/// How long a failed dial is remembered: sends to a dead peer in that
/// time fail at once instead of each dialing again.
const REMEMBER_FAILURE: Duration = Duration::from_millis(500);

/// A connection to a peer, and who the peer proved to be.
pub(crate) struct Link {
    pub(crate) connection: Connection,
    pub(crate) grant: Grant,
}

#[derive(Default)]
struct Slot {
    link: Option<Arc<Link>>,
    failed_at: Option<(Instant, String)>,
}

/// Connections by address.
#[derive(Default)]
pub(crate) struct Links {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl Links {
    /// The connection to `address`, dialed if there is none that works.
    pub(crate) async fn get(&self, dialer: &Dialer, address: &str) -> Result<Arc<Link>, MeshError> {
        let slot = Arc::clone(self.slots().entry(address.to_owned()).or_default());
        // One dial per address at a time: others wait for its outcome.
        let mut slot = slot.lock().await;
        if let Some(link) = &slot.link
            && !link.connection.is_closed()
        {
            return Ok(Arc::clone(link));
        }
        if let Some((at, why)) = &slot.failed_at
            && at.elapsed() < REMEMBER_FAILURE
        {
            return Err(MeshError::Config(why.clone()));
        }
        match dial(dialer, address).await {
            Ok(link) => {
                let link = Arc::new(link);
                slot.link = Some(Arc::clone(&link));
                slot.failed_at = None;
                Ok(link)
            }
            Err(e) => {
                slot.link = None;
                slot.failed_at = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    /// Forgets the connection to `address` (its peer left).
    pub(crate) fn forget(&self, address: &str) {
        self.slots().remove(address);
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Slot>>>> {
        // Nothing panics while holding it.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn dial(dialer: &Dialer, address: &str) -> Result<Link, MeshError> {
    let hello = Hello {
        cluster: dialer.cluster.clone(),
        peer: Peer::Mesh {
            pass: postcard::to_allocvec(&dialer.credentials.pass).unwrap_or_default(),
        },
    };
    let connection =
        Connection::open(address, &dialer.security, &hello, dialer.limits, |_| {}).await?;
    // The accepting side proves itself with its own pass: a listener of
    // another cluster (or none at all) is not talked to.
    let pass = connection
        .mesh_pass
        .as_deref()
        .ok_or_else(|| MeshError::Config(format!("{address} is not a mesh peer")))?;
    let grant = dialer
        .admit(pass, connection.peer_certificate.as_deref())
        .map_err(|error| MeshError::PeerPass {
            address: address.to_owned(),
            error,
        })?;
    Ok(Link { connection, grant })
}

impl Dialer {
    /// What another peer's `pass` (postcard) grants, if this cluster
    /// signed it, it has not expired and, over TLS, it names
    /// `certificate`, the one that peer presented. Both sides of a mesh
    /// connection check the other this way.
    pub(crate) fn admit(
        &self,
        pass: &[u8],
        certificate: Option<&[u8]>,
    ) -> Result<Grant, PassError> {
        let pass: Pass = statemesh_core::decode::from_bytes(pass)
            .map_err(|e| PassError::Malformed(e.to_string()))?;
        let grant = self.credentials.verifier.verify(&pass)?;
        if matches!(self.security, Security::Tls(_)) {
            grant.check_certificate(certificate)?;
        }
        Ok(grant)
    }
}
