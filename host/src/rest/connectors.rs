//! The resource API: `/connectors`, `/connectors/{name}`, `.../config`, `.../status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::ApiError;
use super::error::config_from_json;
use crate::model::TargetState;
use crate::worker::Worker;

/// `GET /connectors`: connector names; with `?expand=status` and/or `?expand=info`, an object
/// per name holding those (Kafka Connect's expansion).
#[utoipa::path(
    get,
    path = "/connectors",
    tag = "connectors",
    params(("expand" = Option<Vec<String>>, Query, description = "`status` and/or `info`, repeatable")),
    responses((status = 200, description = "Names, or with expand an object per name", body = serde_json::Value), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn list(
    State(worker): State<Arc<Worker>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut status = false;
    let mut info = false;
    for (key, value) in &query {
        match (key.as_str(), value.as_str()) {
            ("expand", "status") => status = true,
            ("expand", "info") => info = true,
            ("expand", other) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown expand `{other}`: use `status` or `info`"),
                ));
            }
            _ => {}
        }
    }
    let names = worker.names().await;
    if !status && !info {
        return Ok(Json(json!(names)));
    }
    let mut out = serde_json::Map::new();
    for name in names {
        let mut entry = serde_json::Map::new();
        // A connector deleted meanwhile is left out.
        if status {
            let Ok(s) = worker.status(&name).await else {
                continue;
            };
            entry.insert("status".into(), json!(s));
        }
        if info {
            let Ok(i) = info_of(&worker, &name).await else {
                continue;
            };
            entry.insert("info".into(), i);
        }
        out.insert(name, Value::Object(entry));
    }
    Ok(Json(Value::Object(out)))
}

/// Kafka Connect's connector info: name, config (secrets hidden), tasks and type.
async fn info_of(worker: &Worker, name: &str) -> Result<Value, ApiError> {
    let config = worker.redacted(&worker.config(name).await?);
    let status = worker.status(name).await?;
    let tasks: Vec<Value> = status
        .tasks
        .iter()
        .map(|t| json!({ "connector": name, "task": t.id }))
        .collect();
    Ok(json!({ "name": name, "config": config, "tasks": tasks, "type": status.kind }))
}

/// `POST /connectors` `{name, config}`.
#[utoipa::path(
    post,
    path = "/connectors",
    tag = "connectors",
    request_body = crate::rest::openapi::CreateBody,
    responses((status = 201, description = "Created", body = crate::rest::openapi::ConnectorBody), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 409, description = "The name is taken", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
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

/// `GET /connectors/{name}`: Kafka Connect's connector info.
#[utoipa::path(
    get,
    path = "/connectors/{name}",
    tag = "connectors",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "Name, config (secrets hidden), tasks and type", body = crate::rest::openapi::ConnectorInfoBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn get_one(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(info_of(&worker, &name).await?))
}

/// `GET /connectors/{name}/config`.
#[utoipa::path(
    get,
    path = "/connectors/{name}/config",
    tag = "connectors",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "The config, secrets hidden", body = crate::rest::openapi::ConfigBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn get_config(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.redacted(&worker.config(&name).await?))))
}

/// `PUT /connectors/{name}/config`: create (201) or replace (200).
#[utoipa::path(
    put,
    path = "/connectors/{name}/config",
    tag = "connectors",
    params(("name" = String, Path, description = "Connector name")),
    request_body = crate::rest::openapi::ConfigBody,
    responses((status = 200, description = "Replaced", body = crate::rest::openapi::ConnectorBody), (status = 201, description = "Created", body = crate::rest::openapi::ConnectorBody), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/connectors/{name}/status",
    tag = "connectors",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "Connector and task states", body = crate::worker::ConnectorStatus), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn status(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(worker.status(&name).await?))
}

