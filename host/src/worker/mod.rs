//! The worker, as three owners with one job each:
//! - the [`catalog`]: the cluster's connector records and every write to them. Writes are
//!   serialized by the leader (the lowest live `workerId`); other workers forward theirs, and a
//!   write is acknowledged only once the leader has published it and read it back from the
//!   config topic, so an acknowledged change is never undone by a clock or a race;
//! - the [`supervisor`]: the tasks this worker runs. Every change (a record, the member list, a
//!   plugin) ends in a reconcile that starts what the [`TaskAllocator`] gives this worker and
//!   stops what it no longer owns. No lock is held across a guest call or a task stop;
//! - [`status`]: what runs where, asking the other workers over REST.
//!
//! REST reads come from a [`View`] snapshot behind a plain lock, never from the reconcile lock.

pub mod catalog;
pub mod loops;
pub mod offsets;
pub mod readiness;
mod status;
mod supervisor;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::cluster::peer::PeerClient;
use crate::cluster::sync::ClusterSync;
use crate::cluster::{ConnectorRecord, TaskAllocator, Version};
use crate::config::{ConnectorConfig, HostSettings};
use crate::plugin::LoadedPlugin;
use crate::store::StoreError;
use crate::task::{StatusCell, TaskDeps, TaskStatus};
use crate::wasm::PluginKind;

pub use catalog::{ConfigWrite, Validation, WriteOutcome};

/// Why a connector request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// `connector-class` names no loaded plugin.
    #[error("unknown connector class `{class}`; known classes: {}", known.join(", "))]
    UnknownClass {
        /// What the user asked for.
        class: String,
        /// Names and aliases that are loaded.
        known: Vec<String>,
    },
    /// A required key is missing.
    #[error("missing required config key `{0}`")]
    MissingKey(String),
    /// A value cannot be used.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A connector name that cannot be used.
    #[error("invalid connector name `{0}`: use letters, digits, `.`, `_` and `-` (at most 200)")]
    InvalidName(String),
    /// The name is taken.
    #[error("connector `{0}` already exists")]
    Exists(String),
    /// No such connector.
    #[error("connector `{0}` not found")]
    NotFound(String),
    /// Offsets may change only while the connector is stopped.
    #[error("connector `{0}` must be stopped (PUT /connectors/{0}/stop) before its offsets change")]
    NotStopped(String),
    /// A stopped sink's consumers have not left their group yet.
    #[error(
        "connector `{0}` is still stopping ({1} consumers still in its group); try again shortly"
    )]
    StillStopping(String, usize),
    /// The connector has no task with this index.
    #[error("connector `{0}` has no task {1}")]
    NoSuchTask(String, u32),
    /// The config could not be persisted.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change could not be published to the cluster (RocketMQ unreachable), or the leader
    /// could not be reached.
    #[error("cannot apply the change to the cluster: {0}")]
    Cluster(String),
    /// This worker is not the leader (a forwarded write reached it after leadership moved).
    #[error("worker `{0}` is not the leader; the write must go to `{1}`")]
    NotLeader(String, String),
    /// The leader refused a forwarded write: its answer, passed on unchanged.
    #[error("{message}")]
    Forwarded {
        /// HTTP status the leader answered.
        status: u16,
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// A checked connector config: its plugin, host settings and task configs.
pub(crate) type Plan = (Arc<LoadedPlugin>, HostSettings, Vec<Vec<(String, String)>>);

/// A connector's state for the status API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectorStatus {
    /// Connector name.
    pub name: String,
    /// `source` or `sink`, when the plugin is loaded.
    #[serde(rename = "type")]
    pub kind: Option<PluginKind>,
    /// Connector-level state.
    pub connector: ConnectorState,
    /// One entry per task.
    pub tasks: Vec<TaskStatusEntry>,
}

/// Connector-level state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectorState {
    /// `RUNNING`, `PAUSED`, `STOPPED` (KIP-980; the seed's disabled), `FAILED` (some task
    /// failed), or `UNASSIGNED` (no tasks: see `error`).
    pub state: &'static str,
    /// The plugin name.
    pub plugin: Option<String>,
    /// Why the connector is not running.
    pub error: Option<String>,
}

/// A task's status with its index and the worker that runs it.
#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct TaskStatusEntry {
    /// Task index.
    pub id: u32,
    /// The worker the allocation gives it to.
    pub worker_id: String,
    /// The task's status (`None` when its worker did not answer).
    #[serde(flatten)]
    pub status: Option<TaskStatus>,
}

