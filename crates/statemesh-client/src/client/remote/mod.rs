//! Handles on collections of a remote cluster: the core, then one module
//! per collection with its typed operations.

mod cell;
mod hooked;
mod map;
mod once;
mod priority_queue;
mod set;
mod vec;

use super::{Client, ClientError, unexpected};
use crate::Consistency;
use crate::protocol::{ClientReply, ClientRequest};
use statemesh_core::Queryable;
use statemesh_core::collections::{
    CellState, MapState, OnceState, PriorityQueueState, SetState, VecState,
};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A handle on one collection (or custom state machine `SM`) of a remote
/// cluster: the operations of the in-process handles, each a round trip.
/// Reads are linearizable unless [`Remote::with_consistency`] says
/// otherwise.
pub struct Remote<SM> {
    client: Client,
    name: String,
    signature: String,
    consistency: Consistency,
    /// Where the collection's leader was last seen: writes go there, saving
    /// the hop through a follower.
    leader: Arc<Mutex<Option<String>>>,
    _sm: PhantomData<fn() -> SM>,
}

impl<SM> Clone for Remote<SM> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            name: self.name.clone(),
            signature: self.signature.clone(),
            consistency: self.consistency,
            leader: Arc::clone(&self.leader),
            _sm: PhantomData,
        }
    }
}

impl<SM> std::fmt::Debug for Remote<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .field("consistency", &self.consistency)
            .finish_non_exhaustive()
    }
}

/// A remote `statemesh::Map`.
pub type RemoteMap<K, V> = Remote<MapState<K, V>>;
/// A remote `statemesh::Cell`.
pub type RemoteCell<T> = Remote<CellState<T>>;
/// A remote `statemesh::Once`.
pub type RemoteOnce<T> = Remote<OnceState<T>>;
/// A remote `statemesh::Set`.
pub type RemoteSet<T> = Remote<SetState<T>>;
/// A remote `statemesh::Vec`.
pub type RemoteVec<T> = Remote<VecState<T>>;
/// A remote `statemesh::PriorityQueue`.
pub type RemotePriorityQueue<P, K, V> = Remote<PriorityQueueState<P, K, V>>;

/// A write's outcome and the version it was applied at.
pub type RemoteWritten<O> = Result<(O, u64), ClientError>;

impl<SM: Queryable> Remote<SM> {
    /// The handle of collection `name` (with `signature`) through `client`.
    #[must_use]
    pub fn new(client: Client, name: String, signature: String) -> Self {
        Self {
            client,
            name,
            signature,
            consistency: Consistency::Linearizable,
            leader: Arc::new(Mutex::new(None)),
            _sm: PhantomData,
        }
    }

    /// The collection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where this handle sends writes: the collection's leader, once a
    /// write through another member named it (`None`: through the member
    /// the client is connected to).
    #[must_use]
    pub fn leader_address(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// This handle, reading with `consistency`: `Local` reads the answering
    /// node's replica without asking the leader (cheaper, possibly stale).
    #[must_use]
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Runs `command` through the leader; its response and version.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]. A command whose answer was lost is sent again
    /// (to another member if need be) and applied once;
    /// [`ClientError::Timeout`] says whether it may have been applied when
    /// the deadline passed first.
    pub async fn execute(&self, command: SM::Command) -> RemoteWritten<SM::Response> {
        let command =
            postcard::to_allocvec(&command).map_err(|e| ClientError::Decode(e.to_string()))?;
        let ticket = self.client.sequencer().ticket();
        let request = ClientRequest::Execute {
            collection: self.name.clone(),
            signature: self.signature.clone(),
            command,
            stamp: ticket.stamp(),
        };
        let at = self
            .leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (reply, from_leader) = self.client.call_at(at.as_deref(), &request).await?;
        drop(ticket);
        let ClientReply::Executed {
            reply,
            version,
            leader,
        } = reply
        else {
            return Err(unexpected(&reply));
        };
        // A hint names the leader; no hint from the usual path means the
        // member answering there leads.
        if leader.is_some() || !from_leader {
            *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = leader;
        }
        match statemesh_core::decode::from_bytes::<Result<SM::Response, String>>(&reply) {
            Ok(Ok(r)) => Ok((r, version)),
            // The leader could not decode the command: another build.
            Ok(Err(e)) => Err(ClientError::Decode(e)),
            Err(e) => Err(ClientError::Decode(e.to_string())),
        }
    }

    /// Answers `query` with this handle's consistency; the answer and the
    /// version it was read at.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn query(&self, query: SM::Query) -> Result<(SM::Answer, u64), ClientError> {
        let query =
            postcard::to_allocvec(&query).map_err(|e| ClientError::Decode(e.to_string()))?;
        let reply = self
            .client
            .call(&ClientRequest::Query {
                collection: self.name.clone(),
                signature: self.signature.clone(),
                linearizable: self.consistency == Consistency::Linearizable,
                query,
            })
            .await?;
        let ClientReply::Answered { answer, version } = reply else {
            return Err(unexpected(&reply));
        };
        statemesh_core::decode::from_bytes(&answer)
            .map(|a| (a, version))
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Waits until the answering node has applied a change past `after`, or
    /// `timeout` passes; returns its version either way.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn wait_version(&self, after: u64, timeout: Duration) -> Result<u64, ClientError> {
        let reply = self
            .client
            .call(&ClientRequest::WaitVersion {
                collection: self.name.clone(),
                after,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })
            .await?;
        match reply {
            ClientReply::Version(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Answers `query` and picks what operation `what` expects out of the
    /// answer; any other variant is the wrong-shape error.
    async fn ask<T>(
        &self,
        query: SM::Query,
        what: &str,
        pick: impl FnOnce(SM::Answer) -> Option<T>,
    ) -> Result<T, ClientError> {
        pick(self.query(query).await?.0).ok_or_else(|| wrong_shape(what))
    }

    /// Every item of a listing fetched a page at a time: `page(seen,
    /// limit)` is the query for the page after the items `seen` so far.
    /// Pages are read separately, so a concurrent write may fall between
    /// them.
    async fn all_pages<T>(
        &self,
        what: &str,
        page: impl Fn(&[T], usize) -> SM::Query,
        pick: impl Fn(SM::Answer) -> Option<Vec<T>>,
    ) -> Result<Vec<T>, ClientError> {
        const PAGE: usize = 1024;
        let mut all = Vec::new();
        loop {
            let next = self.ask(page(&all, PAGE), what, &pick).await?;
            let done = next.len() < PAGE;
            all.extend(next);
            if done {
                return Ok(all);
            }
        }
    }
}

impl<SM: Queryable> statemesh_core::collections::Executor<SM> for Remote<SM> {
    type Error = ClientError;

    fn run(
        &self,
        command: SM::Command,
    ) -> impl std::future::Future<Output = Result<(SM::Response, u64), ClientError>> + Send {
        self.execute(command)
    }

    fn wrong_shape(what: &str) -> ClientError {
        wrong_shape(what)
    }
}

fn wrong_shape(what: &str) -> ClientError {
    ClientError::Decode(statemesh_core::collections::wrong_shape_message(what))
}
