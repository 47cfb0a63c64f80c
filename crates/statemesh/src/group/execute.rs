//! Writes: a command goes to the leader (here, or forwarded) under the
//! handle's session stamp, and is retried until the deadline without
//! being applied twice.

use super::forward::{Forwarded, Pause, remaining};
use super::handle::{Group, Redirect};
use super::lease::Standing;
use super::rpc::{Refused, Reply, Request, Stamped};
use crate::error::ExecuteError;
use statemesh_client::protocol::millis;
use statemesh_core::StateMachine;
use std::time::{Duration, Instant};

impl<SM: StateMachine> Group<SM> {
    /// Replicates `command`, waits until it is committed and applied on the
    /// leader, and returns the state machine's response with the version
    /// (log index) it was applied at. On a follower the command is
    /// forwarded to the leader. The leader proposes commands that arrive
    /// together as one entry, applied in order: they share its version.
    ///
    /// # Errors
    ///
    /// [`ExecuteError::NoQuorum`] if fewer than a majority of voters
    /// answered this node until the timeout (10 s); otherwise
    /// [`ExecuteError::Timeout`], which says whether a leader had taken
    /// it. Within the timeout, a command whose answer was lost, or whose
    /// leader lost office, is sent again (to the new leader), and applied
    /// once: it carries this handle's session stamp.
    pub async fn execute(&self, command: SM::Command) -> Result<(SM::Response, u64), ExecuteError> {
        let bytes =
            postcard::to_allocvec(&command).map_err(|e| ExecuteError::Encode(e.to_string()))?;
        let (reply, index) = self.execute_encoded(bytes).await?;
        decode_reply::<SM>(&reply).map(|v| (v, index))
    }

    /// [`Group::execute`] of an encoded command; returns the encoded
    /// `Result<SM::Response, String>` (the error: the command could not be
    /// decoded on the leader) without decoding it.
    pub(crate) async fn execute_encoded(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(Vec<u8>, u64), ExecuteError> {
        let ticket = self.inner.sequencer.ticket();
        let command = Stamped {
            stamp: ticket.stamp(),
            command: bytes,
        };
        let deadline = Instant::now() + self.inner.timeout;
        self.execute_stamped(command, deadline, Redirect::No).await
    }

    /// Runs a stamped command through the leader before `deadline`. With
    /// [`Redirect::Yes`] (a client that can try another member) a node
    /// whose leadership lapsed says so at once instead of waiting.
    pub(crate) async fn execute_stamped(
        &self,
        command: Stamped,
        deadline: Instant,
        redirect: Redirect,
    ) -> Result<(Vec<u8>, u64), ExecuteError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        // Whether a leader may have taken it: then it may yet be applied
        // (once: every retry carries the same stamp).
        let mut maybe_applied = false;
        let mut pause = Pause::new();
        loop {
            let Some(remaining) = remaining(deadline) else {
                return Err(self.execute_gave_up(timeout, maybe_applied));
            };
            match self.inner.lease.standing() {
                Standing::Follows(Some(leader)) => {
                    let request = Request::Execute {
                        command: command.clone(),
                        timeout_ms: millis(remaining),
                    };
                    match self.forward(leader, request, deadline).await {
                        Forwarded::Reply(Reply::Executed(Ok(done))) => return Ok(done),
                        Forwarded::Reply(Reply::Executed(Err(refused))) => {
                            match self.after_refusal(refused, &mut maybe_applied) {
                                Some(e) => return Err(e),
                                None => pause.wait(deadline).await,
                            }
                        }
                        // The leader changed under it: straight to the new one.
                        Forwarded::LeaderChanged => maybe_applied = true,
                        Forwarded::Lost => {
                            maybe_applied = true;
                            pause.wait(deadline).await;
                        }
                        Forwarded::Reply(_) | Forwarded::NotSent => pause.wait(deadline).await,
                    }
                }
                // Taken here before the lease lapsed: it may yet commit, so
                // the caller must not hear "nothing was written".
                Standing::Lost { .. } if redirect == Redirect::Yes && maybe_applied => {
                    return Err(ExecuteError::Timeout {
                        after: timeout.saturating_sub(remaining),
                        maybe_applied,
                    });
                }
                Standing::Lost { reachable, voters } if redirect == Redirect::Yes => {
                    return Err(ExecuteError::NoQuorum { reachable, voters });
                }
                Standing::Lost { .. } => pause.wait(deadline).await,
                // Leading, or no leader known: proposed here (openraft then
                // names the leader, or says there is none yet).
                Standing::Leads | Standing::Follows(None) => {
                    let proposal = self.inner.proposer.propose(command.clone());
                    // A leader cut off while the command waits to commit
                    // stops waiting when its lease lapses, not at the
                    // deadline: the command goes elsewhere under its stamp.
                    let waited = tokio::select! {
                        r = tokio::time::timeout(remaining, proposal) => r,
                        () = self.inner.lease.lapsed() => {
                            maybe_applied = true;
                            continue;
                        }
                    };
                    match waited {
                        Ok(Ok(done)) => return Ok(done),
                        Ok(Err(refused)) => match self.after_refusal(refused, &mut maybe_applied) {
                            Some(e) => return Err(e),
                            None => pause.wait(deadline).await,
                        },
                        Err(_) => maybe_applied = true,
                    }
                }
            }
        }
    }

    /// What a refusal means for a command: a final error, or `None` to try
    /// again (noting whether it may have been applied meanwhile).
    fn after_refusal(&self, refused: Refused, maybe_applied: &mut bool) -> Option<ExecuteError> {
        match refused {
            Refused::NotLeader(_) | Refused::NoQuorum { .. } => None,
            Refused::Timeout { maybe_applied: m } => {
                *maybe_applied |= m;
                None
            }
            // Taken, then lost: safe to send again under the same stamp.
            Refused::Failed(_) | Refused::Shutdown => {
                *maybe_applied = true;
                None
            }
            Refused::Expired => Some(ExecuteError::Indeterminate(
                "the writer's session expired before the command's outcome was known".into(),
            )),
        }
    }

    pub(super) fn execute_gave_up(&self, timeout: Duration, maybe_applied: bool) -> ExecuteError {
        let (reachable, voters) = self.inner.lease.reachability();
        if !maybe_applied && reachable < voters / 2 + 1 {
            ExecuteError::NoQuorum { reachable, voters }
        } else {
            ExecuteError::Timeout {
                after: timeout,
                maybe_applied,
            }
        }
    }
}

fn decode_reply<SM: StateMachine>(bytes: &[u8]) -> Result<SM::Response, ExecuteError> {
    match statemesh_core::decode::from_bytes::<Result<SM::Response, String>>(bytes) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ExecuteError::Decode(e)),
        Err(e) => Err(ExecuteError::Decode(e.to_string())),
    }
}
