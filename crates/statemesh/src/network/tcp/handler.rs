//! The seam between the transport and the service: the node hands client
//! traffic to whatever implements this, so the transport knows nothing of
//! collections.

use crate::network::{BoxFuture, auth::Grant, push::Pushes};
use std::sync::Arc;

/// Answers the requests of authenticated clients.
pub trait ClientHandler: Send + Sync + 'static {
    /// Answers `request` from a client holding `grant`.
    fn handle(&self, grant: Arc<Grant>, request: Vec<u8>) -> BoxFuture<Vec<u8>>;

    /// Serves a subscription: pushes items to `pushes` until it ends, then
    /// returns the reply that closes the stream. The default serves none:
    /// it ends at once with an empty reply.
    fn subscribe(&self, grant: Arc<Grant>, request: Vec<u8>, pushes: Pushes) -> BoxFuture<Vec<u8>> {
        let _ = (grant, request, pushes);
        Box::pin(async { Vec::new() })
    }
}
