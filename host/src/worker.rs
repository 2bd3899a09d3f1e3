//! The worker: holds the cluster's connector records (applied from REST requests here and from
//! the config topic), and runs the tasks the [`TaskAllocator`] gives this worker for the current
//! member list. Every change (a config, the member list, a plugin) ends in [`Worker::reconcile`],
//! which starts what this worker owns and is not running, and stops what it runs and no longer
//! owns (or whose task config changed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cluster::sync::ClusterSync;
use crate::cluster::{ConfigEvent, ConnectorRecord, TaskAllocator, Version};
use crate::config::{CONNECTOR_CLASS, CONNECTOR_NAME, ConnectorConfig, HostSettings, TASKS_NUM};
use crate::plugin::{LoadedPlugin, ReloadReport};
use crate::store::StoreError;
use crate::task::{self, TaskDeps, TaskHandle, TaskSpec, TaskStatus};
use crate::wasm::state::TaskIds;
use crate::wasm::{GuestFault, PluginKind};

/// How long a stopping task may take to finish its in-flight deliveries.
const STOP_GRACE: Duration = Duration::from_secs(20);

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
    /// The config could not be persisted.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change could not be published to the cluster (RocketMQ unreachable).
    #[error("cannot publish the change to the cluster: {0}")]
    Cluster(String),
}

/// A checked connector config: its plugin, host settings and task configs.
type Plan = (Arc<LoadedPlugin>, HostSettings, Vec<Vec<(String, String)>>);

/// A connector's state for the status API.
#[derive(Serialize)]
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
#[derive(Serialize)]
pub struct ConnectorState {
    /// `RUNNING`, `FAILED` (some task failed), `DISABLED`, or `UNASSIGNED` (no tasks: see
    /// `error`).
    pub state: &'static str,
    /// The plugin name.
    pub plugin: Option<String>,
    /// Why the connector is not running.
    pub error: Option<String>,
}

/// A task's status with its index and the worker that runs it.
#[derive(Serialize, Clone)]
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
#[derive(Serialize, serde::Deserialize, Clone)]
pub struct LocalTask {
    /// Connector name.
    pub connector: String,
    /// Task index.
    pub task: u32,
    /// Its status.
    pub status: TaskStatus,
}

/// The worker.
pub struct Worker {
    deps: TaskDeps,
    id: String,
    /// Publishes changes to the other workers; `None` runs alone (benchmarks, unit tests).
    sync: Option<Arc<ClusterSync>>,
    state: tokio::sync::Mutex<State>,
}

/// What the worker runs and what it bases that on.
struct State {
    /// The live workers.
    members: BTreeSet<String>,
    /// The checked plan of each connector's current version.
    plans: BTreeMap<String, Planned>,
    /// Tasks running here.
    running: BTreeMap<(String, u32), Running>,
}

struct Planned {
    version: Version,
    plan: Result<Plan, String>,
}

struct Running {
    handle: TaskHandle,
    /// What the task was started with: a change restarts it.
    fingerprint: String,
}

