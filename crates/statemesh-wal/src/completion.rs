//! A one-shot result that a thread waits for or a task awaits.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};

use std::task::{Context, Poll, Waker};

type Callback<T> = Box<dyn FnOnce(T) + Send>;

struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
    callbacks: Vec<Callback<T>>,
    /// A thread is blocked in `wait`: only then is a wake-up system call
    /// worth making.
    blocked: bool,
}

/// Set once by the log's threads; read once by the caller.
pub(crate) struct Completion<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T: Clone> Completion<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::unset())
    }

    fn unset() -> Self {
        Self {
            state: Mutex::new(State {
                value: None,
                waker: None,
                callbacks: Vec::new(),
                blocked: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the value (the first one wins) and wakes the waiter.
    pub(crate) fn complete(&self, value: T) {
        let (waker, callbacks, blocked) = {
            let mut state = self.lock();
            if state.value.is_some() {
                return;
            }
            state.value = Some(value.clone());
            (
                state.waker.take(),
                std::mem::take(&mut state.callbacks),
                state.blocked,
            )
        };
        if blocked {
            self.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        for f in callbacks {
            f(value.clone());
        }
    }

    /// Runs `f` with the value once it is set: on the completing thread, or
    /// at once if it already is.
    pub(crate) fn on_complete(&self, f: Callback<T>) {
        let value = {
            let mut state = self.lock();
            match &state.value {
                Some(v) => v.clone(),
                None => {
                    state.callbacks.push(f);
                    return;
                }
            }
        };
        f(value);
    }

    /// Blocks until the value is set.
    pub(crate) fn wait(&self) -> T {
        let mut state = self.lock();
        loop {
            if let Some(v) = &state.value {
                return v.clone();
            }
            state.blocked = true;
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.lock();
        match &state.value {
            Some(v) => Poll::Ready(v.clone()),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.lock().value.is_some()
    }
}

/// The two moments of an append, written (readable) and durable, in one
/// allocation: an append is the hot path, and its completions are
/// allocated by the appender's thread and freed by the log's.
pub(crate) struct Stages<T> {
    pub(crate) written: Completion<T>,
    pub(crate) durable: Completion<T>,
}

impl<T: Clone> Stages<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            written: Completion::unset(),
            durable: Completion::unset(),
        })
    }
}

/// A future over a completion.
pub(crate) struct Wait<T>(pub(crate) Arc<Completion<T>>);

impl<T: Clone> Wait<T> {
    pub(crate) fn wait(&self) -> T {
        self.0.wait()
    }
}

impl<T: Clone> Future for Wait<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.poll(cx)
    }
}
