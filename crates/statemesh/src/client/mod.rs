//! A client of a cluster: typed collection handles over the network, for a
//! process that holds no replica.

pub(crate) mod protocol;
mod remote;

pub use protocol::{ClusterStatus, Refusal, Resync};
pub use remote::{
    Remote, RemoteCell, RemoteMap, RemoteOnce, RemotePriorityQueue, RemoteSet, RemoteVec,
    RemoteWritten,
};

use crate::group::Identity;
use crate::network::connection::{CallError, Connection};
use crate::network::handshake::{Hello, Peer};
use crate::network::{ConnectionError, Limits, Security};
use crate::server::Member;
use crate::state_machine::Queryable;
use crate::types::NodeId;
use protocol::{ClientReply, ClientRequest, Response};

/// What one try of a retried operation came to.
pub(crate) enum Attempt<T> {
    /// Finished, well or not: no more tries.
    Done(Result<T, ClientError>),
    /// Worth another try; why this one failed.
    Retry(String),
}
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a client reaches a cluster.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The cluster's name (checked in the handshake).
    pub cluster: String,
    /// TLS settings (a client needs at least the cluster's CA), or
    /// plaintext if the cluster runs so.
    pub security: Security,
    /// How long a call keeps trying other nodes, and waiting out an
    /// election, before it fails (default 10 s).
    pub timeout: Duration,
    /// Frame size and timeouts.
    pub limits: Limits,
}

