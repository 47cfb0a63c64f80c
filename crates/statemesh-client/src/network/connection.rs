//! One connection from this side: dialed, secured, introduced, then shared
//! by any number of concurrent requests, each matched to its reply by
//! request id.

pub use super::frame::Outgoing;
use super::frame::{self, Kind};
use super::handshake::{self, Hello, MAX_HANDSHAKE, Welcome};
use super::push::{self, Handler, Item, Subscription};
use super::tls::{Security, first_certificate};
use super::{AuthError, ConnectionError, Limits};
use statemesh_core::{ClusterId, NodeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A byte stream, plain or TLS, either side.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// Frames queued per connection before senders wait.
const OUTBOX: usize = 1024;

/// Writes queued frames, flushing only when the queue is empty so frames
/// that were queued together leave in as few packets as possible.
pub fn spawn_writer(
    half: WriteHalf<BoxStream>,
    mut outbox: mpsc::Receiver<Outgoing>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(64 * 1024, half);
        let mut header = Vec::with_capacity(frame::HEADER_LEN);
        while let Some(first) = outbox.recv().await {
            let mut next = Some(first);
            while let Some(f) = next {
                header.clear();
                frame::encode_header(f.id, f.kind, &f.payload, &mut header);
                w.write_all(&header).await?;
                w.write_all(&f.payload).await?;
                metrics::counter!("statemesh_bytes_sent_total")
                    .increment((header.len() + f.payload.len()) as u64);
                let acknowledgement = f.kind == Kind::Ack;
                next = outbox.try_recv().ok();
                if next.is_none() && acknowledgement {
                    // Before flushing a mirror's acknowledgement, let the
                    // tasks already woken run: a thousand mirrors'
                    // acknowledgements then leave in one write. Nobody
                    // waits for them; everything else (pushes, which one
                    // fan-out task queues together, requests and replies)
                    // is flushed at once, since a turn of the scheduler
                    // can mean waiting behind every task a commit woke.
                    tokio::task::yield_now().await;
                    next = outbox.try_recv().ok();
                }
            }
            w.flush().await?;
        }
        w.shutdown().await
    })
}

/// Who accepted a connection.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The node's id (0 for a mesh peer).
    pub node: NodeId,
    /// Its cluster's id, if it has one yet.
    pub cluster_id: Option<ClusterId>,
    /// A mesh peer's pass, for the mesh to check.
    pub mesh_pass: Option<Vec<u8>>,
    /// The certificate (DER) it presented over TLS: what a mesh pass
    /// names.
    pub peer_certificate: Option<Vec<u8>>,
}

/// Opens a TCP connection to `address`, secures it as `security` says and
/// introduces this side with `hello`; returns the split stream and who
/// answered.
pub async fn dial(
    address: &str,
    security: &Security,
    hello: &Hello,
    limits: Limits,
) -> Result<(ReadHalf<BoxStream>, WriteHalf<BoxStream>, Accepted), ConnectionError> {
    let timeout = limits.connect_timeout;
    let attempt = async {
        let resolved = resolve(address).await?;
        let tcp = TcpStream::connect(&resolved[..])
            .await
            .map_err(ConnectionError::Connect)?;
        // Raft messages are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        let (stream, peer_certificate): (BoxStream, _) = match security {
            Security::Tls(tls) => {
                let name = tls
                    .server_name_for(address)
                    .map_err(ConnectionError::Handshake)?;
                let stream = tls.connector().connect(name, tcp).await.map_err(|error| {
                    ConnectionError::Tls {
                        error,
                        ca: tls.ca_source(),
                    }
                })?;
                let certificate = first_certificate(stream.get_ref().1.peer_certificates());
                (Box::new(stream), certificate)
            }
            Security::Plaintext => (Box::new(tcp), None),
        };
        let (mut r, mut w) = tokio::io::split(stream);
        frame::write(&mut w, 0, Kind::Handshake, &handshake::encode(hello))
            .await
            .map_err(|e| ConnectionError::Frame(e.into()))?;
        let reply = frame::read(&mut r, MAX_HANDSHAKE, limits.stall_timeout).await?;
        if reply.kind != Kind::Handshake {
            return Err(ConnectionError::Handshake(format!(
                "expected a handshake, got a {:?} frame",
                reply.kind
            )));
        }
        match handshake::decode::<Welcome>(&reply.payload)? {
            Welcome::Accepted { node, cluster_id } => Ok((
                r,
                w,
                Accepted {
                    node,
                    cluster_id,
                    mesh_pass: None,
                    peer_certificate,
                },
            )),
            Welcome::Mesh { pass } => Ok((
                r,
                w,
                Accepted {
                    node: 0,
                    cluster_id: None,
                    mesh_pass: Some(pass),
                    peer_certificate,
                },
            )),
            Welcome::Refused(why) => Err(ConnectionError::Refused(why)),
            Welcome::Expired { ago_ms } => Err(ConnectionError::Auth(AuthError::Expired(
                Duration::from_millis(ago_ms),
            ))),
            Welcome::NotReady(why) => Err(ConnectionError::NotReady(why)),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ConnectionError::Timeout(timeout))?
}

