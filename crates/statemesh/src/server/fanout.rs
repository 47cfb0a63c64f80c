//! Pushes each new version of a collection to every mirror that is up to
//! date, from one task.
//!
//! With a task per mirror, a commit woke a thousand tasks, and each looked
//! the version up in the history and encoded the same push. Here one task
//! per collection (running while any mirror follows it) wakes once per
//! commit, encodes the push once and queues it, shared, on every
//! up-to-date mirror's connection. A mirror that cannot take it now (its
//! window of unacknowledged pushes or its connection's queue is full), or
//! that needs more than a few versions' changes, goes back to its own task,
//! which catches it up and hands it back here.

use super::cursor::{self, Cursor, MERGE_OVER};
use crate::group::{Item, Since, When};
use crate::network::push::TryPush;
use bytes::Bytes;
use statemesh_client::Refusal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// What mirrors follow: a hosted collection's history, state and fan-out.
pub(crate) trait Followed: Send + Sync {
    /// What a mirror at `from` is missing.
    fn since(&self, from: u64) -> Since;
    /// The newest version the mirrors' history knows of.
    fn history_version(&self) -> u64;
    /// Pushes new versions to the mirrors that are up to date.
    fn fanout(&self) -> &Fanout;
    /// Several versions' changes as one run.
    fn merge(&self, items: &[Item]) -> Result<Vec<u8>, Refusal>;
    /// The whole state, encoded, and its version.
    fn full_state(&self) -> Result<(u64, Vec<u8>), Refusal>;
    fn when(&self) -> When;
}

/// A collection's up-to-date mirrors, and whether a task pushes to them.
#[derive(Default)]
pub(crate) struct Fanout {
    inner: Mutex<Following>,
    /// Subscriptions being served, up to date or catching up.
    connected: AtomicU64,
}

/// Counts one subscription as connected while it lives.
pub(super) struct Connected<'a>(&'a AtomicU64);

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Following {
    subscribers: Vec<Subscriber>,
    /// A task is pushing to `subscribers`.
    running: bool,
    /// Passes since cancelled subscriptions were last looked for.
    passes: u32,
}

/// Passes between looks for cancelled subscriptions (on a connection that
/// stays open, one is otherwise noticed only when it subscribes again):
/// looking touches every subscription's own allocation, a cache miss each,
/// and a cancelled one costs only a few pushes the client drops.
const PRUNE_EVERY: u32 = 16;

struct Subscriber {
    cursor: Cursor,
    /// Gives the cursor back to the subscription's own task.
    back: oneshot::Sender<Cursor>,
}

/// What [`Fanout::follow`] did with a cursor.
pub(super) enum Follow {
    /// The fan-out pushes to it; the cursor comes back when the mirror
    /// falls behind, and the sender is dropped if its connection is gone.
    Following(oneshot::Receiver<Cursor>),
    /// The collection moved on before the cursor could be taken: it must
    /// catch up first.
    Behind(Cursor),
}

/// What a mirror at some version gets from one pass.
#[derive(Clone)]
enum Next {
    /// Nothing: it is up to date.
    Stay,
    /// This push, which takes it to the version.
    Push(u64, Bytes),
    /// Its own task must serve it (a merged run, the whole state, or an
    /// error to report).
    Back,
}

impl Fanout {
    /// Counts a subscription as connected until the guard is dropped.
    pub(super) fn connect(&self) -> Connected<'_> {
        self.connected.fetch_add(1, Ordering::Relaxed);
        Connected(&self.connected)
    }

    /// How many mirrors follow the collection from this node.
    pub(super) fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Following> {
        // Nothing panics while holding it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the cursor of an up-to-date mirror to `h`'s fan-out.
    pub(super) fn follow(h: &Arc<dyn Followed>, cursor: Cursor) -> Follow {
        let mut f = h.fanout().lock();
        // Checked under the lock the task pushes under: a version the
        // history holds now is not pushed by the task to this cursor, and
        // every later one is.
        if !matches!(h.since(cursor.at), Since::Current) {
            return Follow::Behind(cursor);
        }
        // Subscriptions cancelled while no version came are dropped here,
        // so that they cannot pile up.
        f.subscribers.retain(|s| !s.back.is_closed());
        let (back, receiver) = oneshot::channel();
        f.subscribers.push(Subscriber { cursor, back });
        if !f.running {
            f.running = true;
            let next = wake_at(&**h, &f.subscribers);
            tokio::spawn(run(Arc::clone(h), next));
        }
        Follow::Following(receiver)
    }
}

/// Pushes each version from `next` on to `h`'s followers, until none is
/// left or the collection is gone.
async fn run(h: Arc<dyn Followed>, mut next: u64) {
    let mut when = h.when();
    loop {
        let open = when.reached(next).await;
        let mut f = h.fanout().lock();
        if !open {
            // Dropping the subscribers ends their subscriptions.
            f.subscribers.clear();
        } else {
            f.passes += 1;
            if f.passes >= PRUNE_EVERY {
                f.passes = 0;
                f.subscribers.retain(|s| !s.back.is_closed());
            }
            push_all(&*h, &mut f.subscribers);
        }
        if f.subscribers.is_empty() {
            f.running = false;
            return;
        }
        next = wake_at(&*h, &f.subscribers);
    }
}

/// The version the task next waits for: the one after the history's or
/// any subscriber's, whichever is older. A mirror may be past the history
/// (it followed a node that is ahead of this one); one that subscribes
/// later is at the history's version or past it, so waking after the
/// history's version misses none.
fn wake_at(h: &dyn Followed, subscribers: &[Subscriber]) -> u64 {
    let least = subscribers.iter().map(|s| s.cursor.at).min();
    least.unwrap_or(u64::MAX).min(h.history_version()) + 1
}

/// One pass: every subscriber gets what it misses, if it can take it now,
/// or goes back to its own task.
fn push_all(h: &dyn Followed, subscribers: &mut Vec<Subscriber>) {
    // What a mirror at a version gets; nearly always one version, shared.
    let mut made: Vec<(u64, Next)> = Vec::new();
    let mut sent = 0;
    let mut kept = Vec::with_capacity(subscribers.len());
    for mut s in subscribers.drain(..) {
        let at = s.cursor.at;
        let next = match made.iter().find(|(v, _)| *v == at) {
            Some((_, next)) => next.clone(),
            None => {
                let next = next_for(h, at);
                made.push((at, next.clone()));
                next
            }
        };
        match next {
            Next::Stay => kept.push(s),
            Next::Back => {
                let _ = s.back.send(s.cursor);
            }
            Next::Push(to, push) => {
                if !s.cursor.window_open() {
                    let _ = s.back.send(s.cursor);
                    continue;
                }
                match s.cursor.pushes.try_push(push) {
                    TryPush::Sent => {
                        s.cursor.pushed(to);
                        sent += 1;
                        kept.push(s);
                    }
                    TryPush::Full => {
                        let _ = s.back.send(s.cursor);
                    }
                    // Dropped: its task sees the subscription end.
                    TryPush::Closed => {}
                }
            }
        }
    }
    *subscribers = kept;
    metrics::counter!("statemesh_mirror_pushes_total").increment(sent);
}

fn next_for(h: &dyn Followed, at: u64) -> Next {
    match h.since(at) {
        Since::Current => Next::Stay,
        Since::Changes { to, items } if items.len() <= MERGE_OVER => {
            match cursor::changes(at, to, &items, |i| h.merge(i)) {
                Ok(push) => Next::Push(to, push),
                Err(_) => Next::Back,
            }
        }
        Since::Changes { .. } | Since::Gone => Next::Back,
    }
}
