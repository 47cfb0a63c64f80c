//! [`SnapshotStream`]: openraft's snapshot data, a file made on first use.

use std::fs::File;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

type Make = Box<dyn FnOnce() -> io::Result<File> + Send>;

/// A group's snapshot as openraft reads and writes it: a file, streamed in
/// chunks and never held whole in memory.
///
/// A snapshot for another node may first have to be written out (its
/// cached values copied in as blobs). openraft also asks for the current
/// snapshot when a group starts, only to read its metadata; so that file
/// is made on the first read or seek, on tokio's blocking pool, and a
/// start that never reads it costs nothing.
pub struct SnapshotStream {
    state: State,
    /// A seek asked for before the file existed.
    seek: Option<SeekFrom>,
}

enum State {
    Ready(tokio::fs::File),
    Pending(Option<Make>),
    Making(JoinHandle<io::Result<File>>),
    Failed(io::ErrorKind, String),
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Pending(_) => "pending",
            State::Making(_) => "making",
            State::Failed(..) => "failed",
        };
        f.debug_struct("SnapshotStream")
            .field("state", &state)
            .finish()
    }
}

impl SnapshotStream {
    /// A stream over `file`, read or written from its start.
    pub(crate) fn file(file: File) -> Self {
        Self {
            state: State::Ready(tokio::fs::File::from_std(file)),
            seek: None,
        }
    }

    /// A stream whose file `make` writes when it is first read.
    pub(crate) fn lazy(make: impl FnOnce() -> io::Result<File> + Send + 'static) -> Self {
        Self {
            state: State::Pending(Some(Box::new(make))),
            seek: None,
        }
    }

    /// The file, made if it was not yet.
    pub(crate) async fn into_file(mut self) -> io::Result<File> {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await?;
        match self.state {
            State::Ready(f) => Ok(f.into_std().await),
            _ => Err(io::Error::other("the snapshot stream is not ready")),
        }
    }

    /// Makes the file if needed, and applies a seek asked for before.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.state {
                State::Ready(file) => {
                    if let Some(pos) = self.seek.take() {
                        Pin::new(&mut *file).start_seek(pos)?;
                        ready!(Pin::new(file).poll_complete(cx))?;
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Pending(make) => {
                    let Some(make) = make.take() else {
                        return Poll::Ready(Err(io::Error::other("snapshot stream reused")));
                    };
                    self.state = State::Making(tokio::task::spawn_blocking(make));
                }
                State::Making(task) => {
                    let made = ready!(Pin::new(task).poll(cx));
                    self.state = match made {
                        Ok(Ok(file)) => State::Ready(tokio::fs::File::from_std(file)),
                        Ok(Err(e)) => State::Failed(e.kind(), e.to_string()),
                        Err(e) => State::Failed(io::ErrorKind::Other, e.to_string()),
                    };
                }
                State::Failed(kind, why) => {
                    return Poll::Ready(Err(io::Error::new(
                        *kind,
                        format!("making the snapshot stream: {why}"),
                    )));
                }
            }
        }
    }

    fn file_mut(&mut self) -> io::Result<&mut tokio::fs::File> {
        match &mut self.state {
            State::Ready(f) => Ok(f),
            _ => Err(io::Error::other("the snapshot stream is not ready")),
        }
    }
}

use std::future::Future;

impl AsyncRead for SnapshotStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        Pin::new(this.file_mut()?).poll_read(cx, buf)
    }
}

impl AsyncSeek for SnapshotStream {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(f) if this.seek.is_none() => Pin::new(f).start_seek(position),
            // No context to make the file with here: remember the seek.
            _ => {
                this.seek = Some(position);
                Ok(())
            }
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        Pin::new(this.file_mut()?).poll_complete(cx)
    }
}

impl AsyncWrite for SnapshotStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        Pin::new(this.file_mut()?).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        Pin::new(this.file_mut()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        Pin::new(this.file_mut()?).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    #[tokio::test]
    async fn the_file_is_made_on_first_use_only() {
        let made = Arc::new(AtomicBool::new(false));
        let m = Arc::clone(&made);
        let mut stream = SnapshotStream::lazy(move || {
            m.store(true, Ordering::SeqCst);
            let mut f = tempfile::tempfile()?;
            f.write_all(b"0123456789")?;
            Ok(f)
        });
        tokio::task::yield_now().await;
        assert!(!made.load(Ordering::SeqCst));
        stream.seek(SeekFrom::Start(4)).await.unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert!(made.load(Ordering::SeqCst));
        assert_eq!(rest, "456789");
    }

    #[tokio::test]
    async fn a_failure_to_make_it_is_an_error_on_read() {
        let mut stream = SnapshotStream::lazy(|| Err(io::Error::other("disk full")));
        let err = stream.read_u8().await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(stream.read_u8().await.is_err());
    }
}
