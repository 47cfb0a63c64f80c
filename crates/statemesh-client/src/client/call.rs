//! The `Client`: connecting to a cluster's members, and calling them with
//! retries until a deadline.

use super::error::{ClientError, unexpected};
use crate::Member;
use crate::network::connection::{CallError, Connection};
use crate::network::handshake::{Hello, Peer};
use crate::network::{ConnectionError, Limits, Security};
use crate::protocol::millis;
use crate::protocol::{ClientReply, ClientRequest, ClusterStatus, Refusal, Response, call_bytes};
use statemesh_core::session::Sequencer;
use statemesh_core::{ClusterId, NodeId};

/// What one try of a retried operation came to.
pub(crate) enum Attempt<T> {
    /// Finished, well or not: no more tries.
    Done(Result<T, ClientError>),
    /// Worth another try; why this one failed.
    Retry(String),
}
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How long to wait for one member to accept a connection before dialing
/// the next one alongside it (the first to answer wins).
const DIAL_STAGGER: Duration = Duration::from_millis(250);
/// How much longer than the time it gave a node a client waits for the
/// node's answer (which it sends when that time is up) to arrive.
const ANSWER_GRACE: Duration = Duration::from_millis(200);

/// How a client reaches a cluster.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The cluster's name (checked in the handshake).
    pub cluster: String,
    /// TLS settings (a client needs at least the cluster's CA), or
    /// plaintext if the cluster runs so.
    pub security: Security,
    /// How long an operation may take in all, across every member it
    /// tries and every election it waits out (default 5 s). Connecting
    /// has the same deadline.
    pub timeout: Duration,
    /// How long one try of an operation may go unanswered before it is
    /// sent to another member (default 1 s, doubling at each try that
    /// times out): a paused or cut-off node costs this much, not the
    /// whole timeout. Every write carries its session stamp, so sending it
    /// again never applies it twice.
    pub attempt_timeout: Duration,
    /// Frame size and timeouts; `limits.connect_timeout` is how long one
    /// member may take to accept a connection (TCP, TLS and handshake;
    /// default 2 s here). Members are dialed a quarter second apart
    /// without waiting for the one before to fail.
    pub limits: Limits,
}

impl ClientOptions {
    /// Options for cluster `cluster` with default timeouts.
    #[must_use]
    pub fn new(cluster: impl Into<String>, security: Security) -> Self {
        Self {
            cluster: cluster.into(),
            security,
            timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            limits: Limits {
                connect_timeout: Duration::from_secs(2),
                ..Limits::default()
            },
        }
    }
}

/// A connection to a cluster. Cheap to clone; clones share the
/// connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addresses", &self.inner.addresses)
            .field("cluster", &self.inner.options.cluster)
            .finish_non_exhaustive()
    }
}

struct Inner {
    addresses: Vec<String>,
    token: String,
    options: ClientOptions,
    /// The working connection, and where to dial next.
    current: tokio::sync::Mutex<Current>,
    /// Connections to collections' leaders, by address.
    pool: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Connection>>>,
    /// This client's writer session: a command sent again (after a lost
    /// answer, a timeout, a leader change) is applied once.
    sequencer: Sequencer,
    /// The id of the cluster the first member answered for: a member of
    /// another cluster (addresses that mix two clusters) is refused.
    cluster_id: std::sync::Mutex<Option<ClusterId>>,
}

#[derive(Default)]
struct Current {
    /// The connection and the index of its address.
    connection: Option<(usize, Arc<Connection>)>,
    /// The address to dial first next time.
    next: usize,
}

/// Why one round of dialing every member failed.
enum DialFailure {
    /// A member refused us (token, cluster, version) or cannot be dialed
    /// as given: no use trying more.
    Refused(String, ConnectionError),
    /// None answered; the last error, if any dial failed before the
    /// deadline.
    Unanswered(Option<String>),
}

/// How the tries of an operation have gone so far, for its final error.
#[derive(Default)]
struct Tries {
    /// Whether a command may have been applied by one of them.
    maybe_applied: bool,
    /// The last member's "no quorum", if that is what it said.
    no_quorum: Option<(usize, usize)>,
    /// Whether any member answered at all.
    answered: bool,
    last: String,
}

