//! The REST API (axum): the seed's GET routes and a resource API in the style of Kafka Connect.
//! Handlers are thin: they parse, call the [`Worker`], and map its errors with [`ApiError`].

mod connectors;
mod error;
mod plugins;
mod seed;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

pub use error::ApiError;

use crate::worker::Worker;

/// Builds the router over `worker`.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
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
        .route("/connector-plugins", get(plugins::list))
        .route("/plugins/reload", post(plugins::reload))
        // The seed's routes, unchanged.
        .route("/connectors/create/{name}", get(seed::create))
        .route("/connectors/update/{name}", get(seed::update))
        .route("/connectors/single/{name}/remove", get(seed::remove))
        .route("/getConnectors", get(seed::get_connectors))
        .route("/getConnectors/{name}", get(seed::get_connector))
        .route("/getConnectorsStatus/{name}", get(seed::status))
        .route("/plugin/reload", get(plugins::reload))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(worker)
}
