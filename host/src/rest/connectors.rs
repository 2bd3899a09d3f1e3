//! The resource API: `/connectors`, `/connectors/{name}`, `.../config`, `.../status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::ApiError;
use super::error::config_from_json;
use crate::worker::Worker;

/// `GET /connectors`: connector names.
pub async fn list(State(worker): State<Arc<Worker>>) -> Json<Vec<String>> {
    Json(worker.names().await)
}

/// `POST /connectors` `{name, config}`.
pub async fn create(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("malformed_request", "body needs a string `name`"))?
        .to_string();
    let config = config_from_json(body.get("config").cloned().unwrap_or(Value::Null))?;
    worker.create(&name, config.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": name, "config": worker.redacted(&config) })),
    ))
}

/// `GET /connectors/{name}`.
pub async fn get_one(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let config = worker.redacted(&worker.config(&name).await?);
    let status = worker.status(&name).await?;
    Ok(Json(
        json!({ "name": name, "config": config, "type": status.kind, "tasks": status.tasks.len() }),
    ))
}

/// `GET /connectors/{name}/config`.
pub async fn get_config(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.redacted(&worker.config(&name).await?))))
}

/// `PUT /connectors/{name}/config`: create (201) or replace (200).
pub async fn put_config(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let config = config_from_json(body)?;
    let created = worker.put_config(&name, config.clone()).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(json!({ "name": name, "config": worker.redacted(&config) })),
    ))
}

/// `GET /connectors/{name}/status`.
pub async fn status(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(worker.status(&name).await?))
}

/// `DELETE /connectors/{name}`.
pub async fn delete(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /connectors/{name}/restart`: restarts every task (e.g. after one gave up retrying).
/// Tasks resume from the last acknowledged record.
pub async fn restart(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.restart(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /connectors/{name}/stop`: stops every task and keeps the config (Kafka Connect's
/// KIP-980 `STOPPED`; the seed's `disable`).
pub async fn stop(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.set_enabled(&name, false).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /connectors/{name}/resume`: runs a stopped connector's tasks again (the seed's
/// `enable`).
pub async fn resume(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.set_enabled(&name, true).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /internal/config-writes`: a config write another worker forwarded to this one, the
/// leader (`503 not_leader` when it no longer leads; the sender then asks the new leader).
pub async fn forwarded_write(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<crate::worker::ConfigWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::worker::WriteOutcome>, ApiError> {
    let Json(write) = body?;
    Ok(Json(worker.execute_forwarded(write).await?))
}