impl Client {
    /// Connects to whichever of `addresses` (members of one cluster)
    /// answers first, presenting `token` (the cluster secret or a JWT).
    /// Members are dialed in order, each a quarter second after the one
    /// before unless that one failed sooner: a member that is down or
    /// paused does not hold the others up.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connection`] if a node refused the token or the TLS
    /// settings; [`ClientError::Unreachable`] if none answered in time.
    pub async fn connect(
        addresses: &[String],
        token: impl Into<String>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let client = Self {
            inner: Arc::new(Inner {
                addresses: addresses.to_vec(),
                token: token.into(),
                options,
                current: tokio::sync::Mutex::default(),
                pool: tokio::sync::Mutex::default(),
                sequencer: Sequencer::new(),
                cluster_id: std::sync::Mutex::new(None),
            }),
        };
        let deadline = Instant::now() + client.inner.options.timeout;
        client.connection(deadline).await?;
        Ok(client)
    }

    /// A working connection: the current one, or a new one to the first
    /// member that answers.
    pub(crate) async fn connection(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Connection>, ClientError> {
        let i = &self.inner;
        let mut current = i.current.lock().await;
        if let Some((_, c)) = &current.connection
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        current.connection = None;
        // A dial cut short by the deadline says nothing new: the error of
        // an earlier round is kept.
        let mut last = String::from(if i.addresses.is_empty() {
            "no address given"
        } else {
            "no member completed a handshake in time"
        });
        let mut pause = Duration::from_millis(20);
        while !i.addresses.is_empty() {
            match self.dial_any(current.next, deadline).await {
                Ok((n, c)) => {
                    current.connection = Some((n, Arc::clone(&c)));
                    current.next = n;
                    return Ok(c);
                }
                Err(DialFailure::Refused(address, error)) => {
                    return Err(ClientError::Connection { address, error });
                }
                Err(DialFailure::Unanswered(why)) => last = why.unwrap_or(last),
            }
            if Instant::now() + pause > deadline {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        Err(ClientError::Unreachable {
            timeout: i.options.timeout,
            last,
        })
    }

    /// Dials every member once, starting at `start`, each
    /// [`DIAL_STAGGER`] after the one before (or at once when it failed);
    /// the first connection made wins and the other dials are dropped.
    async fn dial_any(
        &self,
        start: usize,
        deadline: Instant,
    ) -> Result<(usize, Arc<Connection>), DialFailure> {
        let count = self.inner.addresses.len();
        let mut order = (0..count).map(|k| (start + k) % count);
        let mut dials = JoinSet::new();
        let mut last = None;
        let mut permanent: Option<(usize, ConnectionError)> = None;
        let mut start_next = true;
        loop {
            if start_next && let Some(n) = order.next() {
                let dial = self.dial(&self.inner.addresses[n]);
                dials.spawn(async move { (n, dial.await) });
            }
            if dials.is_empty() {
                return Err(match permanent {
                    Some((n, e)) => DialFailure::Refused(self.inner.addresses[n].clone(), e),
                    None => DialFailure::Unanswered(last),
                });
            }
            let more = order.len() > 0;
            tokio::select! {
                joined = dials.join_next() => {
                    start_next = true;
                    match joined {
                        Some(Ok((n, Ok(c)))) => match self.same_cluster(&c) {
                            Ok(()) => return Ok((n, Arc::new(c))),
                            Err(e) => {
                                permanent.get_or_insert((n, e));
                            }
                        },
                        // Another member may still answer; if none does,
                        // this is the answer, at once.
                        Some(Ok((n, Err(e)))) if e.is_permanent() => {
                            permanent.get_or_insert((n, e));
                        }
                        Some(Ok((n, Err(e)))) => {
                            last = Some(format!("{}: {e}", self.inner.addresses[n]));
                        }
                        Some(Err(_)) | None => {}
                    }
                }
                () = tokio::time::sleep(DIAL_STAGGER), if more => start_next = true,
                () = tokio::time::sleep_until(deadline.into()) => {
                    return Err(DialFailure::Unanswered(last));
                }
            }
        }
    }

    /// Checks that `c` leads to the cluster the client first reached.
    fn same_cluster(&self, c: &Connection) -> Result<(), ConnectionError> {
        let mut known = self
            .inner
            .cluster_id
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match (*known, c.cluster_id) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                Err(ConnectionError::ClusterId { ours, theirs })
            }
            (None, theirs) => {
                *known = theirs;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The id of the cluster the client is connected to (`None` from a
    /// node that has not joined a cluster yet).
    ///
    /// # Errors
    ///
    /// As [`Client::connect`], if no member can be reached now.
    pub async fn cluster_id(&self) -> Result<Option<ClusterId>, ClientError> {
        let deadline = Instant::now() + self.inner.options.timeout;
        Ok(self.connection(deadline).await?.cluster_id)
    }

    /// The address of the member the client is connected to (or will dial
    /// first).
    pub async fn address(&self) -> String {
        let current = self.inner.current.lock().await;
        let n = current
            .connection
            .as_ref()
            .map_or(current.next, |(n, _)| *n);
        self.inner.addresses.get(n).cloned().unwrap_or_default()
    }

    /// Stops using `c` (it did not answer in time): the next try dials the
    /// member after it.
    async fn abandon(&self, c: &Arc<Connection>) {
        let mut current = self.inner.current.lock().await;
        if let Some((n, mine)) = &current.connection
            && Arc::ptr_eq(mine, c)
        {
            current.next = (n + 1) % self.inner.addresses.len().max(1);
            current.connection = None;
        }
        drop(current);
        self.inner
            .pool
            .lock()
            .await
            .retain(|_, pooled| !Arc::ptr_eq(pooled, c));
    }

    /// How long calls keep trying.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.options.timeout
    }

    /// The client's writer session.
    pub(crate) fn sequencer(&self) -> &Sequencer {
        &self.inner.sequencer
    }

    /// Connects to the member at `address` and presents the token.
    pub(super) fn dial(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Connection, ConnectionError>> + Send + 'static {
        let i = &self.inner;
        let hello = Hello {
            cluster: i.options.cluster.clone(),
            peer: Peer::Client {
                token: i.token.clone(),
            },
        };
        let (address, security, limits) = (
            address.to_owned(),
            i.options.security.clone(),
            i.options.limits,
        );
        async move { Connection::open(&address, &security, &hello, limits, |_| {}).await }
    }

    /// A connection to `address` from the pool (made now if needed), or
    /// `None` if it cannot be made at once.
    async fn connection_to(&self, address: &str) -> Option<Arc<Connection>> {
        let i = &self.inner;
        let mut pool = i.pool.lock().await;
        if let Some(c) = pool.get(address)
            && !c.is_closed()
        {
            return Some(Arc::clone(c));
        }
        let c = Arc::new(self.dial(address).await.ok()?);
        pool.insert(address.to_owned(), Arc::clone(&c));
        Some(c)
    }

    /// Sends `request`, retrying on other members while there is time.
    pub async fn call(&self, request: &ClientRequest) -> Result<ClientReply, ClientError> {
        Ok(self.call_at(None, request).await?.0)
    }

    /// Sends `request`, first to the member at `preferred` (a collection's
    /// leader) if given, then to whichever member is current, trying the
    /// next member whenever one refuses for want of a leader or quorum or
    /// does not answer within the try's time, until the deadline. Every
    /// request may be sent again: reads change nothing, and a command's
    /// stamp makes the group apply it once. Returns the reply and whether
    /// it came from `preferred`.
    pub(crate) async fn call_at(
        &self,
        preferred: Option<&str>,
        request: &ClientRequest,
    ) -> Result<(ClientReply, bool), ClientError> {
        let o = &self.inner.options;
        let bytes =
            postcard::to_allocvec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        let command = matches!(request, ClientRequest::Execute { .. });
        // A wait for a version may take as long as it asked, and more.
        let extra = match request {
            ClientRequest::WaitVersion { timeout_ms, .. } => Duration::from_millis(*timeout_ms),
            _ => Duration::ZERO,
        };
        let deadline = Instant::now() + o.timeout + extra;
        let mut preferred = preferred;
        let mut budget = o.attempt_timeout + extra;
        let mut tries = Tries::default();
        let mut pause = Duration::from_millis(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(tries.into_error(o.timeout));
            }
            let pooled = match preferred.take() {
                Some(address) => self.connection_to(address).await,
                None => None,
            };
            let (c, at_preferred) = match pooled {
                Some(c) => (c, true),
                None => match self.connection(deadline).await {
                    Ok(c) => (c, false),
                    // What the members answered before says more than
                    // the failure to reach another.
                    Err(ClientError::Unreachable { .. })
                        if tries.answered || tries.maybe_applied =>
                    {
                        return Err(tries.into_error(o.timeout));
                    }
                    Err(e) => return Err(e),
                },
            };
            let time = budget.min(left);
            let frame = call_bytes(millis(time), &bytes);
            let sent = tokio::time::timeout(time + ANSWER_GRACE, c.call(frame)).await;
            let retry = match sent {
                Ok(Ok(reply)) => match statemesh_core::decode::from_bytes::<Response>(&reply) {
                    Ok(Ok(r)) => return Ok((r, at_preferred)),
                    Ok(Err(refusal)) => {
                        tries.answered = true;
                        let text = format!("node {}: {refusal}", c.node);
                        match refusal {
                            Refusal::NoQuorum { reachable, voters } => {
                                tries.no_quorum = Some((reachable, voters));
                            }
                            Refusal::Timeout { maybe_applied } => {
                                tries.maybe_applied |= maybe_applied;
                            }
                            Refusal::Unavailable(_) | Refusal::Removed => {}
                            Refusal::Indeterminate(why) => {
                                return Err(ClientError::Indeterminate(why));
                            }
                            refusal => return Err(ClientError::Refused(refusal)),
                        }
                        text
                    }
                    Err(e) => return Err(ClientError::Decode(e.to_string())),
                },
                Ok(Err(CallError::NotSent)) => "the connection closed".to_owned(),
                Ok(Err(CallError::Lost)) => {
                    tries.maybe_applied |= command;
                    "the connection closed before the answer came".to_owned()
                }
                Err(_) => {
                    tries.maybe_applied |= command;
                    budget = (budget * 2).min(o.timeout + extra);
                    format!("node {} did not answer within {time:?}", c.node)
                }
            };
            tries.last = retry;
            // Another member may do better.
            self.abandon(&c).await;
            if Instant::now() + pause > deadline {
                return Err(tries.into_error(o.timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Runs `attempt` on a connection to the cluster, and again (on
    /// whatever connection is current then) after a pause that doubles up
    /// to `max_pause`, until it is done or `deadline` passes.
    pub(crate) async fn retrying<T, F>(
        &self,
        deadline: Instant,
        max_pause: Duration,
        mut attempt: impl FnMut(Arc<Connection>) -> F,
    ) -> Result<T, ClientError>
    where
        F: Future<Output = Attempt<T>>,
    {
        let mut pause = Duration::from_millis(20);
        loop {
            let c = self.connection(deadline).await?;
            let last = match attempt(Arc::clone(&c)).await {
                Attempt::Done(result) => return result,
                Attempt::Retry(why) => why,
            };
            self.abandon(&c).await;
            if Instant::now() + pause > deadline {
                return Err(ClientError::Unreachable {
                    timeout: self.inner.options.timeout,
                    last,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(max_pause);
        }
    }

    /// How it reaches the cluster: its name, TLS settings and timeouts.
    #[must_use]
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The answering node's view of the cluster: members, and each group's
    /// leader, term and indices.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        match self.call(&ClientRequest::Status).await? {
            ClientReply::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds node `id` at `member.address` to the cluster (or changes its
    /// address or role). The leaders then add it to every group as a
    /// learner and promote it as the membership policy says.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; needs an administrator's token.
    pub async fn join(&self, id: NodeId, member: Member) -> Result<(), ClientError> {
        self.done(&ClientRequest::Join { id, member }).await
    }

    /// Removes node `id` from the cluster.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; needs an administrator's token.
    pub async fn leave(&self, id: NodeId) -> Result<(), ClientError> {
        self.done(&ClientRequest::Leave { id }).await
    }

    /// Asks the answering node to write a snapshot of `collection` now.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; needs an administrator's token.
    pub async fn snapshot(&self, collection: &str) -> Result<(), ClientError> {
        self.done(&ClientRequest::Snapshot {
            collection: collection.to_owned(),
        })
        .await
    }

    async fn done(&self, request: &ClientRequest) -> Result<(), ClientError> {
        match self.call(request).await? {
            ClientReply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

impl Tries {
    /// The error an operation ends with when its deadline passes.
    fn into_error(self, timeout: Duration) -> ClientError {
        match self.no_quorum {
            Some((reachable, voters)) if !self.maybe_applied => ClientError::NoQuorum {
                reachable,
                voters,
                timeout,
            },
            _ if !self.answered && !self.maybe_applied => ClientError::Unreachable {
                timeout,
                last: self.last,
            },
            _ => ClientError::Timeout {
                timeout,
                maybe_applied: self.maybe_applied,
                last: self.last,
            },
        }
    }
}
