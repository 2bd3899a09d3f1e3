//! `GET /metrics`: the worker's Prometheus figures (see [`crate::metrics`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::worker::Worker;

/// The OpenMetrics content type Prometheus negotiates for this format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: every series of this worker, labelled with its `worker` id. Behind the
/// bearer token like every route but the health checks (series name connectors).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus / OpenMetrics text", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn metrics(State(worker): State<Arc<Worker>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, OPENMETRICS)],
        crate::metrics::encode(worker.id()),
    )
}
