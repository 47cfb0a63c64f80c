//! Frames: how messages are cut out of a byte stream.
//!
//! ```text
//! 0        4        8                16     17
//! | len    | crc    | request id     | kind | payload (len bytes) ... |
//!   u32 LE   u32 LE   u64 LE           u8
//! ```
//!
//! `crc` is CRC32C over everything after it (request id, kind, payload), so
//! a flipped bit anywhere but the length is caught, and a damaged length is
//! caught by the cap or by the checksum of the bytes it wrongly delimits.
//! The length is checked against the cap before a byte of the payload is
//! read or allocated. See `PROTOCOL.md` for the whole protocol.

use bytes::Bytes;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A frame waiting for the writer.
pub struct Outgoing {
    pub id: u64,
    pub kind: Kind,
    /// Shared: the same push goes to many subscriptions.
    pub payload: Bytes,
}

/// Bytes before the payload.
pub const HEADER_LEN: usize = 17;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The first frame either side sends: magic, version, identity.
    Handshake = 1,
    /// A request; the answer carries the same request id.
    Request = 2,
    /// The answer to a request; for a subscription, its end.
    Reply = 3,
    /// A request that opens a stream of pushes (a mirror's subscription).
    Subscribe = 4,
    /// One item of a subscription's stream, under its request id.
    Push = 5,
    /// The subscriber has applied up to a version (u64, little endian).
    Ack = 6,
    /// The subscriber ends its subscription.
    Cancel = 7,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Handshake),
            2 => Some(Self::Request),
            3 => Some(Self::Reply),
            4 => Some(Self::Subscribe),
            5 => Some(Self::Push),
            6 => Some(Self::Ack),
            7 => Some(Self::Cancel),
            _ => None,
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub id: u64,
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection between frames.
    #[error("closed by the peer")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("closed by the peer in the middle of a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes of the frame received.
        got: usize,
        /// Bytes the frame should have had.
        expected: usize,
    },
    /// The frame announced a payload past the cap.
    #[error("a frame of {len} bytes is over the {max}-byte cap")]
    TooLarge {
        /// The announced payload length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// The checksum does not match the bytes.
    #[error("checksum mismatch (damaged or not a statemesh frame)")]
    Checksum,
    /// The kind byte names no known kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The peer started a frame and did not finish it in time.
    #[error("the peer stalled in the middle of a frame for {0:?}")]
    Stalled(Duration),
}

/// Appends the frame's header (for `payload`) to `out`.
pub fn encode_header(id: u64, kind: Kind, payload: &[u8], out: &mut Vec<u8>) {
    // Payloads are capped far below 4 GiB by every reader; a writer that
    // tried more would be refused by the reader's cap, not silently cut.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut body = [0u8; 9];
    body[..8].copy_from_slice(&id.to_le_bytes());
    body[8] = kind as u8;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&body), payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body);
}

/// Appends the whole frame to `out`.
pub fn encode(id: u64, kind: Kind, payload: &[u8], out: &mut Vec<u8>) {
    encode_header(id, kind, payload, out);
    out.extend_from_slice(payload);
}

/// Writes one frame and flushes it.
pub async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    id: u64,
    kind: Kind,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
    encode(id, kind, payload, &mut buf);
    metrics::counter!("statemesh_bytes_sent_total").increment(buf.len() as u64);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame whose payload is at most `max` bytes. Waiting for a
/// frame to start has no limit; once it has started, the rest must arrive
/// within `stall`.
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    stall: Duration,
) -> Result<Frame, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match r.read(&mut header[..1]).await {
        Ok(0) => return Err(FrameError::Closed),
        Ok(_) => {}
        // TLS peers that close without close_notify, between frames: a
        // close like any other (nothing was cut short).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Err(e) => return Err(e.into()),
    }
    match tokio::time::timeout(stall, read_rest(r, header, max)).await {
        Ok(result) => result,
        Err(_) => Err(FrameError::Stalled(stall)),
    }
}

async fn read_rest<R: AsyncRead + Unpin>(
    r: &mut R,
    mut header: [u8; HEADER_LEN],
    max: usize,
) -> Result<Frame, FrameError> {
    let got = read_full(r, &mut header[1..]).await? + 1;
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            got,
            expected: HEADER_LEN,
        });
    }
    let len = payload_len(&header, max)?;
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload).await?;
    if got < len {
        return Err(FrameError::Truncated {
            got: HEADER_LEN + got,
            expected: HEADER_LEN + len,
        });
    }
    finish(&header, payload)
}

/// The payload length a header announces, if within the cap.
fn payload_len(header: &[u8], max: usize) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[..4]);
    let len = usize::try_from(u32::from_le_bytes(len)).unwrap_or(usize::MAX);
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    Ok(len)
}