/// A task running on this worker, for `/getAllocatedTask`.
#[derive(Serialize, serde::Deserialize, Clone, utoipa::ToSchema)]
pub struct LocalTask {
    /// Connector name.
    pub connector: String,
    /// Task index.
    pub task: u32,
    /// Its status.
    pub status: TaskStatus,
}

/// What REST reads see: updated at the end of every reconcile, read without waiting for one.
#[derive(Default)]
struct View {
    /// The live workers.
    members: BTreeSet<String>,
    /// Per connector: its plugin kind and name and task count, or why it has no tasks.
    plans: BTreeMap<String, Result<(PluginKind, String, u32), String>>,
    /// Per connector: each task's config from `task-configs()`.
    task_configs: BTreeMap<String, Vec<Vec<(String, String)>>>,
    /// Tasks running here and their status cells.
    running: BTreeMap<(String, u32), StatusCell>,
}

/// The worker.
pub struct Worker {
    deps: TaskDeps,
    id: String,
    /// Publishes changes to the other workers; `None` runs alone (benchmarks, unit tests).
    sync: Option<Arc<ClusterSync>>,
    /// Asks other workers (status, forwarded writes).
    peers: PeerClient,
    /// The catalog's write side (serialization, versions, plans made while validating).
    catalog: catalog::Catalog,
    /// The supervisor's state; only a reconcile takes it.
    supervisor: tokio::sync::Mutex<supervisor::Supervisor>,
    /// What REST reads.
    view: RwLock<View>,
    /// What `/readyz` reports.
    readiness: readiness::Readiness,
    /// `clusterName`, for `GET /`.
    cluster_name: Option<String>,
}

