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
    let configs: std::collections::BTreeMap<String, ConnectorConfig> = worker
        .configs()
        .await
        .into_iter()
        .map(|(name, config)| (name, worker.redacted(&config)))
        .collect();
    Json(json!(configs))
}

/// `GET /getConnectors/{name}`.
pub async fn get_connector(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.redacted(&worker.config(&name).await?))))
}

/// `GET /getConnectorsStatus/{name}`.
pub async fn status(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.status(&name).await?)))
}

/// `GET /getClusterInfo` and `GET /cluster`: the live workers and their REST addresses.
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
pub async fn allocated_tasks(State(worker): State<Arc<Worker>>) -> Json<Value> {
    Json(json!(worker.local_tasks().await))
}

/// `GET /getAllTask/{byWorker}`: the tasks running on every live worker (this one asks the
/// others). `byWorker=true` groups them by worker; anything else gives one flat list.
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
pub async fn connector_tasks(State(worker): State<Arc<Worker>>) -> Json<Value> {
    Json(allocation_json(worker.allocation().await))
}

/// `GET /getConnectorTask/{name}`.
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
pub async fn enable_one(
    State(worker): State<Arc<Worker>>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let enabled = enable_action(&action)?;
    worker.set_enabled(&name, enabled).await?;
    Ok(Json(json!({ "status": "success", "name": name })))
}

/// `GET /connectors/all/enable|disable|remove`.
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
