//! Running tasks. A source task polls its guest, sends each poll's batches to RocketMQ and
//! commits positions only after RocketMQ acknowledged them ([`source`]). A sink task consumes
//! RocketMQ, `put()`s into its guest and commits RocketMQ offsets only after `put()` returned Ok
//! ([`sink`]). Guest faults restart the guest with backoff; the hub clients and anything not yet
//! delivered survive the restart, so nothing acknowledged is lost.

pub mod backoff;
pub mod dispatch;
pub mod sink;
pub mod source;
pub mod status;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::HostSettings;
use crate::plugin::{LoadedPlugin, PluginRegistry};
use crate::rocketmq::Hub;
use crate::store::Store;
use crate::wasm::state::TaskIds;
use crate::wasm::{GuestLimits, PluginKind};

pub use status::{StatusCell, TaskLifecycle, TaskStatus};

/// Everything one task needs to run.
pub struct TaskSpec {
    /// Connector name and task index.
    pub ids: TaskIds,
    /// The task config from `task-configs()`.
    pub config: Vec<(String, String)>,
    /// Host-level settings of the connector.
    pub settings: HostSettings,
    /// The plugin version to start with.
    pub plugin: Arc<LoadedPlugin>,
}

impl TaskSpec {
    /// The sandbox limits of this task; its Kafka consumer reports to `status`.
    pub fn limits(&self, status: &StatusCell) -> GuestLimits {
        GuestLimits {
            memory_max: self.settings.memory_max,
            call_timeout: self.settings.call_timeout,
            preopen_dir: self.settings.file_dir.clone(),
            kafka: self.settings.kafka.clone(),
            assigned: status.partitions(),
        }
    }
}

/// The worker-wide services a task uses.
#[derive(Clone)]
pub struct TaskDeps {
    /// Plugin versions.
    pub registry: Arc<PluginRegistry>,
    /// RocketMQ clients.
    pub hub: Arc<Hub>,
    /// Delivered positions.
    pub store: Arc<Store>,
}

/// A running task: its status and the token that stops it.
pub struct TaskHandle {
    /// Shared with the task loop.
    pub status: StatusCell,
    /// Cancelled to stop the task (it finishes in-flight deliveries first).
    pub stop: CancellationToken,
    /// The task loop.
    pub join: tokio::task::JoinHandle<()>,
}

/// Starts a task loop of the right kind. The loop runs under a child of `stop` that the task
/// itself cancels when it gives up retrying (`errors.retry.timeout`).
pub fn spawn(spec: TaskSpec, deps: TaskDeps) -> TaskHandle {
    let stop = CancellationToken::new();
    let run = stop.child_token();
    let status = StatusCell::new(spec.settings.retry_timeout, run.clone());
    let span = tracing::info_span!("task", connector = %spec.ids.connector, task = spec.ids.task);
    let join = match spec.plugin.kind {
        PluginKind::Source => tokio::spawn(tracing::Instrument::instrument(
            source::run(spec, deps, status.clone(), run),
            span,
        )),
        PluginKind::Sink => tokio::spawn(tracing::Instrument::instrument(
            sink::run(spec, deps, status.clone(), run),
            span,
        )),
    };
    TaskHandle { status, stop, join }
}
