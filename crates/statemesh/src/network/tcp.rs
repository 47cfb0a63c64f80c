//! Nodes on TCP, secured by TLS: the [`Network`] real clusters use.

use super::Security;
use super::auth::{AuthError, Authenticator, Grant};
use super::connection::{BoxStream, CallError, Connection, Outgoing, spawn_writer};
use super::frame::{self, Kind};
use super::handshake::{self, Hello, MAX_HANDSHAKE, Peer, Welcome};
use super::push::{Acks, Pushes};
use super::reachability::Reachability;
use super::{BoxFuture, ConnectionError, Handler, Limits, Network, NetworkError};
use crate::types::{ClusterId, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::ReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

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

/// What a [`TcpNetwork`] needs to know.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// The cluster's name: a node or client that names another cluster in
    /// its handshake is refused.
    pub cluster: String,
    /// TLS (the default) or plaintext.
    pub security: Security,
    /// The cluster secret this node presents to peers and checks, and the
    /// key of client JWTs.
    pub auth: Authenticator,
    /// Frame size, timeouts and concurrency caps.
    pub limits: Limits,
}

impl TcpOptions {
    /// Options for cluster `cluster` with default [`Limits`].
    #[must_use]
    pub fn new(cluster: impl Into<String>, security: Security, auth: Authenticator) -> Self {
        Self {
            cluster: cluster.into(),
            security,
            auth,
            limits: Limits::default(),
        }
    }
}

/// A node's place on the network: it listens for peers and clients, and
/// keeps one connection to each peer it calls, shared by all its groups'
/// requests, reconnecting with backoff when one breaks.
///
/// Peers are found by the addresses given to [`TcpNetwork::set_address`].
pub struct TcpNetwork {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for TcpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpNetwork")
            .field("local_addr", &self.local_addr)
            .field("cluster", &self.shared.options.cluster)
            .finish_non_exhaustive()
    }
}

impl Drop for TcpNetwork {
    fn drop(&mut self) {
        // Aborting the accept loop drops its set of sessions, which aborts
        // them all.
        self.accept.abort();
    }
}

struct Shared {
    options: TcpOptions,
    /// The cluster's id, once known: peers of another are refused.
    cluster_id: Mutex<Option<ClusterId>>,
    local: Mutex<Option<(NodeId, Arc<dyn Handler>)>>,
    clients: Mutex<Option<Arc<dyn ClientHandler>>>,
    addresses: Mutex<HashMap<NodeId, String>>,
    links: Mutex<HashMap<NodeId, Arc<Link>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The way to one peer.
struct Link {
    peer: NodeId,
    /// The working connection, read without waiting on `state` (every Raft
    /// message looks here first).
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so concurrent callers wait for one attempt.
    state: tokio::sync::Mutex<LinkState>,
    /// Whether it answers, for the log.
    reachability: Reachability,
}

#[derive(Default)]
struct LinkState {
    connection: Option<Arc<Connection>>,
    /// After a failed attempt, calls fail at once until this moment.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Why the last attempt failed.
    last_error: String,
}

/// First and longest wait between attempts to reach a peer that is down.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl TcpNetwork {
    /// Listens on `address` (`host:port`; port 0 picks a free one).
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn bind(address: &str, options: TcpOptions) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind(address).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            cluster_id: Mutex::new(None),
            local: Mutex::new(None),
            clients: Mutex::new(None),
            addresses: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Arc::new(Self {
            shared,
            accept,
            local_addr,
        }))
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reaches `node` at `address` (`host:port`) from now on; a connection
    /// to an older address is closed.
    pub fn set_address(&self, node: NodeId, address: impl Into<String>) {
        let address = address.into();
        let old = lock(&self.shared.addresses).insert(node, address.clone());
        if old.as_ref() != Some(&address) {
            lock(&self.shared.links).remove(&node);
        }
    }

    /// Belongs to cluster `id` from now on: a node of another cluster is
    /// refused in the handshake, either way round, and clients learn it.
    /// Until it is set (a node that has not joined yet), any is accepted.
    pub fn set_cluster_id(&self, id: ClusterId) {
        *lock(&self.shared.cluster_id) = Some(id);
    }

    /// The cluster's id, if set.
    #[must_use]
    pub fn cluster_id(&self) -> Option<ClusterId> {
        *lock(&self.shared.cluster_id)
    }

    /// The address `node` is reached at, if known.
    #[must_use]
    pub fn address(&self, node: NodeId) -> Option<String> {
        lock(&self.shared.addresses).get(&node).cloned()
    }

    /// Stops listening and closes every connection, accepted or made.
    /// Calls fail as unreachable from then on.
    pub fn close(&self) {
        self.accept.abort();
        *lock(&self.shared.local) = None;
        *lock(&self.shared.clients) = None;
        lock(&self.shared.addresses).clear();
        lock(&self.shared.links).clear();
    }

    /// Hands client requests to `handler` from now on. Until then clients
    /// are refused at the handshake.
    pub fn serve_clients(&self, handler: Arc<dyn ClientHandler>) {
        *lock(&self.shared.clients) = Some(handler);
    }
}

