//! The seed's GET routes, kept as they were so existing scripts keep working.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::ApiError;
use super::error::config_from_json;
use crate::config::ConnectorConfig;
use crate::worker::Worker;

type QueryMap = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// Reads `?config={json}`.
fn config_param(query: QueryMap) -> Result<ConnectorConfig, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("malformed_query", e.body_text()))?;
    let raw = query.get("config").ok_or_else(|| {
        ApiError::bad_request(
            "malformed_query",
            "missing query parameter `config` (a JSON object)",
        )
    })?;
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("query parameter `config` is not JSON: {e}"),
        )
    })?;
    config_from_json(value)
}

/// `GET /connectors/create/{name}?config={json}`.
pub async fn create(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
    query: QueryMap,
) -> Result<Json<Value>, ApiError> {
    let config = config_param(query)?;
    worker.create(&name, config).await?;
    Ok(Json(json!({ "status": "success", "name": name })))
}

/// `GET /connectors/update/{name}?config={json}`: the given keys overwrite the stored ones.
pub async fn update(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
    query: QueryMap,
) -> Result<Json<Value>, ApiError> {
    let patch = config_param(query)?;
    worker.merge_config(&name, patch).await?;
    Ok(Json(json!({ "status": "success", "name": name })))
}

/// `GET /connectors/single/{name}/remove`.
pub async fn remove(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    worker.delete(&name).await?;
    Ok(Json(json!({ "status": "success", "name": name })))
}

/// `GET /getConnectors`: every connector config by name.
pub async fn get_connectors(State(worker): State<Arc<Worker>>) -> Json<Value> {
    Json(json!(worker.configs().await))
}

/// `GET /getConnectors/{name}`.
pub async fn get_connector(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.config(&name).await?)))
}

/// `GET /getConnectorsStatus/{name}`.
pub async fn status(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.status(&name).await?)))
}