/// `DELETE /connectors/{name}`.
#[utoipa::path(
    delete,
    path = "/connectors/{name}",
    tag = "connectors",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn delete(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `POST /connectors/{name}/restart`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartQuery {
    include_tasks: Option<bool>,
    only_failed: Option<bool>,
}

/// `POST /connectors/{name}/restart`. Without a query: restarts every task (204), as Ferry
/// always has. With Kafka Connect's `includeTasks` / `onlyFailed`: plans the connector again
/// and restarts the tasks selected (202 with the tasks being restarted shown `RESTARTING`), or
/// only plans again (`includeTasks=false&onlyFailed=false`, 204). Tasks resume from the last
/// acknowledged record.
#[utoipa::path(
    post,
    path = "/connectors/{name}/restart",
    tag = "control",
    params(("name" = String, Path, description = "Connector name"), ("includeTasks" = Option<bool>, Query, description = "Restart tasks too"), ("onlyFailed" = Option<bool>, Query, description = "Only FAILED ones")),
    responses((status = 202, description = "The status, tasks being restarted shown RESTARTING", body = Object), (status = 204, description = "Restarted"), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn restart(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
    Query(query): Query<RestartQuery>,
) -> Result<axum::response::Response, ApiError> {
    if query.include_tasks.is_none() && query.only_failed.is_none() {
        worker.restart(&name).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (include_tasks, only_failed) = (
        query.include_tasks.unwrap_or(false),
        query.only_failed.unwrap_or(false),
    );
    let restarted = worker
        .restart_selected(&name, include_tasks, only_failed)
        .await?;
    if !include_tasks && !only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut status = json!(worker.status(&name).await?);
    if let Some(tasks) = status["tasks"].as_array_mut() {
        for task in tasks {
            if task["id"]
                .as_u64()
                .is_some_and(|id| restarted.contains(&(id as u32)))
            {
                task["state"] = json!("RESTARTING");
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

/// `PUT /connectors/{name}/pause`: tasks keep their place (guest, consumers, positions) and
/// move no records until resumed (KIP-980 `PAUSED`).
#[utoipa::path(
    put,
    path = "/connectors/{name}/pause",
    tag = "control",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 202, description = "Pausing"), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn pause(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.set_target(&name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /connectors/{name}/stop`: shuts every task down and keeps the config (KIP-980
/// `STOPPED`; the seed's `disable`).
#[utoipa::path(
    put,
    path = "/connectors/{name}/stop",
    tag = "control",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 202, description = "Stopping"), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn stop(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.set_target(&name, TargetState::Stopped).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /connectors/{name}/resume`: runs a paused or stopped connector again (the seed's
/// `enable`).
#[utoipa::path(
    put,
    path = "/connectors/{name}/resume",
    tag = "control",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 202, description = "Resuming"), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn resume(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    worker.set_target(&name, TargetState::Running).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /connectors/{name}/tasks`: each task's id and config (secrets hidden).
#[utoipa::path(
    get,
    path = "/connectors/{name}/tasks",
    tag = "control",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "Each task id and config (secrets hidden)", body = Vec<crate::rest::openapi::TaskInfoBody>), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn tasks(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let configs = worker.task_configs(&name).await?;
    Ok(Json(json!(
        configs
            .into_iter()
            .enumerate()
            .map(|(task, config)| json!({ "id": { "connector": name, "task": task }, "config": config }))
            .collect::<Vec<_>>()
    )))
}

/// `GET /connectors/{name}/tasks/{task}/status`.
#[utoipa::path(
    get,
    path = "/connectors/{name}/tasks/{task}/status",
    tag = "control",
    params(("name" = String, Path, description = "Connector name"), ("task" = u32, Path, description = "Task index")),
    responses((status = 200, description = "The task state", body = crate::worker::TaskStatusEntry), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn task_status(
    State(worker): State<Arc<Worker>>,
    Path((name, task)): Path<(String, u32)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(worker.task_status(&name, task).await?)))
}

/// `POST /connectors/{name}/tasks/{task}/restart`: restarts that one task wherever it runs
/// (204); it resumes from the last acknowledged record.
#[utoipa::path(
    post,
    path = "/connectors/{name}/tasks/{task}/restart",
    tag = "control",
    params(("name" = String, Path, description = "Connector name"), ("task" = u32, Path, description = "Task index")),
    responses((status = 204, description = "Restarting"), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn restart_task(
    State(worker): State<Arc<Worker>>,
    Path((name, task)): Path<(String, u32)>,
) -> Result<StatusCode, ApiError> {
    worker.task_status(&name, task).await?;
    worker.restart_tasks(&name, vec![task]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/connectors/{name}/offsets",
    tag = "offsets",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "A source's delivered positions, or a sink's consumer group offsets per queue", body = crate::worker::offsets::Offsets),
        (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody),
        (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody),
        (status = 400, description = "The connector's plugin is not loaded", body = crate::rest::openapi::ErrorBody),
        (status = 404, description = "No such connector", body = crate::rest::openapi::ErrorBody),
        (status = 503, description = "RocketMQ cannot be reached", body = crate::rest::openapi::ErrorBody))
)]
/// `GET /connectors/{name}/offsets` (KIP-875).
pub async fn offsets(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<crate::worker::offsets::Offsets>, ApiError> {
    Ok(Json(worker.offsets(&name).await?))
}

#[utoipa::path(
    patch,
    path = "/connectors/{name}/offsets",
    tag = "offsets",
    params(("name" = String, Path, description = "Connector name")),
    request_body = crate::worker::offsets::Offsets,
    responses((status = 200, description = "Changed, cluster-wide; tasks resume from them", body = Object),
        (status = 400, description = "A malformed offset", body = crate::rest::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody),
        (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody),
        (status = 404, description = "No such connector", body = crate::rest::openapi::ErrorBody),
        (status = 409, description = "The connector is not stopped, or still stopping", body = crate::rest::openapi::ErrorBody),
        (status = 503, description = "The cluster cannot be reached", body = crate::rest::openapi::ErrorBody))
)]
/// `PATCH /connectors/{name}/offsets` (KIP-875): sets the given offsets of a `STOPPED`
/// connector (a source partition with a null offset is removed).
pub async fn patch_offsets(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
    body: Result<Json<crate::worker::offsets::Offsets>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    worker.alter_offsets(&name, Some(body.offsets)).await?;
    Ok(Json(
        json!({ "message": "The offsets of this connector have been altered; its tasks resume from them when it is resumed" }),
    ))
}

#[utoipa::path(
    delete,
    path = "/connectors/{name}/offsets",
    tag = "offsets",
    params(("name" = String, Path, description = "Connector name")),
    responses((status = 200, description = "Reset, cluster-wide", body = Object),
        (status = 400, description = "The connector's plugin is not loaded", body = crate::rest::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody),
        (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody),
        (status = 404, description = "No such connector", body = crate::rest::openapi::ErrorBody),
        (status = 409, description = "The connector is not stopped, or still stopping", body = crate::rest::openapi::ErrorBody),
        (status = 503, description = "The cluster cannot be reached", body = crate::rest::openapi::ErrorBody))
)]
/// `DELETE /connectors/{name}/offsets` (KIP-875): a `STOPPED` connector starts over: a
/// source from no position, a sink from offset 0 of every queue.
pub async fn reset_offsets(
    State(worker): State<Arc<Worker>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    worker.alter_offsets(&name, None).await?;
    Ok(Json(
        json!({ "message": "The offsets of this connector have been reset; its tasks start over when it is resumed" }),
    ))
}

/// `POST /internal/config-writes`: a config write another worker forwarded to this one, the
/// leader (`503 not_leader` when it no longer leads; the sender then asks the new leader).
#[utoipa::path(
    post,
    path = "/internal/config-writes",
    tag = "internal",
    request_body = Object,
    responses((status = 200, description = "What the write did", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody), (status = 409, description = "The name is taken", body = crate::rest::openapi::ErrorBody), (status = 503, description = "The cluster (RocketMQ or the leader) cannot be reached, or the request timed out", body = crate::rest::openapi::ErrorBody))
)]
pub async fn forwarded_write(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<crate::worker::ConfigWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::worker::WriteOutcome>, ApiError> {
    let Json(write) = body?;
    Ok(Json(worker.execute_forwarded(write).await?))
}