impl ClientOptions {
    /// Options for cluster `cluster` with default timeouts.
    #[must_use]
    pub fn new(cluster: impl Into<String>, security: Security) -> Self {
        Self {
            cluster: cluster.into(),
            security,
            timeout: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No node of the cluster could be reached in time.
    #[error("no node of the cluster answered within {timeout:?} (last: {last})")]
    Unreachable {
        /// How long it tried.
        timeout: Duration,
        /// The last error seen.
        last: String,
    },
    /// A node refused the connection: a wrong token, cluster or protocol
    /// version, or a TLS failure. Trying again will not help.
    #[error("connection refused: {0}")]
    Connection(ConnectionError),
    /// The node refused the request.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The request was sent but its answer was lost: a command may or may
    /// not have been applied.
    #[error("the outcome is unknown: {0}")]
    Indeterminate(String),
    /// An answer could not be decoded (a node of another build?).
    #[error("could not decode the answer: {0}")]
    Decode(String),
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
    /// The working connection and the index of its address.
    current: tokio::sync::Mutex<Option<(usize, Arc<Connection>)>>,
    /// Connections to collections' leaders, by address.
    pool: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Connection>>>,
}

impl Client {
    /// Connects to whichever of `addresses` (members of one cluster)
    /// answers first, presenting `token` (the cluster secret or a JWT).
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
                current: tokio::sync::Mutex::new(None),
                pool: tokio::sync::Mutex::default(),
            }),
        };
        let deadline = Instant::now() + client.inner.options.timeout;
        client.connection(deadline).await?;
        Ok(client)
    }

    /// A working connection: the current one, or a new one to the next
    /// address that answers.
    pub(crate) async fn connection(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Connection>, ClientError> {
        let i = &self.inner;
        let mut current = i.current.lock().await;
        if let Some((_, c)) = &*current
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let start = current.as_ref().map_or(0, |(n, _)| n + 1);
        *current = None;
        let mut last = String::from("no address given");
        let mut pause = Duration::from_millis(20);
        for attempt in 0.. {
            if i.addresses.is_empty() {
                break;
            }
            let n = (start + attempt) % i.addresses.len();
            let address = &i.addresses[n];
            match self.dial(address).await {
                Ok(c) => {
                    let c = Arc::new(c);
                    *current = Some((n, Arc::clone(&c)));
                    return Ok(c);
                }
                Err(e @ (ConnectionError::Refused(_) | ConnectionError::Version { .. })) => {
                    return Err(ClientError::Connection(e));
                }
                Err(e) => last = format!("{address}: {e}"),
            }
            if Instant::now() + pause > deadline {
                break;
            }
            if (attempt + 1) % i.addresses.len() == 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
        Err(ClientError::Unreachable {
            timeout: i.options.timeout,
            last,
        })
    }

    /// How long calls keep trying.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.options.timeout
    }

    /// Connects to the member at `address` and presents the token.
    async fn dial(&self, address: &str) -> Result<Connection, ConnectionError> {
        let i = &self.inner;
        let hello = Hello {
            cluster: i.options.cluster.clone(),
            peer: Peer::Client {
                token: i.token.clone(),
            },
        };
        Connection::open(
            address,
            &i.options.security,
            &hello,
            i.options.limits,
            |_| {},
        )
        .await
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

    /// Sends `request` to the member at `address` (a collection's leader);
    /// if it cannot take it, through [`Client::call`] instead. Returns the
    /// reply and whether it came from `address`.
    pub(crate) async fn call_at(
        &self,
        address: &str,
        request: &ClientRequest,
    ) -> Result<(ClientReply, bool), ClientError> {
        let bytes =
            postcard::to_allocvec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        if let Some(c) = self.connection_to(address).await {
            match c.call(bytes).await {
                Ok(reply) => match postcard::from_bytes::<Response>(&reply) {
                    Ok(Ok(r)) => return Ok((r, true)),
                    // Not applied (no leader there now): the usual path.
                    Ok(Err(Refusal::Unavailable(_))) => {}
                    Ok(Err(refusal)) => return Err(ClientError::Refused(refusal)),
                    Err(e) => return Err(ClientError::Decode(e.to_string())),
                },
                Err(CallError::NotSent) => {}
                Err(CallError::Lost) => {
                    return Err(ClientError::Indeterminate(
                        "the connection closed before the answer came".into(),
                    ));
                }
            }
        }
        Ok((self.call(request).await?, false))
    }

    /// Sends `request`, retrying on other nodes while that is safe.
    pub(crate) async fn call(&self, request: &ClientRequest) -> Result<ClientReply, ClientError> {
        let bytes =
            postcard::to_allocvec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        // Commands are not retried once sent: they may have been applied.
        let replayable = !matches!(request, ClientRequest::Execute { .. });
        let deadline = Instant::now() + self.inner.options.timeout;
        self.retrying(deadline, Duration::from_millis(200), |c| {
            let bytes = bytes.clone();
            async move {
                match c.call(bytes).await {
                    Ok(reply) => match postcard::from_bytes::<Response>(&reply) {
                        Ok(Ok(r)) => Attempt::Done(Ok(r)),
                        Ok(Err(Refusal::Unavailable(why))) => Attempt::Retry(why),
                        Ok(Err(refusal)) => Attempt::Done(Err(ClientError::Refused(refusal))),
                        Err(e) => Attempt::Done(Err(ClientError::Decode(e.to_string()))),
                    },
                    Err(CallError::NotSent) => Attempt::Retry("the connection closed".to_owned()),
                    Err(CallError::Lost) if replayable => {
                        Attempt::Retry("the connection closed".to_owned())
                    }
                    Err(CallError::Lost) => Attempt::Done(Err(ClientError::Indeterminate(
                        "the connection closed before the answer came".into(),
                    ))),
                }
            }
        })
        .await
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
            let last = match attempt(c).await {
                Attempt::Done(result) => return result,
                Attempt::Retry(why) => why,
            };
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

    /// A handle on collection `name` of state machine `SM`, created empty
    /// if it does not exist and the token may write it.
    ///
    /// # Errors
    ///
    /// [`Refusal::Mismatch`] if it exists with another type,
    /// [`Refusal::NoSuchCollection`] if it does not exist and the token
    /// may not create it, [`Refusal::UnknownKind`] if the nodes cannot
    /// host `SM`.
    pub async fn open<SM: Queryable + Default>(
        &self,
        name: &str,
    ) -> Result<Remote<SM>, ClientError> {
        self.open_with(name, &SM::default()).await
    }

    /// Like [`Client::open`], for a state machine whose signature depends
    /// on parameters (a bounded queue's capacity): `empty` gives it.
    ///
    /// # Errors
    ///
    /// As [`Client::open`].
    pub async fn open_with<SM: Queryable>(
        &self,
        name: &str,
        empty: &SM,
    ) -> Result<Remote<SM>, ClientError> {
        let signature = empty.signature();
        self.done(&ClientRequest::Open {
            collection: name.to_owned(),
            signature: signature.clone(),
            identity: Identity::of(name, empty),
            create: true,
        })
        .await?;
        Ok(Remote::new(self.clone(), name.to_owned(), signature))
    }

    /// A handle on the map `name` (see [`Client::open`]).
    ///
    /// # Errors
    ///
    /// As [`Client::open`].
    pub async fn map<K: crate::collections::Key, V: crate::collections::Value>(
        &self,
        name: &str,
    ) -> Result<RemoteMap<K, V>, ClientError> {
        self.open(name).await
    }

    /// A handle on the cell `name` (see [`Client::open`]).
    ///
    /// # Errors
    ///
    /// As [`Client::open`].
    pub async fn cell<T: crate::collections::Value>(
        &self,
        name: &str,
    ) -> Result<RemoteCell<T>, ClientError> {
        self.open(name).await
    }
}

fn unexpected(reply: &ClientReply) -> ClientError {
    ClientError::Decode(format!("an answer of the wrong kind: {reply:?}"))
}
