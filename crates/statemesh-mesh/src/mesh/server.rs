//! Accepting mesh connections: the handshake that checks a peer's pass,
//! then its gossip and its subscriptions to this process's streams.

use super::discovery;
use super::error::MeshError;
use super::serving::{self, Request};
use super::shared::{Shared, lock};
use crate::pass::{Grant, PassError};
use crate::wire::{End, MeshRequest};
use bytes::Bytes;
use statemesh_client::network::accept::{self, Incoming};
use statemesh_client::network::connection::{Outgoing, spawn_writer};
use statemesh_client::network::frame::{FrameReader, Kind};
use statemesh_client::network::handshake::{self, Hello, Peer, Welcome};
use statemesh_client::network::push::Acks;
use statemesh_client::network::repeats::Say;
use statemesh_client::network::{ConnectionError, FrameError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Frames queued per accepted connection before its tasks wait.
const OUTBOX: usize = 1024;

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    accept::accept_loop(listener, "mesh accept", |tcp, remote| {
        let shared = Arc::clone(&shared);
        async move { log_end(&shared, remote, session(&shared, tcp).await) }
    })
    .await;
}

/// Says how a served connection ended: quietly if the peer went away,
/// even in the middle of the TLS handshake (a peer that gave up dialing
/// this one while it was paused: dozens of them at once when it resumes;
/// a process that exited), and a refusal repeated by the same address
/// once per quiet period.
pub(super) fn log_end(shared: &Shared, remote: SocketAddr, result: Result<(), MeshError>) {
    match result {
        Ok(()) => tracing::debug!(%remote, "mesh connection closed"),
        Err(MeshError::Connection(e)) if e.is_hangup() => {
            tracing::debug!(%remote, error = %e, "mesh connection closed by the peer");
        }
        Err(e) => {
            let error = e.to_string();
            match shared.repeats.note(remote.ip(), &error, Instant::now()) {
                say @ Say::Warn { .. } => tracing::warn!(
                    %remote, %error, "mesh connection refused or closed{}", say.more()
                ),
                Say::Quiet => {
                    tracing::debug!(%remote, %error, "mesh connection refused or closed (again)");
                }
            }
        }
    }
}

async fn session(shared: &Arc<Shared>, tcp: TcpStream) -> Result<(), MeshError> {
    let incoming = accept::accept(
        tcp,
        &shared.dialer.security,
        shared.dialer.limits,
        "mesh peer",
    )
    .await?;
    serve_incoming(shared, incoming).await
}

/// Admits (or refuses) a connection whose hello has been read, and serves
/// it: from this mesh's listener, or from a node's that shares its port.
pub(super) async fn serve_incoming(
    shared: &Arc<Shared>,
    incoming: Incoming,
) -> Result<(), MeshError> {
    let Incoming {
        reader,
        mut writer,
        hello,
        peer_certificate,
    } = incoming;
    let admitted = admit(shared, &hello, peer_certificate.as_deref());
    let welcome = match &admitted {
        Ok(_) => Welcome::Mesh {
            pass: postcard::to_allocvec(&shared.dialer.credentials.pass).unwrap_or_default(),
        },
        Err(MeshError::PeerPass {
            error: PassError::Expired(ago),
            ..
        }) => Welcome::Expired {
            ago_ms: u64::try_from(ago.as_millis()).unwrap_or(u64::MAX),
        },
        Err(e) => Welcome::Refused(e.to_string()),
    };
    accept::answer(&mut writer, &welcome).await?;
    let grant = admitted?;
    serve(shared, grant, FrameReader::new(reader), writer).await
}

/// Who the connecting peer is, if its pass admits it (and, over TLS,
/// names the certificate it presented).
fn admit(shared: &Shared, hello: &[u8], certificate: Option<&[u8]>) -> Result<Grant, MeshError> {
    let hello: Hello = handshake::decode(hello)?;
    if hello.cluster != shared.dialer.cluster {
        return Err(MeshError::Config(format!(
            "this mesh peer belongs to cluster {:?}, not {:?}",
            shared.dialer.cluster, hello.cluster
        )));
    }
    let Peer::Mesh { pass } = hello.peer else {
        return Err(MeshError::Config(
            "this address is a mesh peer's: only mesh peers connect here (clients connect to a node)"
                .into(),
        ));
    };
    shared
        .dialer
        .admit(&pass, certificate)
        .map_err(|error| MeshError::PeerPass {
            address: "the connecting peer".into(),
            error,
        })
}

