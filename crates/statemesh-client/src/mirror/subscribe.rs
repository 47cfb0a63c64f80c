//! Opening a subscription, and telling a lasting refusal from one worth
//! asking again: shared by the first subscription (in `open_with`) and the
//! follower's reconnections.

use crate::client::{Attempt, Client, ClientError, Refusal};
use crate::network::push::{Handler, Subscription};
use crate::protocol::Response;
use std::time::Duration;

/// What a subscription needs to be made again.
pub(super) struct Target {
    pub(super) client: Client,
    pub(super) request: Box<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
}

/// Opens a subscription from `version` whose pushes go to a handler made
/// by `handler`, trying the client's nodes until `deadline`.
pub(super) async fn subscribe(
    target: &Target,
    version: u64,
    handler: &(dyn Fn() -> Handler + Sync),
    deadline: std::time::Instant,
) -> Result<Subscription, ClientError> {
    target
        .client
        .retrying(deadline, Duration::from_millis(500), |c| {
            let request = (target.request)(version);
            let handler = handler();
            async move {
                match c.subscribe(request, handler).await {
                    Ok(s) => Attempt::Done(Ok(s)),
                    Err(e) => Attempt::Retry(format!("{e:?}")),
                }
            }
        })
        .await
}

/// The refusal or error a subscription's closing reply carries.
pub(super) fn ended(reply: &[u8]) -> ClientError {
    match statemesh_core::decode::from_bytes::<Response>(reply) {
        Ok(Err(refusal)) => ClientError::Refused(refusal),
        Ok(Ok(_)) => ClientError::Refused(Refusal::Unavailable(
            "the node ended the subscription".into(),
        )),
        Err(e) => ClientError::Decode(e.to_string()),
    }
}

/// Whether a refusal will stand however often the mirror asks again.
pub(super) fn lasting(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Refused(
            Refusal::Identity { .. }
                | Refusal::Forbidden { .. }
                | Refusal::Mismatch { .. }
                | Refusal::NoSuchCollection(_)
                | Refusal::Dropped(_)
                | Refusal::UnknownKind(_)
        ) | ClientError::Connection { .. }
    )
}