/// Checks a whole frame's checksum and kind.
fn finish(header: &[u8], payload: Vec<u8>) -> Result<Frame, FrameError> {
    let (id, kind) = check(header, &payload)?;
    Ok(Frame { id, kind, payload })
}

/// Checks a frame's checksum; returns its request id and kind.
fn check(header: &[u8], payload: &[u8]) -> Result<(u64, Kind), FrameError> {
    let mut fixed = [0u8; HEADER_LEN];
    fixed.copy_from_slice(&header[..HEADER_LEN]);
    let [_, _, _, _, c0, c1, c2, c3, body @ ..] = fixed;
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if crc32c::crc32c_append(crc32c::crc32c(&body), payload) != crc {
        return Err(FrameError::Checksum);
    }
    metrics::counter!("statemesh_bytes_received_total")
        .increment((HEADER_LEN + payload.len()) as u64);
    let [i0, i1, i2, i3, i4, i5, i6, i7, kind] = body;
    let kind = Kind::from_byte(kind).ok_or(FrameError::UnknownKind(kind))?;
    Ok((u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]), kind))
}

/// A frame still in a [`FrameReader`]'s buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub id: u64,
    pub kind: Kind,
    pub payload: &'a [u8],
}

/// How much a [`FrameReader`] asks the socket for at once.
const CHUNK: usize = 64 * 1024;

/// Cuts the frames of a session out of its stream. It reads in large
/// chunks, so a burst of small frames (a hundred pushes to one client)
/// costs one system call instead of three per frame, and it keeps a frame
/// that has partly arrived in itself, so [`FrameReader::next`] may be one
/// branch of a `select!` that another branch wins.
pub struct FrameReader<R> {
    r: R,
    /// Bytes read and not yet cut: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// When the first byte of the frame at the front arrived.
    started: Option<tokio::time::Instant>,
    /// When the last read returned. It only ever reads for an incomplete
    /// frame at the front, so whatever follows a frame it cuts came with
    /// that read: its time is the next frame's start without reading the
    /// clock for every frame cut.
    read_at: tokio::time::Instant,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames from `r` (which must be at a frame boundary).
    pub fn new(r: R) -> Self {
        Self {
            r,
            buf: Vec::new(),
            start: 0,
            started: None,
            read_at: tokio::time::Instant::now(),
        }
    }

    /// The next frame; its payload at most `max` bytes. Waiting for a frame
    /// to start has no limit; once it has started, the rest must arrive
    /// within `stall`. Cancel-safe.
    pub async fn next(&mut self, max: usize, stall: Duration) -> Result<Frame, FrameError> {
        let frame = self.next_ref(max, stall).await?;
        Ok(Frame {
            id: frame.id,
            kind: frame.kind,
            payload: frame.payload.to_vec(),
        })
    }