/// One subscription served on this connection.
struct Serving {
    acks: Arc<Acks>,
    task: JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    shared: &Arc<Shared>,
    grant: Grant,
    mut reader: FrameReader<tokio::io::ReadHalf<statemesh_client::network::connection::BoxStream>>,
    writer: tokio::io::WriteHalf<statemesh_client::network::connection::BoxStream>,
) -> Result<(), MeshError> {
    let (outbox, rx) = mpsc::channel(OUTBOX);
    let writer = spawn_writer(writer, rx);
    let mut serving: HashMap<u64, Serving> = HashMap::new();
    let limits = shared.dialer.limits;
    // The connection lasts as long as the peer's pass: like a client's
    // token, a pass that expires ends what it opened.
    let expires = UNIX_EPOCH + Duration::from_secs(grant.expires);
    let left = expires
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let expiry = tokio::time::sleep(left);
    tokio::pin!(expiry);
    let result = loop {
        let next = tokio::select! {
            next = reader.next_ref(limits.max_frame, limits.stall_timeout) => next,
            () = &mut expiry => break Err(MeshError::PeerPass {
                address: format!("peer {}", grant.peer),
                error: PassError::Expired(Duration::ZERO),
            }),
        };
        let frame = match next {
            Ok(frame) => frame,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => break Err(ConnectionError::Frame(e).into()),
        };
        let id = frame.id;
        match frame.kind {
            Kind::Request => {
                let request: MeshRequest = match statemesh_core::decode::from_bytes(frame.payload) {
                    Ok(r) => r,
                    Err(e) => break Err(protocol(format!("a request that does not decode: {e}"))),
                };
                let MeshRequest::Gossip { from, message } = request else {
                    break Err(protocol("a subscription sent as a plain request".into()));
                };
                if from.id != grant.peer {
                    break Err(protocol(format!(
                        "gossip from {} on the connection of {}",
                        from.id, grant.peer
                    )));
                }
                let received = shared.gossip().receive(&from, message, Instant::now());
                if let Err(e) = received {
                    // Stale or foreign packets are normal around a
                    // restart; the failure detector copes.
                    tracing::debug!(peer = %from.id, error = %e, "gossip not taken");
                }
                discovery::dispatch(shared);
                let reply = Outgoing {
                    id,
                    kind: Kind::Reply,
                    payload: Bytes::new(),
                };
                if outbox.send(reply).await.is_err() {
                    break Ok(());
                }
            }
            Kind::Subscribe => {
                let request: MeshRequest = match statemesh_core::decode::from_bytes(frame.payload) {
                    Ok(r) => r,
                    Err(e) => {
                        break Err(protocol(format!(
                            "a subscription that does not decode: {e}"
                        )));
                    }
                };
                let MeshRequest::Consume {
                    stream,
                    from,
                    filter,
                    consumer,
                } = request
                else {
                    break Err(protocol("gossip sent as a subscription".into()));
                };
                let acks = Arc::new(Acks::default());
                let core = lock(&shared.producers).get(&stream.name).cloned();
                let opened = match core {
                    _ if consumer.id != grant.peer => Err(End::NotAccepted),
                    None => Err(End::NoSuchStream(stream.name)),
                    Some(core) => {
                        let request = Request {
                            stream,
                            from,
                            filter,
                            consumer,
                        };
                        serving::serve_consumer(
                            core,
                            &grant,
                            id,
                            request,
                            outbox.clone(),
                            Arc::clone(&acks),
                        )
                    }
                };
                match opened {
                    Ok(task) => {
                        // Subscriptions that ended on their own (lagged
                        // out, producer gone) leave the table here, so a
                        // long-lived connection does not collect them.
                        serving.retain(|_, s| !s.task.is_finished());
                        serving.insert(id, Serving { acks, task });
                    }
                    Err(end) => {
                        let reply = Outgoing {
                            id,
                            kind: Kind::Reply,
                            payload: postcard::to_allocvec(&end).unwrap_or_default().into(),
                        };
                        if outbox.send(reply).await.is_err() {
                            break Ok(());
                        }
                    }
                }
            }
            Kind::Ack => {
                let Ok(total) = <[u8; 8]>::try_from(frame.payload) else {
                    break Err(protocol(format!(
                        "an ack of {} bytes, not 8",
                        frame.payload.len()
                    )));
                };
                if let Some(s) = serving.get(&id) {
                    s.acks.record(u64::from_le_bytes(total));
                }
            }
            Kind::Cancel => {
                serving.remove(&id);
            }
            other => break Err(protocol(format!("a {other:?} frame from a mesh peer"))),
        }
    };
    drop(serving);
    drop(outbox);
    let _ = writer.await;
    result
}

fn protocol(why: String) -> MeshError {
    MeshError::Connection(ConnectionError::Handshake(why))
}
