//! Running tasks. A source task polls its guest, sends each poll's batches to RocketMQ and
//! commits positions only after RocketMQ acknowledged them ([`source`]). A sink task consumes
//! RocketMQ, `put()`s into its guest and commits RocketMQ offsets only after `put()` returned Ok
//! ([`sink`]). Guest faults restart the guest with backoff; the hub clients and anything not yet
//! delivered survive the restart, so nothing acknowledged is lost.

pub mod backoff;
pub mod dead_letter;
pub mod dispatch;
pub mod record_log;
pub mod sink;
pub mod source;
pub mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use crate::config::HostSettings;
use crate::plugin::{LoadedPlugin, PluginRegistry};
use crate::rocketmq::Hub;
use crate::store::Store;
use crate::wasm::state::TaskIds;
use crate::wasm::{GuestLimits, PluginKind};

pub use status::{StatusCell, TaskLifecycle, TaskStatus};

/// Past this share of `task.memory.max.bytes` a task reopens its guest at a safe point (a
/// source after every in-flight batch is acknowledged and committed, a sink after `flush()`),
/// instead of waiting for an out-of-memory fault and a restart with backoff: guests built with
/// componentize-js and componentize-py leak the buffers that cross the boundary.
pub const RECYCLE_AT: f64 = 0.75;

/// Logs why a task reopens its guest.
fn log_recycle(used: usize, max: usize) {
    tracing::info!(
        "guest memory {} MiB is past {:.0}% of task.memory.max.bytes ({} MiB): reopening the \
         guest at its committed positions",
        used >> 20,
        RECYCLE_AT * 100.0,
        max >> 20
    );
    crate::metrics::worker::guest_recycled();
}

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
            http: self.settings.http.clone(),
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
    /// What connector configs may reach (`fileRoots`, `configEnvAllowlist`).
    pub grants: Arc<crate::security::GrantPolicy>,
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

/// Resolves once a stopped task has finished (its in-flight deliveries done, or aborted after
/// [`STOP_GRACE`]); shared, so a task restarted under the same key can wait for it.
pub type Stopped = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// How long a stopping task may take to finish its in-flight deliveries.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// How many task loops run on this worker (started and not yet ended).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Records the worker's tasks delivered since it started (all connectors): tells the periodic
/// memory release whether traffic is flowing.
static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Records delivered by every task of this worker so far; see [`crate::memory::release_periodically`].
pub fn records_delivered() -> u64 {
    DELIVERED.load(Ordering::Relaxed)
}

/// Counts a task loop in [`RUNNING`] while it lives (also when it is aborted).
struct Running;

impl Running {
    fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts a task loop of the right kind, once `after` (the previous run of the same task on
/// this worker, still stopping) has finished. The loop runs under a child of `stop` that the
/// task itself cancels when it gives up (`errors.retry.timeout`, a record that can never be sent).
/// A task started `paused` opens its guest and waits before moving a record.
pub fn spawn(spec: TaskSpec, deps: TaskDeps, after: Option<Stopped>, paused: bool) -> TaskHandle {
    let stop = CancellationToken::new();
    let run = stop.child_token();
    let metrics = crate::metrics::TaskMetrics::new(&spec.ids.connector, spec.ids.task);
    let status = StatusCell::new(spec.settings.retry_timeout, run.clone(), metrics);
    status.set_paused(paused);
    let span = tracing::info_span!("task", connector = %spec.ids.connector, task = spec.ids.task);
    let kind = spec.plugin.kind;
    let cell = status.clone();
    let running = Running::start();
    let task = async move {
        let _running = running;
        if let Some(previous) = after {
            previous.await;
        }
        match kind {
            PluginKind::Source => source::run(spec, deps, cell, run).await,
            PluginKind::Sink => sink::run(spec, deps, cell, run).await,
        }
    };
    let join = tokio::spawn(tracing::Instrument::instrument(task, span));
    TaskHandle { status, stop, join }
}

/// Stops a task in the background: cancels it and lets it finish its in-flight deliveries for
/// up to [`STOP_GRACE`], then aborts it; once no task runs, freed memory goes back to the OS. The caller
/// does not wait; the result says when it is done.
pub fn stop(task: TaskHandle) -> Stopped {
    use futures::FutureExt;
    task.stop.cancel();
    let abort = task.join.abort_handle();
    let done = tokio::spawn(async move {
        if tokio::time::timeout(STOP_GRACE, task.join).await.is_err() {
            tracing::warn!("task did not stop within {STOP_GRACE:?}; aborting it");
            abort.abort();
        }
        crate::memory::release_soon_if(|| RUNNING.load(Ordering::Relaxed) == 0);
    });
    async move {
        let _ = done.await;
    }
    .boxed()
    .shared()
}
