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
#[utoipa::path(
    get,
    path = "/connectors/create/{name}",
    tag = "seed",
    operation_id = "seed_create",
    params(("name" = String, Path, description = "Connector name"), ("config" = String, Query, description = "The config as a JSON object")),
    responses((status = 200, description = "Created", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 409, description = "The name is taken", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/connectors/update/{name}",
    tag = "seed",
    operation_id = "seed_update",
    params(("name" = String, Path, description = "Connector name"), ("config" = String, Query, description = "Keys to overwrite, a JSON object")),
    responses((status = 200, description = "Updated", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/connectors/single/{name}/remove",
    tag = "seed",
    operation_id = "seed_remove",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "Removed", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn remove(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    worker.delete(&name).await?;
    Ok(Json(json!({ "status": "success", "name": name })))
}

/// `GET /getConnectors`: every connector config by name.
#[utoipa::path(
    get,
    path = "/getConnectors",
    tag = "seed",
    responses((status = 200, description = "Every config by name", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn get_connectors(State(worker): State<Arc<Worker>>) -> Json<Value> {
    let configs: std::collections::BTreeMap<String, ConnectorConfig> = worker
        .configs()
        .await
        .into_iter()
        .map(|(name, config)| (name, worker.redacted(&config)))
        .collect();
    Json(json!(configs))
}

/// `GET /getConnectors/{name}`.
#[utoipa::path(
    get,
    path = "/getConnectors/{name}",
    tag = "seed",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "The config", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn get_connector(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.redacted(&worker.config(&name).await?))))
}

/// `GET /getConnectorsStatus/{name}`.
#[utoipa::path(
    get,
    path = "/getConnectorsStatus/{name}",
    tag = "seed",
    operation_id = "seed_status",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "The status", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn status(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.status(&name).await?)))
}

