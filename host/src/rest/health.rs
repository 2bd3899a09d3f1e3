//! `GET /readyz` (readiness, Kafka Connect's KIP-1017 `GET /health`) and `GET /` (what this
//! worker is). `/healthz`, liveness, is answered inline by the router.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::worker::Worker;

/// `GET /readyz`: 200 when the worker reaches RocketMQ, has scanned its plugins and sees
/// itself in the member list; 503 naming the failing checks otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready: the failing checks", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn ready(State(worker): State<Arc<Worker>>) -> (StatusCode, Json<Value>) {
    let checks = worker.readiness().checks(std::time::Instant::now());
    let ready = checks.iter().all(|c| c.ok);
    let (code, status) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (code, Json(json!({ "status": status, "checks": checks })))
}

/// `GET /`: the release, the contract versions it runs, the worker id and the cluster name.
#[utoipa::path(
    get,
    path = "/",
    tag = "health",
    responses((status = 200, description = "Version, WIT versions, worker id, cluster name", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn root(State(worker): State<Arc<Worker>>) -> Json<Value> {
    Json(json!({
        "name": "ferry",
        "version": env!("CARGO_PKG_VERSION"),
        "wit_versions": crate::wasm::bindings::SUPPORTED_VERSIONS
            .iter()
            .map(|v| format!("ferry:connector@{v}"))
            .collect::<Vec<_>>(),
        "worker_id": worker.id(),
        "cluster_name": worker.cluster_name(),
    }))
}
