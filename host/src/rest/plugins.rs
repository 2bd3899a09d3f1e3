//! `GET /connector-plugins` and plugin reloads.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::ApiError;
use super::error::config_from_json;
use crate::config::CONNECTOR_CLASS;
use crate::wasm::ConfigKey;
use crate::worker::Worker;

/// Loaded plugins (class, type, version, the contract version they were built against, aliases,
/// config schema) and files that failed.
#[utoipa::path(
    get,
    path = "/connector-plugins",
    tag = "plugins",
    operation_id = "list_plugins",
    responses((status = 200, description = "Loaded plugins and files that failed", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn list(State(worker): State<Arc<Worker>>) -> Json<Value> {
    let (plugins, failures) = worker.deps().registry.list();
    let plugins: Vec<Value> = plugins
        .iter()
        .map(|p| {
            json!({
                "class": p.name,
                "type": p.kind,
                "version": p.info.version,
                "wit": format!("ferry:connector@{}", p.wit_version),
                "aliases": p.info.aliases,
                "path": p.path,
                "sha256": p.sha256,
                "config": p.info.config_keys.iter().map(|k| json!({
                    "name": k.name, "required": k.required, "default": k.default_value, "doc": k.doc, "secret": k.secret,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "plugins": plugins, "failed": failures }))
}

/// Kafka Connect's shape of one key's definition.
fn definition(key: &ConfigKey) -> Value {
    json!({
        "name": key.name,
        "type": "STRING",
        "required": key.required,
        "default_value": key.default_value,
        "documentation": key.doc,
        "secret": key.secret,
    })
}

/// `GET /connector-plugins/{class}/config`: the keys the plugin declares.
#[utoipa::path(
    get,
    path = "/connector-plugins/{class}/config",
    tag = "plugins",
    params(("class" = String, Path, description = "Plugin name or alias")),
    responses((status = 200, description = "The keys the plugin declares", body = Vec<Object>), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn config_keys(
    State(worker): State<Arc<Worker>>,
    Path(class): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let plugin = resolve(&worker, &class)?;
    Ok(Json(json!(
        plugin
            .info
            .config_keys
            .iter()
            .map(definition)
            .collect::<Vec<_>>()
    )))
}

/// `PUT /connector-plugins/{class}/config/validate`: checks a config as a create would
/// (nothing is created) and answers per key: its definition, its value (secrets hidden) and
/// its errors, with the total `error_count` (Kafka Connect's answer).
#[utoipa::path(
    put,
    path = "/connector-plugins/{class}/config/validate",
    tag = "plugins",
    params(("class" = String, Path, description = "Plugin name or alias")),
    request_body = crate::rest::openapi::ConfigBody,
    responses((status = 200, description = "Per key: definition, value, errors", body = Object), (status = 400, description = "Bad request: the message names the key or value", body = crate::rest::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody), (status = 404, description = "No such connector, task or route", body = crate::rest::openapi::ErrorBody))
)]
pub async fn validate(
    State(worker): State<Arc<Worker>>,
    Path(class): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let plugin = resolve(&worker, &class)?;
    let Json(body) = body?;
    let mut config = config_from_json(body)?;
    match config.get(CONNECTOR_CLASS) {
        Some(given)
            if worker
                .deps()
                .registry
                .resolve(given)
                .map(|p| p.name.clone())
                != Some(plugin.name.clone()) =>
        {
            return Err(ApiError::bad_request(
                "class_mismatch",
                format!("`{CONNECTOR_CLASS}` is `{given}` but the route validates `{class}`"),
            ));
        }
        Some(_) => {}
        None => {
            config.insert(CONNECTOR_CLASS.into(), class.clone());
        }
    }
    let validation = worker.validate(&config).await;
    let shown = worker.redacted(&config);
    let mut names: Vec<&String> = validation.declared.iter().map(|k| &k.name).collect();
    names.extend(
        config
            .keys()
            .filter(|k| !validation.declared.iter().any(|d| d.name == **k)),
    );
    names.extend(validation.errors.keys().filter(|k| {
        !config.contains_key(*k) && !validation.declared.iter().any(|d| d.name == **k)
    }));
    let configs: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let definition = validation
                .declared
                .iter()
                .find(|k| k.name == *name)
                .map(definition)
                .unwrap_or_else(|| json!({ "name": name, "type": "STRING", "required": false, "default_value": null,
                    "documentation": "not declared by the plugin: a host setting (see the README) or a key the plugin ignores", "secret": false }));
            json!({
                "definition": definition,
                "value": {
                    "name": name,
                    "value": shown.get(name),
                    "errors": validation.errors.get(name).cloned().unwrap_or_default(),
                    "visible": true,
                },
            })
        })
        .collect();
    let error_count =
        validation.errors.values().map(Vec::len).sum::<usize>() + validation.general.len();
    Ok(Json(json!({
        "name": plugin.name,
        "error_count": error_count,
        "groups": [],
        "configs": configs,
        "errors": validation.general,
    })))
}

fn resolve(worker: &Worker, class: &str) -> Result<Arc<crate::plugin::LoadedPlugin>, ApiError> {
    worker.deps().registry.resolve(class).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_connector_class",
            format!(
                "unknown connector class `{class}`; known classes: {}",
                worker.deps().registry.known_classes().join(", ")
            ),
        )
    })
}

/// `POST /plugins/reload` and the seed's `GET /plugin/reload`.
#[utoipa::path(
    post,
    path = "/plugins/reload",
    tag = "plugins",
    responses((status = 200, description = "What the rescan added, changed, removed, failed", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::rest::openapi::ErrorBody), (status = 403, description = "A cross-site browser request", body = crate::rest::openapi::ErrorBody))
)]
pub async fn reload(State(worker): State<Arc<Worker>>) -> Json<Value> {
    let report = worker.deps().registry.reload().await;
    worker.plugins_reloaded(&report).await;
    Json(json!(report))
}
