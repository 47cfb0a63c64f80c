//! A priority queue's write operations, once for every
//! [`Executor`](crate::collections::Executor).

use super::command::{PriorityQueueCommand, PriorityQueueOutcome};
use super::state::{Entry, PriorityQueueState};
use crate::collections::{Done, Executor, Key, Value};
use std::ops::RangeBounds;

/// What an insert returns: the replaced entry's priority and value,
/// and the entries evicted.
pub type Evicting<P, K, V> = (Option<(P, V)>, Vec<Entry<P, K, V>>);

/// Inserts an entry (replacing the one with its key); the replaced
/// priority and value, and the entries evicted past the capacity.
pub async fn insert<P: Key, K: Key, V: Value, X>(
    x: &X,
    priority: P,
    key: K,
    value: V,
) -> Done<Evicting<P, K, V>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    let entry = Entry {
        priority,
        key,
        value,
    };
    match x.run(PriorityQueueCommand::Insert(entry)).await? {
        (PriorityQueueOutcome::Inserted { previous, evicted }, v) => Ok(((previous, evicted), v)),
        _ => Err(X::wrong_shape("insert")),
    }
}

/// Moves `key` to `priority`; its previous priority.
pub async fn update_priority<P: Key, K: Key, V: Value, X>(
    x: &X,
    key: K,
    priority: P,
) -> Done<Option<P>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    match x
        .run(PriorityQueueCommand::UpdatePriority(key, priority))
        .await?
    {
        (PriorityQueueOutcome::Priority(p), v) => Ok((p, v)),
        _ => Err(X::wrong_shape("update_priority")),
    }
}

/// Replaces the value at `key`; the previous one.
pub async fn update_value<P: Key, K: Key, V: Value, X>(
    x: &X,
    key: K,
    value: V,
) -> Done<Option<V>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    match x.run(PriorityQueueCommand::UpdateValue(key, value)).await? {
        (PriorityQueueOutcome::Value(p), v) => Ok((p, v)),
        _ => Err(X::wrong_shape("update_value")),
    }
}

/// Replaces the value at `key` if it is `expected`: `Ok(previous)`
/// or `Err(current)`.
pub async fn compare_exchange_value<P: Key, K: Key, V: Value, X>(
    x: &X,
    key: K,
    expected: V,
    new: V,
) -> Done<Result<V, Option<V>>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    match x
        .run(PriorityQueueCommand::CompareExchangeValue { key, expected, new })
        .await?
    {
        (PriorityQueueOutcome::Exchanged(r), v) => Ok((r, v)),
        _ => Err(X::wrong_shape("compare_exchange_value")),
    }
}

/// Removes the entry with `key`; it.
pub async fn remove<P: Key, K: Key, V: Value, X>(
    x: &X,
    key: K,
) -> Done<Option<Entry<P, K, V>>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    let (removed, v) = removed::<P, K, V, X>(x.run(PriorityQueueCommand::Remove(key)).await?)?;
    Ok((removed.into_iter().next(), v))
}

/// Removes the entries whose priority is in `range`; them.
pub async fn remove_range<P: Key, K: Key, V: Value, X>(
    x: &X,
    range: impl RangeBounds<P>,
) -> Done<Vec<Entry<P, K, V>>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    let command =
        PriorityQueueCommand::RemoveRange(range.start_bound().cloned(), range.end_bound().cloned());
    removed::<P, K, V, X>(x.run(command).await?)
}

/// Removes every entry; them.
pub async fn clear<P: Key, K: Key, V: Value, X>(x: &X) -> Done<Vec<Entry<P, K, V>>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    removed::<P, K, V, X>(x.run(PriorityQueueCommand::Clear).await?)
}

fn removed<P: Key, K: Key, V: Value, X>(
    r: (PriorityQueueOutcome<P, K, V>, u64),
) -> Done<Vec<Entry<P, K, V>>, X::Error>
where
    X: Executor<PriorityQueueState<P, K, V>>,
{
    match r {
        (PriorityQueueOutcome::Removed(e), v) => Ok((e, v)),
        _ => Err(X::wrong_shape("a removal")),
    }
}
