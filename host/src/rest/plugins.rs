//! `GET /connector-plugins` and plugin reloads.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::worker::Worker;

/// Loaded plugins (class, type, version, the contract version they were built against, aliases,
/// config schema) and files that failed.
pub async fn list(State(worker): State<Arc<Worker>>) -> Json<Value> {
    let (plugins, failures) = worker.deps().registry.list();
    let plugins: Vec<Value> = plugins
        .iter()
        .map(|p| {
            json!({
                "class": p.name,
                "type": p.kind,
                "version": p.info.version,
                "wit": format!("ferry:connector@{}", p.code.wit_version),
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

/// `POST /plugins/reload` and the seed's `GET /plugin/reload`.
pub async fn reload(State(worker): State<Arc<Worker>>) -> Json<Value> {
    let report = worker.deps().registry.reload().await;
    worker.plugins_reloaded(&report).await;
    Json(json!(report))
}