/// Checks a connector name (it becomes part of group names and file names).
fn check_name(name: &str) -> Result<(), WorkerError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(WorkerError::InvalidName(name.to_string()))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Worker {
    /// A worker with id `id`, alone until [`Self::members_changed`] says otherwise; call
    /// [`Self::reconcile_now`] to start the stored connectors.
    pub fn new(deps: TaskDeps, id: &str, sync: Option<Arc<ClusterSync>>) -> Arc<Worker> {
        Arc::new(Worker {
            deps,
            id: id.to_string(),
            sync,
            state: tokio::sync::Mutex::new(State {
                members: BTreeSet::from([id.to_string()]),
                plans: BTreeMap::new(),
                running: BTreeMap::new(),
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

    /// Checks a config and plans its tasks: plugin, host settings, required keys, and the
    /// guest's own `validate()` and `task-configs()`.
    async fn plan(&self, name: &str, config: &ConnectorConfig) -> Result<Plan, WorkerError> {
        let class = config
            .get(CONNECTOR_CLASS)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| WorkerError::MissingKey(CONNECTOR_CLASS.into()))?;
        let plugin =
            self.deps
                .registry
                .resolve(class)
                .ok_or_else(|| WorkerError::UnknownClass {
                    class: class.clone(),
                    known: self.deps.registry.known_classes(),
                })?;
        let settings = HostSettings::from_config(config)
            .map_err(|e| WorkerError::InvalidConfig(e.to_string()))?;
        let grant = settings.kafka.clone();
        tokio::task::spawn_blocking(move || grant.validate())
            .await
            .map_err(|e| WorkerError::InvalidConfig(format!("kafka properties check failed: {e}")))?
            .map_err(WorkerError::InvalidConfig)?;
        for key in plugin.info.config_keys.iter().filter(|k| k.required) {
            if config.get(&key.name).is_none_or(|v| v.is_empty()) {
                return Err(WorkerError::MissingKey(key.name.clone()));
            }
        }
        if plugin.kind == PluginKind::Sink && settings.rocketmq_topics.is_empty() {
            return Err(WorkerError::MissingKey(
                crate::config::ROCKETMQ_TOPICS.into(),
            ));
        }
        let mut pairs: Vec<(String, String)> =
            config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // Connectors name their consumer groups after the connector (the seed's convention).
        pairs.push((CONNECTOR_NAME.into(), name.to_string()));
        let tasks = plugin
            .code
            .plan_tasks(self.deps.registry.runtime(), &pairs, settings.tasks)
            .await
            .map_err(|fault| match fault {
                GuestFault::InvalidConfig(m) => WorkerError::InvalidConfig(m),
                other => WorkerError::InvalidConfig(format!(
                    "the connector's validate() failed: {other}"
                )),
            })?;
        Ok((plugin, settings, tasks))
    }

    /// A version newer than any this worker has seen.
    fn next_version(&self) -> Version {
        let seen = self
            .deps
            .store
            .records()
            .values()
            .map(|r| r.version.ms)
            .max()
            .unwrap_or(0);
        Version {
            ms: now_ms().max(seen + 1),
            worker: self.id.clone(),
        }
    }

    /// Publishes a change to the cluster, applies it here and reconciles.
    async fn commit(
        &self,
        state: &mut State,
        name: &str,
        config: Option<ConnectorConfig>,
        enabled: bool,
        plan: Option<Plan>,
        restart: bool,
    ) -> Result<(), WorkerError> {
        let generation = self
            .deps
            .store
            .record(name)
            .filter(|r| r.config.is_some())
            .map_or(0, |r| r.generation + u64::from(restart));
        let record = ConnectorRecord {
            version: self.next_version(),
            config,
            enabled,
            generation,
        };
        if let Some(sync) = &self.sync {
            let event = ConfigEvent::Connector {
                name: name.to_string(),
                record: record.clone(),
            };
            sync.publish_config(&event)
                .await
                .map_err(|e| WorkerError::Cluster(e.to_string()))?;
        }
        let version = record.version.clone();
        self.deps.store.apply(name, record)?;
        match plan {
            Some(plan) => {
                state.plans.insert(
                    name.to_string(),
                    Planned {
                        version,
                        plan: Ok(plan),
                    },
                );
            }
            None => {
                state.plans.remove(name);
            }
        }
        self.reconcile(state).await;
        Ok(())
    }

    /// The live config of a connector.
    fn live_config(&self, name: &str) -> Result<(ConnectorConfig, bool), WorkerError> {
        self.deps
            .store
            .record(name)
            .and_then(|r| r.config.map(|c| (c, r.enabled)))
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))
    }

    /// Creates and starts a connector; `Exists` if the name is taken.
    pub async fn create(&self, name: &str, config: ConnectorConfig) -> Result<(), WorkerError> {
        check_name(name)?;
        let mut state = self.state.lock().await;
        if self.live_config(name).is_ok() {
            return Err(WorkerError::Exists(name.to_string()));
        }
        let plan = self.plan(name, &config).await?;
        self.commit(&mut state, name, Some(config), true, Some(plan), false)
            .await
    }

    /// Replaces a connector's config (creating it when absent); only tasks whose task config
    /// changed restart. Returns true when the connector was created.
    pub async fn put_config(
        &self,
        name: &str,
        config: ConnectorConfig,
    ) -> Result<bool, WorkerError> {
        check_name(name)?;
        let mut state = self.state.lock().await;
        let (created, enabled) = match self.live_config(name) {
            Ok((_, enabled)) => (false, enabled),
            Err(_) => (true, true),
        };
        let plan = self.plan(name, &config).await?;
        self.commit(&mut state, name, Some(config), enabled, Some(plan), false)
            .await?;
        Ok(created)
    }

    /// The seed's update: the given keys overwrite the stored ones, others are kept.
    pub async fn merge_config(
        &self,
        name: &str,
        patch: ConnectorConfig,
    ) -> Result<(), WorkerError> {
        let (mut config, _) = self.live_config(name)?;
        config.extend(patch);
        self.put_config(name, config).await.map(|_| ())
    }

    /// The seed's `taskNum`: sets `tasks.num`; only the tasks added or removed start or stop.
    pub async fn set_task_count(&self, name: &str, tasks: u32) -> Result<(), WorkerError> {
        let patch = ConnectorConfig::from([(TASKS_NUM.to_string(), tasks.to_string())]);
        self.merge_config(name, patch).await
    }

    /// Enables or disables a connector (a disabled one keeps its config and runs no task).
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), WorkerError> {
        let mut state = self.state.lock().await;
        let (config, was) = self.live_config(name)?;
        if was == enabled {
            return Ok(());
        }
        self.commit(&mut state, name, Some(config), enabled, None, false)
            .await
    }

    /// Restarts every task of a connector, on whichever worker runs it (a new generation of
    /// the same config).
    pub async fn restart(&self, name: &str) -> Result<(), WorkerError> {
        let mut state = self.state.lock().await;
        let (config, enabled) = self.live_config(name)?;
        self.commit(&mut state, name, Some(config), enabled, None, true)
            .await
    }

    /// Stops and forgets a connector.
    pub async fn delete(&self, name: &str) -> Result<(), WorkerError> {
        let mut state = self.state.lock().await;
        self.live_config(name)?;
        self.commit(&mut state, name, None, false, None, false)
            .await?;
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Connector names.
    pub async fn names(&self) -> Vec<String> {
        self.configs().await.into_keys().collect()
    }

    /// A connector's config.
    pub async fn config(&self, name: &str) -> Result<ConnectorConfig, WorkerError> {
        self.live_config(name).map(|(c, _)| c)
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
        let state = self.state.lock().await;
        state
            .running
            .iter()
            .map(|((connector, task), r)| LocalTask {
                connector: connector.clone(),
                task: *task,
                status: r.handle.status.get(),
            })
            .collect()
    }

    /// The live workers and their REST addresses (`None` until a worker announced it).
    pub async fn members(&self) -> Vec<(String, Option<String>)> {
        let members = self.state.lock().await.members.clone();
        let addresses = self.deps.store.worker_addresses();
        members
            .into_iter()
            .map(|m| {
                let addr = addresses.get(&m).cloned();
                (m, addr)
            })
            .collect()
    }

    /// Where each task of each connector is allocated: connector -> [(task, worker)].
    pub async fn allocation(&self) -> BTreeMap<String, Vec<(u32, String)>> {
        let state = self.state.lock().await;
        let allocator = TaskAllocator::new(&state.members);
        state
            .plans
            .iter()
            .filter_map(|(name, p)| {
                let (_, _, configs) = p.plan.as_ref().ok()?;
                let tasks = (0..configs.len() as u32)
                    .filter_map(|t| Some((t, allocator.owner(name, t)?.to_string())))
                    .collect();
                Some((name.clone(), tasks))
            })
            .collect()
    }

    /// The tasks running on every live worker (asking the others), by worker id.
    pub async fn cluster_tasks(&self) -> BTreeMap<String, Result<Vec<LocalTask>, String>> {
        let members: BTreeSet<String> = self.members().await.into_iter().map(|(w, _)| w).collect();
        self.tasks_on(&members).await
    }

    /// What each of `workers` runs: this worker answers itself, the others are asked at once
    /// (each answer bounded by the peer timeout).
    async fn tasks_on(
        &self,
        workers: &BTreeSet<String>,
    ) -> BTreeMap<String, Result<Vec<LocalTask>, String>> {
        let addresses = self.deps.store.worker_addresses();
        let answers = futures::future::join_all(workers.iter().map(|w| async {
            let tasks = if *w == self.id {
                Ok(self.local_tasks().await)
            } else {
                self.remote_tasks(addresses.get(w).map(String::as_str))
                    .await
            };
            (w.clone(), tasks)
        }))
        .await;
        answers.into_iter().collect()
    }

    async fn remote_tasks(&self, addr: Option<&str>) -> Result<Vec<LocalTask>, String> {
        let addr = addr.ok_or("the worker has not announced its REST address yet")?;
        let answer = crate::cluster::peer::get_json(addr, "/getAllocatedTask")
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_value(answer).map_err(|e| format!("worker at {addr}: {e}"))
    }

    /// A connector's status, with every task wherever it runs.
    pub async fn status(&self, name: &str) -> Result<ConnectorStatus, WorkerError> {
        let (_, enabled) = self.live_config(name)?;
        let (kind, plugin, error, owners, local) = {
            let state = self.state.lock().await;
            let allocator = TaskAllocator::new(&state.members);
            let planned = state.plans.get(name);
            let (kind, plugin, error, count) = match planned.map(|p| &p.plan) {
                Some(Ok((plugin, _, configs))) => (
                    Some(plugin.kind),
                    Some(plugin.name.clone()),
                    None,
                    configs.len(),
                ),
                Some(Err(e)) => (None, None, Some(e.clone()), 0),
                None => (None, None, None, 0),
            };
            let owners: Vec<(u32, String)> = (0..count as u32)
                .filter_map(|t| Some((t, allocator.owner(name, t)?.to_string())))
                .collect();
            let local: BTreeMap<u32, TaskStatus> = state
                .running
                .iter()
                .filter(|((c, _), _)| c == name)
                .map(|((_, t), r)| (*t, r.handle.status.get()))
                .collect();
            (kind, plugin, error, owners, local)
        };
        let peers: BTreeSet<String> = owners
            .iter()
            .map(|(_, w)| w.clone())
            .filter(|w| *w != self.id)
            .collect();
        let remote: BTreeMap<String, Vec<LocalTask>> = self
            .tasks_on(&peers)
            .await
            .into_iter()
            .filter_map(|(w, tasks)| tasks.ok().map(|t| (w, t)))
            .collect();
        let tasks: Vec<TaskStatusEntry> = owners
            .into_iter()
            .map(|(t, worker)| {
                let status = if worker == self.id {
                    local.get(&t).cloned()
                } else {
                    remote.get(&worker).and_then(|tasks| {
                        tasks
                            .iter()
                            .find(|l| l.connector == name && l.task == t)
                            .map(|l| l.status.clone())
                    })
                };
                TaskStatusEntry {
                    id: t,
                    worker_id: worker,
                    status,
                }
            })
            .collect();
        let state = if !enabled {
            "DISABLED"
        } else if tasks.is_empty() {
            "UNASSIGNED"
        } else if tasks.iter().any(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.state == task::TaskLifecycle::Failed)
        }) {
            "FAILED"
        } else {
            "RUNNING"
        };
        Ok(ConnectorStatus {
            name: name.to_string(),
            kind,
            connector: ConnectorState {
                state,
                plugin,
                error,
            },
            tasks,
        })
    }

    /// Starts what this worker owns (from the stored records and the current members).
    pub async fn reconcile_now(&self) {
        let mut state = self.state.lock().await;
        self.reconcile(&mut state).await;
    }

    /// A config event from the topic: applied if newer.
    pub async fn apply_remote(&self, event: ConfigEvent) {
        match event {
            ConfigEvent::Worker { worker, rest } => {
                if let Err(e) = self.deps.store.put_worker_address(&worker, &rest) {
                    tracing::error!(worker, "cannot store a worker's address: {e}");
                }
            }
            ConfigEvent::Connector { name, record } => {
                let mut state = self.state.lock().await;
                match self.deps.store.apply(&name, record) {
                    Ok(true) => {
                        tracing::info!(connector = %name, "config update from the cluster applied");
                        state.plans.remove(&name);
                        self.reconcile(&mut state).await;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(connector = %name, "cannot store a config update: {e}")
                    }
                }
            }
        }
    }

    /// Positions delivered on another worker (ignored for unknown or deleted connectors).
    pub fn apply_positions(&self, event: crate::cluster::PositionEvent) {
        if self
            .deps
            .store
            .record(&event.connector)
            .is_some_and(|r| r.config.is_some())
        {
            self.deps
                .store
                .merge_positions(&event.connector, event.positions);
        }
    }

    /// The member list changed: re-allocate.
    pub async fn members_changed(&self, members: BTreeSet<String>) {
        let mut state = self.state.lock().await;
        if state.members == members {
            return;
        }
        tracing::info!(?members, "cluster members changed");
        state.members = members;
        self.reconcile(&mut state).await;
    }

    /// After a reload: plans that failed (a missing plugin) are made again.
    pub async fn plugins_reloaded(&self, report: &ReloadReport) {
        if report.added.is_empty() {
            return;
        }
        let mut state = self.state.lock().await;
        state.plans.retain(|_, p| p.plan.is_ok());
        self.reconcile(&mut state).await;
    }

    /// Plans what changed, then starts and stops tasks so that this worker runs exactly what
    /// the allocation gives it.
    async fn reconcile(&self, state: &mut State) {
        let allocator = TaskAllocator::new(&state.members);
        let mut desired: BTreeMap<(String, u32), (TaskSpec, String)> = BTreeMap::new();
        for (name, record) in self.deps.store.records() {
            let Some(config) = record.config.filter(|_| record.enabled) else {
                state.plans.remove(&name);
                continue;
            };
            if state
                .plans
                .get(&name)
                .is_none_or(|p| p.version != record.version)
            {
                let plan = self.plan(&name, &config).await.map_err(|e| {
                    tracing::warn!(connector = %name, "connector not started: {e}");
                    e.to_string()
                });
                state.plans.insert(
                    name.clone(),
                    Planned {
                        version: record.version.clone(),
                        plan,
                    },
                );
            }
            let Ok((plugin, settings, configs)) = &state.plans[&name].plan else {
                continue;
            };
            for (index, task_config) in configs.iter().enumerate() {
                let index = index as u32;
                if allocator.owner(&name, index) != Some(self.id.as_str()) {
                    continue;
                }
                let fingerprint = format!(
                    "{}|{}",
                    record.generation,
                    fingerprint(&plugin.name, settings, task_config)
                );
                let spec = TaskSpec {
                    ids: TaskIds {
                        connector: name.clone(),
                        task: index,
                    },
                    config: task_config.clone(),
                    settings: settings.clone(),
                    plugin: plugin.clone(),
                };
                desired.insert((name.clone(), index), (spec, fingerprint));
            }
        }
        let stale: Vec<(String, u32)> = state
            .running
            .iter()
            .filter(|(key, r)| desired.get(*key).is_none_or(|(_, f)| *f != r.fingerprint))
            .map(|(key, _)| key.clone())
            .collect();
        let stopping: Vec<TaskHandle> = stale
            .iter()
            .filter_map(|k| state.running.remove(k))
            .map(|r| r.handle)
            .collect();
        if !stopping.is_empty() {
            tracing::info!(tasks = ?stale, "stopping tasks this worker no longer runs as they were");
            stop_tasks(stopping).await;
        }
        let mut started = Vec::new();
        for (key, (spec, fingerprint)) in desired {
            if state.running.contains_key(&key) {
                continue;
            }
            started.push(key.clone());
            let handle = task::spawn(spec, self.deps.clone());
            state.running.insert(
                key,
                Running {
                    handle,
                    fingerprint,
                },
            );
        }
        if !started.is_empty() {
            tracing::info!(tasks = ?started, "tasks started");
        }
    }

    /// Stops every task (finishing in-flight deliveries).
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        let tasks: Vec<TaskHandle> = std::mem::take(&mut state.running)
            .into_values()
            .map(|r| r.handle)
            .collect();
        stop_tasks(tasks).await;
    }
}

/// What a running task was started with; a change restarts it. `tasks.num` is left out: a
/// count change restarts only the tasks whose own config the connector changed with it.
fn fingerprint(plugin: &str, settings: &HostSettings, task_config: &[(String, String)]) -> String {
    let settings = HostSettings {
        tasks: 0,
        ..settings.clone()
    };
    let config: Vec<&(String, String)> =
        task_config.iter().filter(|(k, _)| k != TASKS_NUM).collect();
    format!("{plugin}|{settings:?}|{config:?}")
}

/// Cancels tasks and waits (bounded) for them to finish their in-flight work.
async fn stop_tasks(tasks: Vec<TaskHandle>) {
    for t in &tasks {
        t.stop.cancel();
    }
    let waits = tasks.into_iter().map(|t| async move {
        let abort = t.join.abort_handle();
        if tokio::time::timeout(STOP_GRACE, t.join).await.is_err() {
            tracing::warn!("task did not stop within {STOP_GRACE:?}; aborting it");
            abort.abort();
        }
    });
    futures::future::join_all(waits).await;
}