/// The socket addresses `address` (`HOST:PORT`) names.
async fn resolve(address: &str) -> Result<Vec<std::net::SocketAddr>, ConnectionError> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(ConnectionError::Address(format!(
            "{address:?} has no port: give HOST:PORT"
        )));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(ConnectionError::Address(format!(
            "{address:?} is not HOST:PORT"
        )));
    }
    let found: Vec<_> = tokio::net::lookup_host(address)
        .await
        .map_err(|e| ConnectionError::Address(format!("cannot resolve {host:?}: {e}")))?
        .collect();
    if found.is_empty() {
        return Err(ConnectionError::Address(format!(
            "{host:?} resolves to no address"
        )));
    }
    Ok(found)
}

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The connection was closed before the request was queued: it was
    /// never sent.
    NotSent,
    /// The connection closed while the request was out: it may have been
    /// carried out.
    Lost,
}

/// Requests in flight, and whether the connection still works.
#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Vec<u8>>>,
    /// Open subscriptions, by request id.
    streams: HashMap<u64, Handler>,
    closed: bool,
}

/// A connection that carries requests and brings back replies.
pub struct Connection {
    outbox: mpsc::Sender<Outgoing>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    tasks: [JoinHandle<()>; 2],
    /// The node at the other end.
    pub node: NodeId,
    /// Its cluster's id, if it has one.
    pub cluster_id: Option<ClusterId>,
    /// The accepting mesh peer's pass, if a mesh peer accepted.
    pub mesh_pass: Option<Vec<u8>>,
    /// The certificate (DER) it presented over TLS.
    pub peer_certificate: Option<Vec<u8>>,
}

fn lock(p: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // Nothing panics while holding it.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Connection {
    fn drop(&mut self) {
        metrics::gauge!("statemesh_connections", "direction" => "out").decrement(1.0);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Removes a request's entry if its caller gives up waiting.
struct Waiting<'a> {
    pending: &'a Mutex<Pending>,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.pending).waiting.remove(&self.id);
    }
}

