//! The accepting side of a connection up to the other side's hello:
//! telling TLS from plaintext, the TLS handshake, and the first frame.
//! A node's listener and a mesh peer's both start this way, then admit
//! the hello by their own rules and [`answer`].

use super::connection::BoxStream;
use super::frame::{self, Kind};
use super::handshake::{self, MAX_HANDSHAKE, Welcome};
use super::tls::first_certificate;
use super::{ConnectionError, FrameError, Limits, Security};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Accepts connections on `listener` for ever, each served by
/// `session(tcp, remote)` on a task of its own. A failed accept (out of
/// file descriptors, say) is logged as `what` and waited out rather than
/// spun on.
pub async fn accept_loop<F, S>(listener: TcpListener, what: &str, mut session: F)
where
    F: FnMut(TcpStream, SocketAddr) -> S,
    S: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    loop {
        while sessions.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((tcp, remote)) => {
                sessions.spawn(session(tcp, remote));
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// An accepted connection whose other side has said hello.
pub struct Incoming {
    /// The stream's reading half, at the frame after the hello.
    pub reader: ReadHalf<BoxStream>,
    /// Its writing half, where the answer goes.
    pub writer: WriteHalf<BoxStream>,
    /// The hello's payload, for the listener to admit.
    pub hello: Vec<u8>,
    /// The certificate (DER) the other side presented over TLS, if any.
    pub peer_certificate: Option<Vec<u8>>,
}

/// Secures `tcp` as `security` says and reads the hello, all within the
/// connect timeout. `me` names this side in a refusal ("node", "mesh
/// peer"): a client of the other kind (TLS to a plaintext side, or the
/// reverse) is told what to change, in a form it can read.
pub async fn accept(
    tcp: TcpStream,
    security: &Security,
    limits: Limits,
    me: &str,
) -> Result<Incoming, ConnectionError> {
    let _ = tcp.set_nodelay(true);
    let tls_hello = starts_tls(&tcp, limits.connect_timeout).await?;
    let tls = matches!(security, Security::Tls(_));
    if tls_hello != tls {
        let why = if tls {
            format!("this {me} speaks TLS: connect with TLS (drop --plaintext)")
        } else {
            format!("this {me} speaks plaintext: connect without TLS (--plaintext)")
        };
        let mut tcp = tcp;
        let refusal = handshake::encode(&Welcome::Refused(why.clone()));
        let _ = frame::write(&mut tcp, 0, Kind::Handshake, &refusal).await;
        return Err(ConnectionError::Refused(format!(
            "a {} client: {why}",
            if tls_hello { "TLS" } else { "plaintext" }
        )));
    }
    let (stream, peer_certificate): (BoxStream, _) = match security {
        Security::Tls(tls) => {
            let acceptor = tls
                .acceptor()
                .ok_or_else(|| ConnectionError::Handshake("no server certificate".into()))?;
            let accept = acceptor.accept(tcp);
            let stream = tokio::time::timeout(limits.connect_timeout, accept)
                .await
                .map_err(|_| ConnectionError::Timeout(limits.connect_timeout))?
                .map_err(|error| ConnectionError::Tls {
                    error,
                    ca: tls.ca_source(),
                })?;
            let certificate = first_certificate(stream.get_ref().1.peer_certificates());
            (Box::new(stream), certificate)
        }
        Security::Plaintext => (Box::new(tcp), None),
    };
    let (mut reader, writer) = tokio::io::split(stream);
    let first = tokio::time::timeout(
        limits.connect_timeout,
        frame::read(&mut reader, MAX_HANDSHAKE, limits.stall_timeout),
    )
    .await
    .map_err(|_| ConnectionError::Timeout(limits.connect_timeout))??;
    if first.kind != Kind::Handshake {
        return Err(ConnectionError::Handshake(format!(
            "expected a handshake, got a {:?} frame",
            first.kind
        )));
    }
    Ok(Incoming {
        reader,
        writer,
        hello: first.payload,
        peer_certificate,
    })
}

/// Sends the answer to a hello (under this side's version, refusals
/// included, so a peer of another version learns what this side speaks).
pub async fn answer(
    writer: &mut WriteHalf<BoxStream>,
    welcome: &Welcome,
) -> Result<(), ConnectionError> {
    frame::write(writer, 0, Kind::Handshake, &handshake::encode(welcome))
        .await
        .map_err(|e| ConnectionError::Frame(e.into()))
}

/// Whether the first bytes from a new connection begin a TLS handshake
/// rather than statemesh's own plaintext one. A TLS client opens with a
/// handshake record: type 22, then a protocol version 3.x with x > 0. A
/// statemesh frame opens with its length (u32, little endian), whose third
/// byte is 0 for any handshake (they are capped far below 64 KiB).
async fn starts_tls(tcp: &TcpStream, within: Duration) -> Result<bool, ConnectionError> {
    let deadline = tokio::time::Instant::now() + within;
    let mut first = [0u8; 3];
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut first))
            .await
            .map_err(|_| ConnectionError::Timeout(within))?
            .map_err(|e| ConnectionError::Frame(e.into()))?;
        match n {
            0 => return Err(ConnectionError::Frame(FrameError::Closed)),
            3.. => return Ok(first[0] == 0x16 && first[1] == 0x03 && first[2] != 0),
            // The rest is on its way (peek returns at once while anything
            // is buffered, so wait a little rather than spin).
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectionError::Timeout(within));
        }
    }
}
