//! Accepting connections: the loop, the TLS-or-plaintext sniff, and the
//! handshake that ends in admission or a refusal the other side can read.

use super::admit::admit;
use super::serve::serve_requests;
use super::shared::{Shared, lock};
use crate::network::{
    ConnectionError, FrameError, Security,
    auth::AuthError,
    connection::BoxStream,
    frame::{self, Kind},
    handshake::{self, MAX_HANDSHAKE, Welcome},
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        while sessions.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((tcp, remote)) => {
                let shared = Arc::clone(&shared);
                sessions.spawn(async move {
                    let _open = OpenConnection::new();
                    if let Err(e) = session(&shared, tcp).await {
                        log_session_end(remote, &e);
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Counts an accepted connection while it is open, however its task ends.
struct OpenConnection(metrics::Gauge);

impl OpenConnection {
    fn new() -> Self {
        let g = metrics::gauge!("statemesh_connections", "direction" => "in");
        g.increment(1.0);
        Self(g)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn log_session_end(remote: SocketAddr, e: &ConnectionError) {
    if !matches!(e, ConnectionError::Frame(FrameError::Closed)) {
        metrics::counter!("statemesh_connections_refused_total").increment(1);
    }
    match e {
        ConnectionError::Frame(FrameError::Closed) => {
            tracing::debug!(%remote, "connection closed by the peer");
        }
        // A client that gave up dialing (it went to another member while
        // this node was paused, say) or a port probe: nothing was refused.
        ConnectionError::Tls { error: io, .. }
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            tracing::debug!(%remote, "connection closed during the TLS handshake");
        }
        _ => tracing::warn!(%remote, error = %e, "connection refused or closed"),
    }
}

/// Serves one accepted connection until it closes or misbehaves.
async fn session(shared: &Arc<Shared>, tcp: TcpStream) -> Result<(), ConnectionError> {
    let _ = tcp.set_nodelay(true);
    let limits = shared.options.limits;
    // A client of the other kind is told what to change, in a form it
    // can read, instead of failing a handshake it cannot make sense of.
    let tls_hello = starts_tls(&tcp, limits.connect_timeout).await?;
    let tls = matches!(shared.options.security, Security::Tls(_));
    if tls_hello != tls {
        let why = if tls {
            "this node speaks TLS: connect with TLS (drop --plaintext)"
        } else {
            "this node speaks plaintext: connect without TLS (--plaintext)"
        };
        let mut tcp = tcp;
        let refusal = handshake::encode(&Welcome::Refused(why.into()));
        let _ = frame::write(&mut tcp, 0, Kind::Handshake, &refusal).await;
        return Err(ConnectionError::Refused(format!(
            "a {} client: {why}",
            if tls_hello { "TLS" } else { "plaintext" }
        )));
    }
    let stream: BoxStream = match &shared.options.security {
        Security::Tls(tls) => {
            let acceptor = tls
                .acceptor()
                .ok_or_else(|| ConnectionError::Handshake("no server certificate".into()))?;
            let accept = acceptor.accept(tcp);
            Box::new(
                tokio::time::timeout(limits.connect_timeout, accept)
                    .await
                    .map_err(|_| ConnectionError::Timeout(limits.connect_timeout))?
                    .map_err(|error| ConnectionError::Tls {
                        error,
                        ca: tls.ca_source(),
                    })?,
            )
        }
        Security::Plaintext => Box::new(tcp),
    };
    let (mut r, mut w) = tokio::io::split(stream);
    let first = tokio::time::timeout(
        limits.connect_timeout,
        frame::read(&mut r, MAX_HANDSHAKE, limits.stall_timeout),
    )
    .await
    .map_err(|_| ConnectionError::Timeout(limits.connect_timeout))??;
    if first.kind != Kind::Handshake {
        return Err(ConnectionError::Handshake(format!(
            "expected a handshake, got a {:?} frame",
            first.kind
        )));
    }
    let admitted = admit(shared, &first.payload);
    // A refusal goes out under our version too, so a peer of another
    // version learns what we speak.
    let welcome = match &admitted {
        Ok((_, node)) => Welcome::Accepted {
            node: *node,
            cluster_id: *lock(&shared.cluster_id),
        },
        Err(ConnectionError::NotReady(why)) => Welcome::NotReady(why.clone()),
        Err(ConnectionError::Auth(AuthError::Expired(ago))) => Welcome::Expired {
            ago_ms: u64::try_from(ago.as_millis()).unwrap_or(u64::MAX),
        },
        // Said from the side that reads it.
        Err(ConnectionError::Cluster { ours, theirs }) => Welcome::Refused(format!(
            "this node belongs to cluster {ours:?}, not {theirs:?}: give the cluster's name"
        )),
        Err(ConnectionError::ClusterId { ours, theirs }) => Welcome::Refused(format!(
            "this node belongs to another cluster named {:?} (id {ours}; yours is {theirs}): \
             the two were bootstrapped apart and never exchange Raft traffic",
            shared.options.cluster
        )),
        Err(e) => Welcome::Refused(e.to_string()),
    };
    frame::write(&mut w, 0, Kind::Handshake, &handshake::encode(&welcome))
        .await
        .map_err(|e| ConnectionError::Frame(e.into()))?;
    let (session, _) = admitted?;
    serve_requests(session, r, w, limits).await
}

/// Whether the first bytes from a new connection begin a TLS handshake
/// rather than statemesh's own plaintext one. A TLS client opens with a
/// handshake record: type 22, then a protocol version 3.x with x > 0. A
/// statemesh frame opens with its length (u32, little endian), whose third
/// byte is 0 for any handshake (they are capped far below 64 KiB).
async fn starts_tls(tcp: &TcpStream, within: Duration) -> Result<bool, ConnectionError> {
    let deadline = tokio::time::Instant::now() + within;
    let mut first = [0u8; 3];
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut first))
            .await
            .map_err(|_| ConnectionError::Timeout(within))?
            .map_err(|e| ConnectionError::Frame(e.into()))?;
        match n {
            0 => return Err(ConnectionError::Frame(FrameError::Closed)),
            3.. => return Ok(first[0] == 0x16 && first[1] == 0x03 && first[2] != 0),
            // The rest is on its way (peek returns at once while anything
            // is buffered, so wait a little rather than spin).
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectionError::Timeout(within));
        }
    }
}