/// `GET /getClusterInfo` and `GET /cluster`: the live workers and their REST addresses.
#[utoipa::path(
    get,
    path = "/getClusterInfo",
    tag = "seed",
    responses((status = 200, description = "Live workers and their addresses", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn cluster_info(State(worker): State<Arc<Worker>>) -> Json<Value> {
    let members: Vec<Value> = worker
        .members()
        .await
        .into_iter()
        .map(|(id, rest)| json!({ "workerId": id, "restAddress": rest }))
        .collect();
    Json(json!({ "self": worker.id(), "workers": members }))
}

/// `GET /getAllocatedTask`: the tasks running on this worker.
#[utoipa::path(
    get,
    path = "/getAllocatedTask",
    tag = "seed",
    responses((status = 200, description = "Tasks running here", body = Vec<crate::worker::LocalTask>), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn allocated_tasks(State(worker): State<Arc<Worker>>) -> Json<Value> {
    Json(json!(worker.local_tasks().await))
}

/// `GET /getAllTask/{byWorker}`: the tasks running on every live worker (this one asks the
/// others). `byWorker=true` groups them by worker; anything else gives one flat list.
#[utoipa::path(
    get,
    path = "/getAllTask/{by_worker}",
    tag = "seed",
    params(("by_worker" = String, Path, description = "`true` groups by worker")),
    responses((status = 200, description = "Tasks on every worker: a list, or by worker an object", body = serde_json::Value), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn all_tasks(
    State(worker): State<Arc<Worker>>,
    Path(by_worker): Path<String>,
) -> Json<Value> {
    let all = worker.cluster_tasks().await;
    if by_worker.eq_ignore_ascii_case("true") || by_worker.eq_ignore_ascii_case("byWorker") {
        let grouped: serde_json::Map<String, Value> = all
            .into_iter()
            .map(|(w, tasks)| {
                let v = match tasks {
                    Ok(t) => json!(t),
                    Err(e) => json!({ "error": e }),
                };
                (w, v)
            })
            .collect();
        return Json(Value::Object(grouped));
    }
    let flat: Vec<Value> = all
        .into_iter()
        .flat_map(|(w, tasks)| {
            tasks
                .unwrap_or_default()
                .into_iter()
                .map(move |t| json!({ "workerId": w, "connector": t.connector, "task": t.task, "status": t.status }))
        })
        .collect();
    Json(json!(flat))
}

/// `GET /getConnectorTask`: where every connector's tasks are allocated.
#[utoipa::path(
    get,
    path = "/getConnectorTask",
    tag = "seed",
    responses((status = 200, description = "Allocation of every connector", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn connector_tasks(State(worker): State<Arc<Worker>>) -> Json<Value> {
    Json(allocation_json(worker.allocation().await))
}

/// `GET /getConnectorTask/{name}`.
#[utoipa::path(
    get,
    path = "/getConnectorTask/{name}",
    tag = "seed",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "Allocation of one connector", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn connector_task(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    worker.config(&name).await?;
    let mut all = worker.allocation().await;
    let one = all.remove(&name).unwrap_or_default();
    Ok(Json(allocation_json([(name, one)].into())))
}

fn allocation_json(all: std::collections::BTreeMap<String, Vec<(u32, String)>>) -> Value {
    let map: serde_json::Map<String, Value> = all
        .into_iter()
        .map(|(name, tasks)| {
            let tasks: Vec<Value> = tasks
                .into_iter()
                .map(|(t, w)| json!({ "task": t, "workerId": w }))
                .collect();
            (name, json!(tasks))
        })
        .collect();
    Value::Object(map)
}

/// `GET /connectors/single/{name}/enable` and `.../disable`.
#[utoipa::path(
    get,
    path = "/connectors/single/{name}/{action}",
    tag = "seed",
    params(("name" = String, Path, description = "Connector name"), ("action" = String, Path, description = "`enable` or `disable`")),
    responses((status = 200, description = "Done", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn enable_one(
    State(worker): State<Arc<Worker>>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let enabled = enable_action(&action)?;
    worker.set_enabled(&name, enabled).await?;
    Ok(Json(json!({ "status": "success", "name": name })))
}

/// `GET /connectors/all/enable|disable|remove`.
#[utoipa::path(
    get,
    path = "/connectors/all/{action}",
    tag = "seed",
    params(("action" = String, Path, description = "`enable`, `disable` or `remove`")),
    responses((status = 200, description = "Done", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn all_action(
    State(worker): State<Arc<Worker>>,
    Path(action): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let names = worker.names().await;
    for name in &names {
        match action.as_str() {
            "remove" => worker.delete(name).await?,
            other => worker.set_enabled(name, enable_action(other)?).await?,
        }
    }
    Ok(Json(json!({ "status": "success", "connectors": names })))
}

fn enable_action(action: &str) -> Result<bool, ApiError> {
    match action {
        "enable" => Ok(true),
        "disable" => Ok(false),
        other => Err(ApiError::not_found(format!(
            "no such action `{other}`: use enable or disable"
        ))),
    }
}

/// `GET /logMsgDetail/{true|false}` (and `PUT`): one log line per record moved, on every
/// worker, until turned off.
#[utoipa::path(
    get,
    path = "/logMsgDetail/{flag}",
    tag = "seed",
    params(("flag" = String, Path, description = "`true` or `false`")),
    responses((status = 200, description = "Done", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn log_msg_detail(
    State(worker): State<Arc<Worker>>,
    Path(flag): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let enabled = match flag.to_ascii_lowercase().as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ApiError::bad_request(
                "invalid_value",
                format!("`{other}`: use /logMsgDetail/true or /logMsgDetail/false"),
            ));
        }
    };
    worker.set_record_logging(enabled).await?;
    Ok(Json(
        json!({ "status": "success", "logMsgDetail": enabled }),
    ))
}

/// `GET /connectors/taskNum/{name}/{n}`: sets `tasks.num`.
#[utoipa::path(
    get,
    path = "/connectors/taskNum/{name}/{n}",
    tag = "seed",
    params(("name" = String, Path, description = "Connector name"), ("n" = String, Path, description = "The task count")),
    responses((status = 200, description = "Done", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 405, description = "A state-changing GET route with legacyGetWrites=false", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn task_num(
    State(worker): State<Arc<Worker>>,
    Path((name, n)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let n: u32 = n.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_config",
            format!("task count `{n}` is not a number"),
        )
    })?;
    worker.set_task_count(&name, n).await?;
    Ok(Json(
        json!({ "status": "success", "name": name, "tasks.num": n }),
    ))
}
