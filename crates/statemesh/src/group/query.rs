//! Reads: a linearizable read waits for the leader's read index to be
//! applied here; a local one reads at once.

use super::forward::{Forwarded, Pause, remaining};
use super::handle::{Group, Redirect};
use super::lease::Standing;
use super::rpc::{Reply, Request};
use crate::error::QueryError;
use openraft::error::RaftError;
use statemesh_client::Consistency;
use statemesh_client::protocol::millis;
use statemesh_core::StateMachine;
use std::time::{Duration, Instant};

impl<SM: StateMachine> Group<SM> {
    fn query_gave_up(&self, timeout: Duration) -> QueryError {
        let (reachable, voters) = self.inner.lease.reachability();
        if reachable < voters / 2 + 1 {
            QueryError::NoQuorum { reachable, voters }
        } else {
            QueryError::Timeout(timeout)
        }
    }

    /// Runs `read` on this replica's state, after making sure it is as
    /// fresh as `consistency` asks.
    ///
    /// # Errors
    ///
    /// For a linearizable read: [`QueryError::NoQuorum`] if fewer than a
    /// majority of voters could be reached, [`QueryError::Timeout`] if no
    /// leader confirmed its leadership within the timeout.
    pub async fn query<R>(
        &self,
        consistency: Consistency,
        read: impl FnOnce(&SM) -> R,
    ) -> Result<R, QueryError> {
        let deadline = Instant::now() + self.inner.timeout;
        self.query_until(consistency, deadline, Redirect::No, read)
            .await
    }

    /// [`Group::query`] with a deadline; see [`Group::execute_stamped`]
    /// for `redirect`.
    pub(crate) async fn query_until<R>(
        &self,
        consistency: Consistency,
        deadline: Instant,
        redirect: Redirect,
        read: impl FnOnce(&SM) -> R,
    ) -> Result<R, QueryError> {
        if consistency == Consistency::Linearizable {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let index = self.read_index(deadline, redirect).await?;
            let mut version = self.inner.shared.version.subscribe();
            match tokio::time::timeout_at(deadline.into(), version.wait_for(|v| v >= index)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(QueryError::Shutdown),
                Err(_) => return Err(QueryError::Timeout(timeout)),
            }
        }
        Ok(self.read_local(read))
    }

    async fn read_index(&self, deadline: Instant, redirect: Redirect) -> Result<u64, QueryError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let mut pause = Pause::new();
        loop {
            let Some(remaining) = remaining(deadline) else {
                return Err(self.query_gave_up(timeout));
            };
            match self.inner.lease.standing() {
                Standing::Follows(Some(leader)) => {
                    let request = Request::ReadIndex {
                        timeout_ms: millis(remaining),
                    };
                    match self.forward(leader, request, deadline).await {
                        Forwarded::Reply(Reply::ReadIndex(Ok(index))) => return Ok(index),
                        Forwarded::LeaderChanged => {}
                        _ => pause.wait(deadline).await,
                    }
                }
                Standing::Lost { reachable, voters } if redirect == Redirect::Yes => {
                    return Err(QueryError::NoQuorum { reachable, voters });
                }
                Standing::Lost { .. } | Standing::Follows(None) => pause.wait(deadline).await,
                Standing::Leads => {
                    let confirmed = tokio::select! {
                        r = tokio::time::timeout(remaining, self.inner.raft.get_read_log_id()) => r,
                        // Cut off while confirming: answered as lost above.
                        () = self.inner.lease.lapsed() => continue,
                    };
                    match confirmed {
                        Ok(Ok((read, _))) => return Ok(read.map_or(0, |l| l.index)),
                        Ok(Err(RaftError::Fatal(_))) => return Err(QueryError::Shutdown),
                        // Not the leader after all, or no quorum confirmed
                        // it: try again.
                        Ok(Err(RaftError::APIError(_))) => pause.wait(deadline).await,
                        Err(_) => {}
                    }
                }
            }
        }
    }
}
