//! Serving an admitted connection: requests, subscriptions and their
//! acknowledgements, each bounded so one connection cannot flood a node.

use super::admit::Session;
use crate::network::{
    ConnectionError, Limits,
    connection::{BoxStream, Outgoing, spawn_writer},
    frame::{self, Kind},
    push::{Acks, Pushes},
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::ReadHalf;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

pub(super) async fn serve_requests(
    session: Session,
    r: ReadHalf<BoxStream>,
    w: tokio::io::WriteHalf<BoxStream>,
    limits: Limits,
) -> Result<(), ConnectionError> {
    let mut r = frame::FrameReader::new(r);
    let (outbox, rx) = mpsc::channel::<Outgoing>(1024);
    let writer = spawn_writer(w, rx);
    let _abort_writer = AbortOnDrop(writer);
    // Bounds the requests one connection has in flight, so a flood waits
    // for answers instead of piling up tasks.
    let permits = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let mut handlers = JoinSet::new();
    let expires = match &session {
        Session::Client(grant, _) => grant.expires,
        Session::Node(..) => None,
    };
    let expiry = async move {
        match expires {
            Some(at) => {
                let left = at
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                tokio::time::sleep(left).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    // Open subscriptions: where their acknowledgements go, and how to end
    // them. Each ends by sending its id back here.
    let mut streams: HashMap<u64, (Arc<Acks>, tokio::task::AbortHandle)> = HashMap::new();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<u64>();
    loop {
        while handlers.try_join_next().is_some() {}
        let f = tokio::select! {
            // Cancel-safe: a frame that has partly arrived when another
            // branch wins stays in the reader.
            f = r.next(limits.max_frame, limits.stall_timeout) => f?,
            () = &mut expiry => return Err(ConnectionError::Expired),
            Some(id) = ended.recv() => {
                streams.remove(&id);
                continue;
            }
        };
        match (f.kind, &session) {
            (Kind::Request, _) => {}
            (Kind::Subscribe, Session::Client(grant, h)) => {
                if streams.contains_key(&f.id) || streams.len() >= limits.max_in_flight.max(1) {
                    return Err(ConnectionError::Handshake(format!(
                        "subscription {} is open already, or too many are",
                        f.id
                    )));
                }
                let acks = Arc::new(Acks::default());
                let pushes = Pushes::new(f.id, outbox.clone(), Arc::clone(&acks));
                let reply = h.subscribe(Arc::clone(grant), f.payload, pushes);
                let (outbox, ended_tx) = (outbox.clone(), ended_tx.clone());
                let task = handlers.spawn(async move {
                    send_reply(&outbox, f.id, reply.await).await;
                    let _ = ended_tx.send(f.id);
                });
                streams.insert(f.id, (acks, task));
                continue;
            }
            (Kind::Ack, Session::Client(..)) => {
                let version = <[u8; 8]>::try_from(f.payload.as_slice())
                    .map(u64::from_le_bytes)
                    .map_err(|_| {
                        ConnectionError::Handshake("an acknowledgement that is not a u64".into())
                    })?;
                // One for a subscription that already ended is harmless.
                if let Some((acks, _)) = streams.get(&f.id) {
                    acks.record(version);
                }
                continue;
            }
            (Kind::Cancel, Session::Client(..)) => {
                if let Some((_, task)) = streams.remove(&f.id) {
                    task.abort();
                }
                continue;
            }
            (kind, _) => {
                return Err(ConnectionError::Handshake(format!(
                    "a {kind:?} frame where only requests may come"
                )));
            }
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return Ok(());
        };
        let reply = match &session {
            Session::Node(from, h) => h.handle(*from, f.payload),
            Session::Client(grant, h) => h.handle(Arc::clone(grant), f.payload),
        };
        let outbox = outbox.clone();
        handlers.spawn(async move {
            send_reply(&outbox, f.id, reply.await).await;
            drop(permit);
        });
    }
}

/// Queues the reply to request `id` (a subscription's end, for one). A
/// connection that is gone has no one to tell.
async fn send_reply(outbox: &mpsc::Sender<Outgoing>, id: u64, payload: Vec<u8>) {
    let _ = outbox
        .send(Outgoing {
            id,
            kind: Kind::Reply,
            payload: payload.into(),
        })
        .await;
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
