//! The REST API (axum): the seed's GET routes and a resource API in the style of Kafka Connect.
//! Handlers are thin: they parse, call the [`Worker`], and map its errors with [`ApiError`].

mod connectors;
mod error;
pub mod guard;
mod health;
mod metrics;
pub mod openapi;
mod plugins;
mod seed;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};

pub use error::ApiError;
pub use guard::RequestGuard;

use crate::worker::Worker;

/// Builds the router over `worker`, every route behind `guard`.
pub fn router(worker: Arc<Worker>, guard: Arc<RequestGuard>) -> Router {
    // The seed's state-changing GET routes, which `legacyGetWrites=false` turns off.
    let legacy_writes = Router::new()
        .route("/connectors/create/{name}", get(seed::create))
        .route("/connectors/update/{name}", get(seed::update))
        .route("/connectors/single/{name}/remove", get(seed::remove))
        .route("/plugin/reload", get(plugins::reload))
        .route("/connectors/all/{action}", get(seed::all_action))
        .route("/connectors/single/{name}/{action}", get(seed::enable_one))
        .route("/connectors/taskNum/{name}/{n}", get(seed::task_num))
        .route("/logMsgDetail/{flag}", get(seed::log_msg_detail))
        .route_layer(from_fn_with_state(guard.clone(), guard::legacy_write));
    Router::new()
        .route("/healthz", get(openapi::healthz))
        .route("/openapi.json", get(openapi::document))
        .route("/readyz", get(health::ready))
        .route("/", get(health::root))
        .route("/metrics", get(metrics::metrics))
        .route(
            "/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route(
            "/connectors/{name}",
            get(connectors::get_one).delete(connectors::delete),
        )
        .route(
            "/connectors/{name}/config",
            put(connectors::put_config).get(connectors::get_config),
        )
        .route("/connectors/{name}/status", get(connectors::status))
        .route("/connectors/{name}/restart", post(connectors::restart))
        .route("/connectors/{name}/pause", put(connectors::pause))
        .route("/connectors/{name}/stop", put(connectors::stop))
        .route("/connectors/{name}/resume", put(connectors::resume))
        .route("/connectors/{name}/tasks", get(connectors::tasks))
        .route(
            "/connectors/{name}/offsets",
            get(connectors::offsets)
                .patch(connectors::patch_offsets)
                .delete(connectors::reset_offsets),
        )
        .route(
            "/connectors/{name}/tasks/{task}/status",
            get(connectors::task_status),
        )
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(connectors::restart_task),
        )
        .route("/connector-plugins", get(plugins::list))
        .route(
            "/connector-plugins/{class}/config",
            get(plugins::config_keys),
        )
        .route(
            "/connector-plugins/{class}/config/validate",
            put(plugins::validate),
        )
        // Config writes other workers forward to the leader.
        .route(
            crate::worker::catalog::FORWARD_PATH,
            post(connectors::forwarded_write),
        )
        .route("/plugins/reload", post(plugins::reload))
        // The seed's read routes, unchanged.
        .route("/getConnectors", get(seed::get_connectors))
        .route("/getConnectors/{name}", get(seed::get_connector))
        .route("/getConnectorsStatus/{name}", get(seed::status))
        .route("/logMsgDetail/{flag}", put(seed::log_msg_detail))
        .route("/getClusterInfo", get(seed::cluster_info))
        .route("/cluster", get(seed::cluster_info))
        .route("/getAllocatedTask", get(seed::allocated_tasks))
        .route("/getAllTask/{by_worker}", get(seed::all_tasks))
        .route("/getConnectorTask", get(seed::connector_tasks))
        .route("/getConnectorTask/{name}", get(seed::connector_task))
        .merge(legacy_writes)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(guard.max_body_bytes()))
        .layer(from_fn_with_state(guard, guard::admit))
        .with_state(worker)
}
