//! What runs a collection's commands, so each write operation is written
//! once for every kind of handle.

use crate::StateMachine;

/// Whatever runs a collection's commands: `statemesh`'s in-process
/// `Writer`, or `statemesh-client`'s `Remote` handle. Each collection's
/// write operations (in its `ops` module) are written over this trait, so
/// the matching of an outcome to its operation exists once.
pub trait Executor<SM: StateMachine>: Sync {
    /// What a failed command is.
    type Error: Send;

    /// Runs `command`; its response and the version it was applied at.
    fn run(
        &self,
        command: SM::Command,
    ) -> impl std::future::Future<Output = Result<(SM::Response, u64), Self::Error>> + Send;

    /// The error for a response of the wrong variant to operation `what`.
    /// A replica of the same build never answers so; one of another build
    /// could.
    fn wrong_shape(what: &str) -> Self::Error;
}

/// An operation's result: its outcome and version, or the executor's error.
pub type Done<T, E> = Result<(T, u64), E>;

/// The message of every wrong-shape error, so that a remote and an
/// in-process handle word it alike.
#[must_use]
pub fn wrong_shape_message(what: &str) -> String {
    format!("the answer to {what} has the wrong shape")
}

/// Runs `command` on `x` and picks the outcome operation `what` expects
/// out of the response; any other variant is [`Executor::wrong_shape`].
///
/// # Errors
///
/// The executor's error, or the wrong-shape one.
pub async fn expect<SM, X, T>(
    x: &X,
    command: SM::Command,
    what: &str,
    pick: impl FnOnce(SM::Response) -> Option<T>,
) -> Done<T, X::Error>
where
    SM: StateMachine,
    X: Executor<SM>,
{
    let (response, version) = x.run(command).await?;
    match pick(response) {
        Some(outcome) => Ok((outcome, version)),
        None => Err(X::wrong_shape(what)),
    }
}
