//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, made by utoipa from the
//! `#[utoipa::path]` attribute on each handler (so a route and its description change
//! together), with the bodies below for what handlers build as JSON.

use std::collections::BTreeMap;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{connectors, health, metrics, plugins, seed};

/// Every error answer: a stable code and a message naming the cause.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`connector_not_found`, `invalid_config`...).
    error: String,
    /// What went wrong, naming the key, value or route.
    message: String,
}

/// A connector config: string keys and values (numbers and booleans are taken as text).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConfigBody(BTreeMap<String, String>);

/// `POST /connectors`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateBody {
    /// Letters, digits, `.`, `_` and `-`, at most 200.
    name: String,
    /// The config (`connector-class` names the plugin).
    config: BTreeMap<String, String>,
}

/// A connector and its config, secrets hidden.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConnectorBody {
    name: String,
    config: BTreeMap<String, String>,
}

/// One task's id.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TaskId {
    connector: String,
    task: u32,
}

/// Kafka Connect's connector info.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConnectorInfoBody {
    name: String,
    config: BTreeMap<String, String>,
    tasks: Vec<TaskId>,
    /// `source` or `sink`; null while the plugin is not loaded.
    #[serde(rename = "type")]
    kind: Option<crate::wasm::PluginKind>,
}

/// One task's id and config.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TaskInfoBody {
    id: TaskId,
    config: BTreeMap<String, String>,
}

/// `GET /healthz`: liveness; answers while the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "The OpenAPI 3.1 document", body = Object),
    (status = 401, description = "Missing or wrong bearer token", body = ErrorBody)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The seed's second name of `GET /getClusterInfo`.
#[utoipa::path(get, path = "/cluster", tag = "seed", operation_id = "cluster",
    responses((status = 200, description = "Live workers and their addresses", body = Object),
    (status = 401, description = "Missing or wrong bearer token", body = ErrorBody)))]
#[allow(dead_code)]
fn cluster_alias() {}

/// The seed's `GET /plugin/reload` (`POST /plugins/reload` is the resource form).
#[utoipa::path(get, path = "/plugin/reload", tag = "seed", operation_id = "seed_reload",
    responses((status = 200, description = "What the rescan did", body = Object),
    (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    (status = 405, description = "legacyGetWrites=false", body = ErrorBody)))]
#[allow(dead_code)]
fn plugin_reload_alias() {}

/// `PUT /logMsgDetail/{flag}`: the resource form of the seed's route.
#[utoipa::path(put, path = "/logMsgDetail/{flag}", tag = "seed", operation_id = "put_log_msg_detail",
    params(("flag" = String, Path, description = "`true` or `false`")),
    responses((status = 200, description = "Done", body = Object),
    (status = 400, description = "Not true or false", body = ErrorBody),
    (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    (status = 503, description = "The cluster cannot be reached", body = ErrorBody)))]
#[allow(dead_code)]
fn put_log_msg_detail_alias() {}

/// Declares the bearer token (`restAuthToken`) every route but the health checks takes.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry worker REST API", description = "Connectors, their tasks, plugins, the cluster, health and metrics. Every route but /healthz and /readyz takes `Authorization: Bearer <restAuthToken>` when the worker has one. Errors are `{error, message}`."),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    paths(
        healthz, document, cluster_alias, plugin_reload_alias, put_log_msg_detail_alias,
        health::ready, health::root, metrics::metrics,
        connectors::list, connectors::create, connectors::get_one, connectors::get_config,
        connectors::put_config, connectors::status, connectors::delete, connectors::restart,
        connectors::pause, connectors::stop, connectors::resume, connectors::tasks,
        connectors::task_status, connectors::restart_task, connectors::forwarded_write,
        connectors::offsets, connectors::patch_offsets, connectors::reset_offsets,
        plugins::list, plugins::config_keys, plugins::validate, plugins::reload,
        seed::create, seed::update, seed::remove, seed::get_connectors, seed::get_connector,
        seed::status, seed::cluster_info, seed::allocated_tasks, seed::all_tasks,
        seed::connector_tasks, seed::connector_task, seed::enable_one, seed::all_action,
        seed::log_msg_detail, seed::task_num,
    ),
    components(schemas(ErrorBody, ConfigBody, CreateBody, ConnectorBody, ConnectorInfoBody, TaskInfoBody, TaskId,
        crate::worker::ConnectorStatus, crate::worker::ConnectorState, crate::worker::LocalTask, crate::worker::TaskStatusEntry,
        crate::task::TaskStatus, crate::task::TaskLifecycle,
        crate::worker::offsets::Offsets, crate::worker::offsets::OffsetEntry, crate::task::status::TaskError, crate::wasm::PluginKind)),
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the document, with each of its methods.
    #[test]
    fn the_document_covers_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let router = include_str!("mod.rs");
        let mut checked = 0;
        for chunk in router.split(".route(").skip(1) {
            let path = match chunk.trim_start().strip_prefix('"') {
                Some(quoted) => quoted.split('"').next().unwrap(),
                None if chunk
                    .trim_start()
                    .starts_with("crate::worker::catalog::FORWARD_PATH") =>
                {
                    crate::worker::catalog::FORWARD_PATH
                }
                None => panic!("a route path the test cannot read: {chunk}"),
            };
            let handlers = chunk;
            for method in ["get", "post", "put", "patch", "delete"] {
                if handlers.contains(&format!("{method}(")) {
                    assert!(
                        doc["paths"][path][method].is_object(),
                        "{method} {path} is served but not in /openapi.json"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 40, "only {checked} routes found in the router");
        let ops = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>();
        assert_eq!(
            ops, checked,
            "the document has operations the router does not serve"
        );
    }
}