    /// As [`FrameReader::next`], without copying the payload out of the
    /// buffer: a client cuts a hundred pushes from one read, and a copy of
    /// each is an allocation, a copy and a free more per push.
    pub async fn next_ref(
        &mut self,
        max: usize,
        stall: Duration,
    ) -> Result<FrameRef<'_>, FrameError> {
        let len = self.fill(max, stall).await?;
        let at = self.start;
        self.start += HEADER_LEN + len;
        self.started = (self.start < self.buf.len()).then_some(self.read_at);
        let frame = &self.buf[at..at + HEADER_LEN + len];
        let (header, payload) = frame.split_at(HEADER_LEN);
        let (id, kind) = check(header, payload)?;
        Ok(FrameRef { id, kind, payload })
    }

    /// Reads until a whole frame is at `buf[start..]`; returns its payload
    /// length.
    async fn fill(&mut self, max: usize, stall: Duration) -> Result<usize, FrameError> {
        loop {
            let have = &self.buf[self.start..];
            let expected = if have.len() >= HEADER_LEN {
                let len = payload_len(have, max)?;
                if have.len() >= HEADER_LEN + len {
                    return Ok(len);
                }
                HEADER_LEN + len
            } else {
                HEADER_LEN
            };
            let partial = have.len();
            // Room for the rest of this frame and more, after moving what
            // is left to the front (a large frame's room is given back
            // once it is cut).
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            if self.buf.is_empty() && self.buf.capacity() > 16 * CHUNK {
                self.buf = Vec::new();
            }
            self.buf.reserve((expected - partial).max(CHUNK));
            let read = match self.started {
                Some(at) => tokio::time::timeout_at(at + stall, self.r.read_buf(&mut self.buf))
                    .await
                    .map_err(|_| FrameError::Stalled(stall))?,
                None => self.r.read_buf(&mut self.buf).await,
            };
            match read {
                // Between frames, an end is a close like any other (TLS
                // peers may close without close_notify).
                Ok(0) if partial == 0 => return Err(FrameError::Closed),
                Err(e) if partial == 0 && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(FrameError::Closed);
                }
                Ok(0) => {
                    return Err(FrameError::Truncated {
                        got: partial,
                        expected,
                    });
                }
                Ok(_) => {
                    self.read_at = tokio::time::Instant::now();
                    self.started.get_or_insert(self.read_at);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Fills `buf` unless the stream ends first; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(5);

    /// Reads the first frame of `bytes` both ways (exactly, and cut from
    /// chunks), which must agree.
    async fn read_bytes(bytes: &[u8], max: usize) -> Result<Frame, FrameError> {
        let mut r = bytes;
        let exact = read(&mut r, max, STALL).await;
        let chunked = FrameReader::new(bytes).next(max, STALL).await;
        assert_eq!(format!("{exact:?}"), format!("{chunked:?}"));
        exact
    }

    fn frame(id: u64, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(id, kind, payload, &mut out);
        out
    }

    #[tokio::test]
    async fn round_trip() {
        let bytes = frame(7, Kind::Request, b"hello");
        let f = read_bytes(&bytes, 1024).await.unwrap();
        assert_eq!(
            f,
            Frame {
                id: 7,
                kind: Kind::Request,
                payload: b"hello".to_vec()
            }
        );
        let empty = frame(u64::MAX, Kind::Reply, b"");
        assert_eq!(read_bytes(&empty, 0).await.unwrap().payload, b"");
    }

    #[tokio::test]
    async fn every_flipped_bit_is_caught() {
        let bytes = frame(3, Kind::Reply, b"payload");
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let r = read_bytes(&b, 1024).await;
            assert!(r.is_err(), "bit {i} flipped went unnoticed: {r:?}");
        }
    }

    #[tokio::test]
    async fn oversized_is_refused_before_reading_the_payload() {
        let mut bytes = frame(1, Kind::Request, &[0; 100]);
        bytes.truncate(HEADER_LEN); // the payload never comes
        assert!(matches!(
            read_bytes(&bytes, 99).await,
            Err(FrameError::TooLarge { len: 100, max: 99 })
        ));
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_bytes(&huge, 1 << 20).await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_and_closed() {
        assert!(matches!(read_bytes(&[], 10).await, Err(FrameError::Closed)));
        let bytes = frame(1, Kind::Request, b"0123456789");
        for cut in 1..bytes.len() {
            assert!(
                matches!(
                    read_bytes(&bytes[..cut], 1024).await,
                    Err(FrameError::Truncated { got, .. }) if got == cut
                ),
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_kind() {
        let mut bytes = frame(1, Kind::Request, b"x");
        bytes[16] = 9;
        let body_crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[8..17]), b"x");
        bytes[4..8].copy_from_slice(&body_crc.to_le_bytes());
        assert!(matches!(
            read_bytes(&bytes, 10).await,
            Err(FrameError::UnknownKind(9))
        ));
    }

    #[tokio::test]
    async fn a_reader_cuts_many_frames_from_one_chunk_and_survives_cancellation() {
        let mut bytes = Vec::new();
        for i in 0..100u64 {
            encode(i, Kind::Push, &i.to_le_bytes(), &mut bytes);
        }
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut reader = FrameReader::new(server);
        // Half a frame, then a cancelled wait: nothing may be lost.
        client.write_all(&bytes[..HEADER_LEN + 3]).await.unwrap();
        let cancelled =
            tokio::time::timeout(Duration::from_millis(20), reader.next(1024, STALL)).await;
        assert!(cancelled.is_err());
        client.write_all(&bytes[HEADER_LEN + 3..]).await.unwrap();
        for i in 0..100u64 {
            let f = reader.next(1024, STALL).await.unwrap();
            assert_eq!((f.id, f.payload), (i, i.to_le_bytes().to_vec()));
        }
        drop(client);
        assert!(matches!(
            reader.next(1024, STALL).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_stalled_frame_times_out_in_a_reader_too() {
        let (mut client, server) = tokio::io::duplex(64);
        let bytes = frame(1, Kind::Request, b"0123456789");
        client.write_all(&bytes[..5]).await.unwrap();
        let r = FrameReader::new(server)
            .next(1024, Duration::from_millis(200))
            .await;
        assert!(matches!(r, Err(FrameError::Stalled(_))), "{r:?}");
        drop(client);
    }

    #[tokio::test]
    async fn a_stalled_frame_times_out() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let bytes = frame(1, Kind::Request, b"0123456789");
        client.write_all(&bytes[..5]).await.unwrap();
        let r = read(&mut server, 1024, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(FrameError::Stalled(_))), "{r:?}");
        drop(client);
    }
}