impl Network for TcpNetwork {
    fn serve(&self, node: NodeId, handler: Arc<dyn Handler>) {
        *lock(&self.shared.local) = Some((node, handler));
    }

    fn stop(&self, node: NodeId) {
        let mut local = lock(&self.shared.local);
        if local.as_ref().is_some_and(|(id, _)| *id == node) {
            *local = None;
        }
    }

    fn call(
        &self,
        from: NodeId,
        to: NodeId,
        request: Vec<u8>,
    ) -> BoxFuture<Result<Vec<u8>, NetworkError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let local = lock(&shared.local).clone();
            if let Some((id, handler)) = local
                && id == to
            {
                return Ok(handler.handle(from, request).await);
            }
            let link = Arc::clone(lock(&shared.links).entry(to).or_insert_with(|| {
                Arc::new(Link {
                    peer: to,
                    current: Mutex::new(None),
                    state: tokio::sync::Mutex::default(),
                    reachability: Reachability::new(to),
                })
            }));
            // A call the caller stops waiting for counts as unanswered.
            let mut outcome = Outcome {
                link: &link,
                shared: &shared,
                settled: false,
            };
            let connection = match link.connect(&shared, from).await {
                Ok(c) => c,
                Err(why) => {
                    outcome.failed(&why);
                    return Err(NetworkError::Unreachable(to));
                }
            };
            match connection.call(request).await {
                Ok(reply) => {
                    outcome.answered();
                    Ok(reply)
                }
                Err(CallError::NotSent) => {
                    outcome.failed(&"the connection closed");
                    Err(NetworkError::Unreachable(to))
                }
                Err(CallError::Lost) => {
                    outcome.failed(&"the connection closed before the answer came");
                    Err(NetworkError::ReplyLost(to))
                }
            }
        })
    }
}

