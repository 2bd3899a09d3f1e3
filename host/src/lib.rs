//! Ferry: a connector host that runs WebAssembly source and sink connectors with RocketMQ as
//! the hub.
//!
//! # Layout
//! - [`config`]: `connect.conf` and connector configs.
//! - [`plugin`]: finds `*.wasm` components, compiles them off the request path, reloads.
//! - [`wasm`]: the engine, the WIT bindings, host capabilities, per-task stores; where a record
//!   crosses into WebAssembly and where a guest fault becomes a typed error.
//! - [`task`]: the source and sink loops; where a record is acknowledged and committed.
//! - [`rocketmq`]: the hub client (producer, consumers, message mapping).
//! - [`store`]: local persistence of configs and delivered positions.
//! - [`worker`]: the connectors of this process.
//! - [`metrics`]: the Prometheus figures behind `GET /metrics`.
//! - [`rest`]: the HTTP API (authentication, limits, TLS).
//! - [`security`]: what a caller, a config and a guest may reach: file roots, Kafka property
//!   allowlist, secrets and references.
//!
//! A record's path, source side: `task::source` calls the guest's `poll()`, hands the batch to
//! `rocketmq::Hub::send_batch`, and only when RocketMQ acknowledged it records the position in
//! `store` and calls the guest's `commit()`. Sink side: `task::sink` polls RocketMQ, calls the
//! guest's `put()`, and commits RocketMQ offsets only after `put()` returned Ok.
//!
//! # Errors
//! Each module has one `thiserror` enum; `anyhow` is used only in `main.rs`.
// The rocketmq client's futures are deeply nested.
#![recursion_limit = "256"]
#![deny(missing_docs)]

pub mod cluster;
pub mod config;
pub mod conformance;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod plugin;
pub mod rest;
pub mod rocketmq;
pub mod security;
pub mod store;
pub mod task;
pub mod wasm;
pub mod worker;
