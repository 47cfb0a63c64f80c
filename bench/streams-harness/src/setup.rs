//! One system set up for one topology: its publishers, and its
//! consumers' tallies and receiving tasks.

use crate::tally;
use futures_util::SinkExt;
use serde_bytes::ByteBuf;
use std::any::Any;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Items a Redis producer pipelines before it waits for the replies:
/// PUBLISH is a request with a reply, and one at a time would measure the
/// round trip rather than the server.
const REDIS_PIPELINE: usize = 64;

/// Sends items into one system, on its own connection.
pub enum Publisher {
    /// A statemesh producer, which waits only while it is offline.
    Mesh(statemesh_mesh::Producer<ByteBuf>),
    /// `Client::publish`, which waits when the client's outgoing queue is
    /// full.
    Nats(async_nats::Client),
    /// PUBLISH commands, pipelined [`REDIS_PIPELINE`] at a time.
    Redis {
        connection: redis::aio::MultiplexedConnection,
        pipe: redis::Pipeline,
        pending: usize,
    },
}

pub const SUBJECT: &str = "bench";

impl Publisher {
    pub fn redis(connection: redis::aio::MultiplexedConnection) -> Self {
        Self::Redis {
            connection,
            pipe: redis::pipe(),
            pending: 0,
        }
    }

    pub async fn send(&mut self, item: &ByteBuf) -> Result<(), String> {
        match self {
            Self::Mesh(producer) => {
                // `Producer::send(&item)` holds `&Producer` across its
                // await, and `Producer` is not `Sync`, so that future
                // cannot be spawned; the `Sink` (the same publish, the
                // same wait while offline) takes the item by value.
                producer
                    .feed(item.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                // What `send`'s wait for the online state does when
                // online: spend a unit of the task's budget, so a
                // producer that is never made to wait still lets its
                // worker run other tasks.
                tokio::task::consume_budget().await;
                Ok(())
            }
            Self::Nats(client) => client
                .publish(SUBJECT, bytes::Bytes::copy_from_slice(item))
                .await
                .map_err(|e| e.to_string()),
            Self::Redis { pending, pipe, .. } => {
                pipe.cmd("PUBLISH")
                    .arg(SUBJECT)
                    .arg(item.as_slice())
                    .ignore();
                *pending += 1;
                if *pending >= REDIS_PIPELINE {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    /// Sends what is queued on this side.
    pub async fn flush(&mut self) -> Result<(), String> {
        match self {
            Self::Mesh(_) => Ok(()),
            Self::Nats(client) => client.flush().await.map_err(|e| e.to_string()),
            Self::Redis {
                connection,
                pipe,
                pending,
            } => {
                if *pending == 0 {
                    return Ok(());
                }
                let result = pipe.query_async::<()>(connection).await;
                pipe.clear();
                *pending = 0;
                result.map_err(|e| e.to_string())
            }
        }
    }
}

/// Consumers in this process: their tallies, their receiving tasks
/// (stopped when dropped), and what must live as long as they do.
#[derive(Default)]
pub struct Consumers {
    pub tallies: Vec<tally::Shared>,
    pub tasks: Vec<JoinHandle<()>>,
    pub keep: Vec<Box<dyn Any + Send>>,
}

impl Drop for Consumers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Consumers in a process of their own (`streams-harness consume ...`),
/// driven over its standard input and output, a command and an answer
/// per line.
pub struct Group {
    child: Child,
    commands: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
}

impl Group {
    pub async fn start(args: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("consume")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let commands = child.stdin.take().ok_or("no stdin")?;
        let answers = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut group = Self {
            child,
            commands,
            answers,
        };
        let ready = group.answer().await?;
        if ready != "ready" {
            return Err(format!("consumers: {ready}"));
        }
        Ok(group)
    }

    async fn answer(&mut self) -> Result<String, String> {
        self.answers
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "a consumer process ended".to_owned())
    }

    /// Sends `command` and returns the answer.
    pub async fn ask(&mut self, command: &str) -> Result<String, String> {
        self.commands
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        self.commands.flush().await.map_err(|e| e.to_string())?;
        self.answer().await
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A system ready to measure: publishers here, consumers in processes
/// of their own.
pub struct Setup {
    pub publishers: Vec<Publisher>,
    pub groups: Vec<Group>,
    /// Consumers over all groups.
    pub consumers: usize,
    /// Whatever else must live as long as the setup (the producers'
    /// meshes).
    #[allow(dead_code)] // held, never read
    pub keep: Vec<Box<dyn Any + Send>>,
}