impl Worker {
    /// A worker with id `id`, alone until [`Self::members_changed`] says otherwise; call
    /// [`Self::reconcile_now`] to start the stored connectors.
    pub fn new(
        deps: TaskDeps,
        id: &str,
        sync: Option<Arc<ClusterSync>>,
        peers: PeerClient,
        cluster_name: Option<String>,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            deps,
            id: id.to_string(),
            sync,
            peers,
            readiness: readiness::Readiness::default(),
            cluster_name,
            catalog: catalog::Catalog::default(),
            supervisor: tokio::sync::Mutex::new(supervisor::Supervisor::new(id)),
            view: RwLock::new(View {
                members: BTreeSet::from([id.to_string()]),
                ..Default::default()
            }),
        })
    }

    /// The services tasks use (for the REST layer's plugin listing).
    pub fn deps(&self) -> &TaskDeps {
        &self.deps
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `clusterName`, when set.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster_name.as_deref()
    }

    /// The seed's `logMsgDetail`: turns per-record logging on or off here at once, and on
    /// every other worker through the config topic.
    pub async fn set_record_logging(&self, enabled: bool) -> Result<(), WorkerError> {
        crate::task::record_log::set(enabled);
        if let Some(sync) = &self.sync {
            sync.publish_config(&crate::cluster::ConfigEvent::RecordLogging { enabled })
                .await
                .map_err(|e| WorkerError::Cluster(e.to_string()))?;
        }
        Ok(())
    }

    /// What the worker's loops last saw, for `/readyz`.
    pub fn readiness(&self) -> &readiness::Readiness {
        &self.readiness
    }

    /// The live config of a connector and whether it is enabled.
    fn live_config(&self, name: &str) -> Result<(ConnectorConfig, bool), WorkerError> {
        self.deps
            .store
            .record(name)
            .and_then(|r| r.config.map(|c| (c, r.enabled)))
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))
    }

    /// Connector names.
    pub async fn names(&self) -> Vec<String> {
        self.configs().await.into_keys().collect()
    }

    /// A connector's config.
    pub async fn config(&self, name: &str) -> Result<ConnectorConfig, WorkerError> {
        self.live_config(name).map(|(c, _)| c)
    }

    /// `config` as answers show it: secret values (by key name, or declared secret by the
    /// connector's plugin) replaced by `[hidden]`.
    pub fn redacted(&self, config: &ConnectorConfig) -> ConnectorConfig {
        crate::security::secrets::redact(config, &self.declared_secrets(config))
    }

    /// The keys `config`'s plugin declares secret.
    fn declared_secrets(&self, config: &ConnectorConfig) -> Vec<String> {
        config
            .get(crate::config::CONNECTOR_CLASS)
            .and_then(|class| self.deps.registry.resolve(class))
            .map(|plugin| plugin.info.secret_keys())
            .unwrap_or_default()
    }

    /// Every connector's config.
    pub async fn configs(&self) -> BTreeMap<String, ConnectorConfig> {
        self.deps
            .store
            .records()
            .into_iter()
            .filter_map(|(n, r)| r.config.map(|c| (n, c)))
            .collect()
    }

    /// The tasks running on this worker.
    pub async fn local_tasks(&self) -> Vec<LocalTask> {
        let view = self.view.read().unwrap();
        view.running
            .iter()
            .map(|((connector, task), status)| LocalTask {
                connector: connector.clone(),
                task: *task,
                status: status.get(),
            })
            .collect()
    }

    /// The live workers and their REST addresses (`None` until a worker announced it).
    pub async fn members(&self) -> Vec<(String, Option<String>)> {
        let members = self.view.read().unwrap().members.clone();
        let addresses = self.deps.store.worker_addresses();
        members
            .into_iter()
            .map(|m| {
                let addr = addresses.get(&m).cloned();
                (m, addr)
            })
            .collect()
    }

    /// The worker that serializes config writes: the lowest live `workerId`.
    pub fn leader(&self) -> String {
        let view = self.view.read().unwrap();
        view.members
            .iter()
            .next()
            .cloned()
            .unwrap_or_else(|| self.id.clone())
    }

    /// Where each task of each connector is allocated: connector -> [(task, worker)].
    pub async fn allocation(&self) -> BTreeMap<String, Vec<(u32, String)>> {
        let view = self.view.read().unwrap();
        let allocator = TaskAllocator::new(&view.members);
        view.plans
            .iter()
            .filter_map(|(name, plan)| {
                let (_, _, count) = plan.as_ref().ok()?;
                let tasks = (0..*count)
                    .filter_map(|t| Some((t, allocator.owner(name, t)?.to_string())))
                    .collect();
                Some((name.clone(), tasks))
            })
            .collect()
    }

    /// A config event from the topic: applied if newer, then reconciled.
    pub async fn apply_remote(&self, event: crate::cluster::ConfigEvent) {
        use crate::cluster::ConfigEvent;
        match event {
            ConfigEvent::Worker { worker, rest } => self.apply_address(&worker, &rest),
            ConfigEvent::RecordLogging { enabled } => crate::task::record_log::set(enabled),
            ConfigEvent::Connector { name, record } => {
                if self.apply_record(&name, record) {
                    tracing::info!(connector = %name, "config update from the cluster applied");
                    self.reconcile_now().await;
                }
            }
            ConfigEvent::Snapshot {
                connectors,
                workers,
            } => {
                let mut changed = false;
                for (name, record) in connectors {
                    changed |= self.apply_record(&name, record);
                }
                for (worker, rest) in workers {
                    self.apply_address(&worker, &rest);
                }
                if changed {
                    tracing::info!("config snapshot from the cluster applied");
                    self.reconcile_now().await;
                }
            }
        }
    }

    fn apply_address(&self, worker: &str, rest: &str) {
        if let Err(e) = self.deps.store.put_worker_address(worker, rest) {
            tracing::error!(worker, "cannot store a worker's address: {e}");
        }
    }

    /// Stores a record if newer; whether it was.
    fn apply_record(&self, name: &str, record: ConnectorRecord) -> bool {
        self.deps
            .store
            .apply(name, record)
            .inspect_err(
                |e| tracing::error!(connector = %name, "cannot store a config update: {e}"),
            )
            .unwrap_or(false)
    }

    /// Positions delivered on another worker (ignored for unknown or deleted connectors).
    pub fn apply_positions(&self, event: crate::cluster::PositionEvent) {
        if self
            .deps
            .store
            .record(&event.connector)
            .is_some_and(|r| r.config.is_some() && event.epoch >= r.positions_epoch())
        {
            self.deps
                .store
                .merge_positions(&event.connector, event.positions);
        }
    }
}

/// A version newer than every one in `records`, from the leader's clock (plus `skew`, a test
/// knob) but never below the newest seen plus one, so a clock that is behind cannot make a
/// write older than the one before it.
pub(crate) fn next_version(
    records: &BTreeMap<String, ConnectorRecord>,
    worker: &str,
    skew_ms: i64,
) -> Version {
    let seen = records.values().map(|r| r.version.ms).max().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        .saturating_add(skew_ms)
        .max(0) as u64;
    Version {
        ms: now.max(seen + 1),
        worker: worker.to_string(),
    }
}