impl Connection {
    /// Dials and introduces this side (see [`dial`]), then starts reading
    /// replies. `on_close` runs once, with the reason, when the connection
    /// stops working.
    pub async fn open(
        address: &str,
        security: &Security,
        hello: &Hello,
        limits: Limits,
        on_close: impl FnOnce(ConnectionError) + Send + 'static,
    ) -> Result<Self, ConnectionError> {
        let (r, w, accepted) = dial(address, security, hello, limits).await?;
        let mut r = frame::FrameReader::new(r);
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let writer = spawn_writer(w, rx);
        let reader = {
            let pending = Arc::clone(&pending);
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let error = loop {
                    match r.next_ref(limits.max_frame, limits.stall_timeout).await {
                        Ok(f) if f.kind == Kind::Reply => {
                            let mut p = lock(&pending);
                            if let Some(w) = p.waiting.remove(&f.id) {
                                let _ = w.send(f.payload.to_vec());
                            } else if let Some(s) = p.streams.remove(&f.id) {
                                push::end(&s, Some(Item::End(f.payload.to_vec())));
                            }
                        }
                        Ok(f) if f.kind == Kind::Push => {
                            // A push for a cancelled subscription may still
                            // be on its way: dropped. The handler runs
                            // outside the table's lock (a whole state can
                            // take a while to decode).
                            let stream = lock(&pending).streams.get(&f.id).cloned();
                            if let Some(stream) = stream
                                && !push::take(&stream, f.id, f.payload, &outbox)
                            {
                                lock(&pending).streams.remove(&f.id);
                            }
                        }
                        Ok(f) => {
                            break ConnectionError::Handshake(format!(
                                "a {:?} frame where only replies and pushes may come",
                                f.kind
                            ));
                        }
                        Err(e) => break ConnectionError::Frame(e),
                    }
                };
                let mut p = lock(&pending);
                p.closed = true;
                // Dropping the senders wakes every caller with `Lost`, and
                // ends every subscription.
                p.waiting.clear();
                for (_, s) in p.streams.drain() {
                    push::end(&s, None);
                }
                drop(p);
                on_close(error);
            })
        };
        // The writer's failure shows up at the reader too (the peer sees a
        // broken stream and closes); abort it with the connection.
        let writer = tokio::spawn(async move {
            let _ = writer.await;
        });
        metrics::gauge!("statemesh_connections", "direction" => "out").increment(1.0);
        Ok(Self {
            outbox,
            pending,
            next_id: AtomicU64::new(1),
            tasks: [reader, writer],
            node: accepted.node,
            cluster_id: accepted.cluster_id,
            mesh_pass: accepted.mesh_pass,
            peer_certificate: accepted.peer_certificate,
        })
    }

    /// Whether the connection has stopped working.
    pub fn is_closed(&self) -> bool {
        lock(&self.pending).closed || self.outbox.is_closed()
    }

    /// Opens a subscription with request `payload`: the server's pushes go
    /// to `handler` as they arrive (or to the returned handle, when the
    /// handler leaves them for later), and so does how it ended.
    pub async fn subscribe(
        &self,
        payload: Vec<u8>,
        handler: Handler,
    ) -> Result<Subscription, CallError> {
        let items = push::items(&handler);
        let id = self.register(|p, id| {
            p.streams.insert(id, Arc::clone(&handler));
        })?;
        let pending = Arc::clone(&self.pending);
        let subscription = Subscription::new(
            id,
            handler,
            items,
            self.outbox.clone(),
            Box::new(move || {
                lock(&pending).streams.remove(&id);
            }),
        );
        self.send(id, Kind::Subscribe, payload).await?;
        Ok(subscription)
    }

    /// Sends `payload` as a request and waits for the reply.
    pub async fn call(&self, payload: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let (tx, rx) = oneshot::channel();
        let id = self.register(|p, id| {
            p.waiting.insert(id, tx);
        })?;
        let _guard = Waiting {
            pending: &self.pending,
            id,
        };
        self.send(id, Kind::Request, payload).await?;
        rx.await.map_err(|_| CallError::Lost)
    }

    /// Takes a request id and, unless the connection is closed, lets
    /// `register` note where its answer goes (before it is sent: the
    /// answer may come back before `send` returns).
    fn register(&self, register: impl FnOnce(&mut Pending, u64)) -> Result<u64, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut p = lock(&self.pending);
        if p.closed {
            return Err(CallError::NotSent);
        }
        register(&mut p, id);
        Ok(id)
    }

    /// Queues one frame for the writer.
    async fn send(&self, id: u64, kind: Kind, payload: Vec<u8>) -> Result<(), CallError> {
        self.outbox
            .send(Outgoing {
                id,
                kind,
                payload: payload.into(),
            })
            .await
            .map_err(|_| CallError::NotSent)
    }
}
