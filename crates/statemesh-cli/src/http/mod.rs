//! The node's HTTP endpoint (`statemesh node --http ADDR`): the status page
//! at `/` and the JSON it shows at `/status.json`, `/metrics` (Prometheus
//! text format), `/health` (the process answers) and `/ready` (the node
//! knows the cluster's leader and has its state: it can serve).

mod page;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use statemesh::Server;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Installs the Prometheus recorder (before the server starts, so nothing
/// it records is lost).
pub(crate) fn recorder() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new().install_recorder()?)
}

/// What every route answers from.
struct Endpoint {
    metrics: PrometheusHandle,
    server: Arc<Server>,
    rates: page::Rates,
}

/// The longest any answer takes: a member that does not answer the status
/// page's questions is reported as such well before this.
const ANSWER_TIME: Duration = Duration::from_secs(5);

/// Serves the endpoint on `listener` until the process ends.
pub(crate) async fn serve(listener: TcpListener, metrics: PrometheusHandle, server: Arc<Server>) {
    let rates = page::Rates::default();
    let sampler = tokio::spawn(page::sample(Arc::clone(&server), rates.clone()));
    let endpoint = Arc::new(Endpoint {
        metrics,
        server,
        rates,
    });
    let app = Router::new()
        .route("/", get(page::page))
        .route("/status.json", get(status))
        .route("/metrics", get(prometheus))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "try / (the status page), /status.json, /metrics, /health or /ready\n",
            )
        })
        .with_state(endpoint);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!("the HTTP endpoint stopped: {e}");
    }
    sampler.abort();
}

async fn prometheus(State(e): State<Arc<Endpoint>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.metrics.render(),
    )
}

async fn ready(State(e): State<Arc<Endpoint>>) -> impl IntoResponse {
    let s = e.server.status().await;
    let ready = s.groups.first().is_some_and(|(_, g)| {
        g.leader.is_some() && (g.voters.contains(&s.node) || g.learners.contains(&s.node))
    });
    if ready {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader known, or not yet a member\n",
        )
    }
}

/// Every member's account (as `statemesh status --output json` prints
/// it), with this node's id and the commit rates it measured.
async fn status(State(e): State<Arc<Endpoint>>) -> impl IntoResponse {
    let report = tokio::time::timeout(ANSWER_TIME, e.server.report()).await;
    let (code, mut body) = match report {
        Ok(Ok(r)) => (StatusCode::OK, crate::report::status_json(&r)),
        Ok(Err(err)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": format!("asking the members: {err}") }),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": format!("the members did not answer within {ANSWER_TIME:?}") }),
        ),
    };
    body["node"] = e.server.id().into();
    body["rates"] = e.rates.to_json();
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
}