impl Link {
    /// The working connection to the peer, made now if there is none and
    /// the backoff allows; or why there is none.
    async fn connect(&self, shared: &Shared, from: NodeId) -> Result<Arc<Connection>, String> {
        if let Some(c) = &*lock(&self.current)
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let mut s = self.state.lock().await;
        if let Some(c) = &s.connection
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        s.connection = None;
        if s.retry_at.is_some_and(|t| Instant::now() < t) {
            return Err(s.last_error.clone());
        }
        let Some(address) = lock(&shared.addresses).get(&self.peer).cloned() else {
            return Err("its address is not known yet".into());
        };
        let o = &shared.options;
        let ours = *lock(&shared.cluster_id);
        let hello = Hello {
            cluster: o.cluster.clone(),
            peer: Peer::Node {
                id: from,
                secret: o.auth.secret().as_bytes().to_vec(),
                cluster_id: ours,
            },
        };
        let peer = self.peer;
        let on_close = move |e: ConnectionError| {
            tracing::debug!(peer, error = %e, "connection to peer closed");
        };
        match Connection::open(&address, &o.security, &hello, o.limits, on_close).await {
            Ok(c)
                if let (Some(ours), Some(theirs)) = (ours, c.cluster_id)
                    && ours != theirs =>
            {
                Err(s.fail(ConnectionError::ClusterId { ours, theirs }.to_string()))
            }
            Ok(c) if c.node == peer => {
                s.backoff = Duration::ZERO;
                s.retry_at = None;
                let c = Arc::new(c);
                s.connection = Some(Arc::clone(&c));
                *lock(&self.current) = Some(Arc::clone(&c));
                Ok(c)
            }
            Ok(c) => Err(s.fail(format!("node {} answered there instead", c.node))),
            Err(e) => {
                tracing::debug!(peer, %address, error = %e, "cannot reach peer");
                Err(s.fail(e.to_string()))
            }
        }
    }
}

impl LinkState {
    /// Notes a failed attempt and waits longer before the next; returns
    /// `why`.
    fn fail(&mut self, why: String) -> String {
        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.last_error.clone_from(&why);
        why
    }
}

/// Notes how a call to a peer ended; one dropped unsettled (its caller
/// stopped waiting) did not answer in time.
struct Outcome<'a> {
    link: &'a Link,
    shared: &'a Shared,
    settled: bool,
}

impl Outcome<'_> {
    fn answered(&mut self) {
        self.settled = true;
        self.link.reachability.answered();
    }

    fn failed(&mut self, why: &dyn std::fmt::Display) {
        self.settled = true;
        let address = lock(&self.shared.addresses).get(&self.link.peer).cloned();
        self.link.reachability.failed(address.as_deref(), why);
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.failed(&"no answer in time");
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
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
    if !matches!(e, ConnectionError::Frame(super::FrameError::Closed)) {
        metrics::counter!("statemesh_connections_refused_total").increment(1);
    }
    match e {
        ConnectionError::Frame(super::FrameError::Closed) => {
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

/// Who is at the other end of an accepted connection.
enum Session {
    Node(NodeId, Arc<dyn Handler>),
    Client(Arc<Grant>, Arc<dyn ClientHandler>),
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
            0 => return Err(ConnectionError::Frame(super::FrameError::Closed)),
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

/// Decides whether the introduced side may stay; returns what it is and
/// this node's id.
fn admit(shared: &Shared, payload: &[u8]) -> Result<(Session, NodeId), ConnectionError> {
    let hello: Hello = handshake::decode(payload)?;
    let o = &shared.options;
    if hello.cluster != o.cluster {
        return Err(ConnectionError::Cluster {
            ours: o.cluster.clone(),
            theirs: hello.cluster,
        });
    }
    let local = lock(&shared.local).clone();
    let Some((node, handler)) = local else {
        return Err(ConnectionError::NotReady("this node is starting".into()));
    };
    match hello.peer {
        Peer::Node {
            id,
            secret,
            cluster_id,
        } => {
            if !o.auth.secret().matches(&secret) {
                return Err(ConnectionError::Auth(super::AuthError::Invalid));
            }
            if let (Some(ours), Some(theirs)) = (*lock(&shared.cluster_id), cluster_id)
                && ours != theirs
            {
                return Err(ConnectionError::ClusterId { ours, theirs });
            }
            Ok((Session::Node(id, handler), node))
        }
        Peer::Client { token } => {
            let grant = o.auth.check(&token).map_err(ConnectionError::Auth)?;
            let clients = lock(&shared.clients).clone().ok_or_else(|| {
                ConnectionError::NotReady("this node does not serve clients yet".into())
            })?;
            Ok((Session::Client(Arc::new(grant), clients), node))
        }
    }
}

async fn serve_requests(
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
