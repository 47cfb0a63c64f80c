//! The node's operations endpoint: `/metrics` (Prometheus text format),
//! `/health` (the process answers) and `/ready` (the node knows the
//! cluster's leader and has its state: it can serve).
//!
//! Three fixed GET routes need no web framework: this reads one request
//! head, answers, and closes.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use statemesh::Server;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Installs the Prometheus recorder (before the server starts, so nothing
/// it records is lost).
pub(crate) fn recorder() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new().install_recorder()?)
}

/// Serves the endpoint on `listener` until the process ends.
pub(crate) async fn serve(listener: TcpListener, metrics: PrometheusHandle, server: Arc<Server>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (metrics, server) = (metrics.clone(), Arc::clone(&server));
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &metrics, &server))
                .await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    metrics: &PrometheusHandle,
    server: &Server,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let path = line
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    let (status, body) = match path {
        "/metrics" => ("200 OK", metrics.render()),
        "/health" => ("200 OK", "ok\n".to_owned()),
        "/ready" => {
            let s = server.status().await;
            let ready = s.groups.first().is_some_and(|(_, g)| {
                g.leader.is_some() && (g.voters.contains(&s.node) || g.learners.contains(&s.node))
            });
            if ready {
                ("200 OK", "ready\n".to_owned())
            } else {
                (
                    "503 Service Unavailable",
                    "not ready: no leader known, or not yet a member\n".to_owned(),
                )
            }
        }
        _ => (
            "404 Not Found",
            "try /metrics, /health or /ready\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
