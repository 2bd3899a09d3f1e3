//! The worker: owns the connectors of this process, turns REST requests into started and
//! stopped tasks, and resumes stored connectors on start and when their plugin appears.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{CONNECTOR_CLASS, CONNECTOR_NAME, ConnectorConfig, HostSettings};
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
}

/// A checked connector config: its plugin, host settings and task configs.
type Plan = (Arc<LoadedPlugin>, HostSettings, Vec<Vec<(String, String)>>);

/// One connector on this worker.
struct Connector {
    config: ConnectorConfig,
    /// The plugin it runs, or `None` while its class is not loaded.
    plugin: Option<Arc<LoadedPlugin>>,
    tasks: Vec<TaskHandle>,
    /// Why the connector has no tasks (plugin missing, validation failed after a reload).
    error: Option<String>,
}

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
    /// `RUNNING`, `FAILED` (some task failed) or `UNASSIGNED` (no tasks: see `error`).
    pub state: &'static str,
    /// The plugin name.
    pub plugin: Option<String>,
    /// Why the connector is not running.
    pub error: Option<String>,
}

/// A task's status with its index.
#[derive(Serialize)]
pub struct TaskStatusEntry {
    /// Task index.
    pub id: u32,
    /// The task's status.
    #[serde(flatten)]
    pub status: TaskStatus,
}

/// The worker.
pub struct Worker {
    deps: TaskDeps,
    connectors: tokio::sync::Mutex<BTreeMap<String, Connector>>,
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

impl Worker {
    /// A worker with no connectors yet; call [`Self::resume_stored`] to start stored ones.
    pub fn new(deps: TaskDeps) -> Arc<Worker> {
        Arc::new(Worker {
            deps,
            connectors: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// The services tasks use (for the REST layer's plugin listing).
    pub fn deps(&self) -> &TaskDeps {
        &self.deps
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

    fn start_tasks(
        &self,
        name: &str,
        plugin: &Arc<LoadedPlugin>,
        settings: &HostSettings,
        configs: Vec<Vec<(String, String)>>,
    ) -> Vec<TaskHandle> {
        configs
            .into_iter()
            .enumerate()
            .map(|(index, config)| {
                let spec = TaskSpec {
                    ids: TaskIds {
                        connector: name.to_string(),
                        task: index as u32,
                    },
                    config,
                    settings: settings.clone(),
                    plugin: plugin.clone(),
                };
                task::spawn(spec, self.deps.clone())
            })
            .collect()
    }

    /// Starts the planned tasks of a connector.
    fn launch(
        &self,
        name: &str,
        config: ConnectorConfig,
        (plugin, settings, configs): Plan,
    ) -> Connector {
        let tasks = self.start_tasks(name, &plugin, &settings, configs);
        tracing::info!(connector = name, plugin = %plugin.name, tasks = tasks.len(), "connector started");
        Connector {
            config,
            plugin: Some(plugin),
            tasks,
            error: None,
        }
    }

    /// Creates and starts a connector; `Exists` if the name is taken.
    pub async fn create(&self, name: &str, config: ConnectorConfig) -> Result<(), WorkerError> {
        check_name(name)?;
        let mut connectors = self.connectors.lock().await;
        if connectors.contains_key(name) {
            return Err(WorkerError::Exists(name.to_string()));
        }
        let plan = self.plan(name, &config).await?;
        self.deps.store.put_connector(name, Some(&config))?;
        connectors.insert(name.to_string(), self.launch(name, config, plan));
        Ok(())
    }

    /// Replaces a connector's config (creating it when absent) and restarts its tasks.
    /// Returns true when the connector was created.
    pub async fn put_config(
        &self,
        name: &str,
        config: ConnectorConfig,
    ) -> Result<bool, WorkerError> {
        check_name(name)?;
        let mut connectors = self.connectors.lock().await;
        let plan = self.plan(name, &config).await?;
        self.deps.store.put_connector(name, Some(&config))?;
        let created = match connectors.remove(name) {
            Some(old) => {
                stop_tasks(old.tasks).await;
                false
            }
            None => true,
        };
        connectors.insert(name.to_string(), self.launch(name, config, plan));
        Ok(created)
    }

    /// The seed's update: the given keys overwrite the stored ones, others are kept.
    pub async fn merge_config(
        &self,
        name: &str,
        patch: ConnectorConfig,
    ) -> Result<(), WorkerError> {
        let mut config = self.config(name).await?;
        config.extend(patch);
        self.put_config(name, config).await.map(|_| ())
    }

    /// Stops a connector's tasks and starts them again on the same config.
    pub async fn restart(&self, name: &str) -> Result<(), WorkerError> {
        let config = self.config(name).await?;
        self.put_config(name, config).await.map(|_| ())
    }

    /// Stops and forgets a connector.
    pub async fn delete(&self, name: &str) -> Result<(), WorkerError> {
        let mut connectors = self.connectors.lock().await;
        let old = connectors
            .remove(name)
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        self.deps.store.put_connector(name, None)?;
        stop_tasks(old.tasks).await;
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Connector names.
    pub async fn names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    /// A connector's config.
    pub async fn config(&self, name: &str) -> Result<ConnectorConfig, WorkerError> {
        let connectors = self.connectors.lock().await;
        connectors
            .get(name)
            .map(|c| c.config.clone())
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))
    }

    /// Every connector's config.
    pub async fn configs(&self) -> BTreeMap<String, ConnectorConfig> {
        let connectors = self.connectors.lock().await;
        connectors
            .iter()
            .map(|(n, c)| (n.clone(), c.config.clone()))
            .collect()
    }

    /// A connector's status.
    pub async fn status(&self, name: &str) -> Result<ConnectorStatus, WorkerError> {
        let connectors = self.connectors.lock().await;
        let c = connectors
            .get(name)
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        let tasks: Vec<TaskStatusEntry> = c
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| TaskStatusEntry {
                id: i as u32,
                status: t.status.get(),
            })
            .collect();
        let state = if c.tasks.is_empty() {
            "UNASSIGNED"
        } else if tasks
            .iter()
            .any(|t| t.status.state == task::TaskLifecycle::Failed)
        {
            "FAILED"
        } else {
            "RUNNING"
        };
        Ok(ConnectorStatus {
            name: name.to_string(),
            kind: c.plugin.as_ref().map(|p| p.kind),
            connector: ConnectorState {
                state,
                plugin: c.plugin.as_ref().map(|p| p.name.clone()),
                error: c.error.clone(),
            },
            tasks,
        })
    }

    /// Starts every stored connector; one whose plugin is missing waits for a reload.
    pub async fn resume_stored(&self) {
        for (name, config) in self.deps.store.connectors() {
            let mut connectors = self.connectors.lock().await;
            let entry = match self.plan(&name, &config).await {
                Ok(plan) => self.launch(&name, config, plan),
                Err(e) => {
                    tracing::warn!(connector = %name, "connector not started: {e}");
                    Connector {
                        config,
                        plugin: None,
                        tasks: Vec::new(),
                        error: Some(e.to_string()),
                    }
                }
            };
            connectors.insert(name, entry);
        }
    }

    /// After a reload: starts connectors that were waiting for a plugin. (Tasks of a changed
    /// plugin follow the new version by themselves.)
    pub async fn plugins_reloaded(&self, report: &ReloadReport) {
        if report.added.is_empty() {
            return;
        }
        let mut connectors = self.connectors.lock().await;
        let waiting: Vec<String> = connectors
            .iter()
            .filter(|(_, c)| c.tasks.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for name in waiting {
            let config = connectors[&name].config.clone();
            match self.plan(&name, &config).await {
                Ok(plan) => {
                    let entry = self.launch(&name, config, plan);
                    connectors.insert(name, entry);
                }
                Err(e) => connectors.get_mut(&name).expect("listed").error = Some(e.to_string()),
            }
        }
    }

    /// Stops every task (finishing in-flight deliveries).
    pub async fn shutdown(&self) {
        let mut connectors = self.connectors.lock().await;
        let tasks: Vec<TaskHandle> = connectors
            .values_mut()
            .flat_map(|c| c.tasks.drain(..))
            .collect();
        stop_tasks(tasks).await;
    }
}

/// Cancels tasks and waits (bounded) for them to finish their in-flight work.
async fn stop_tasks(tasks: Vec<TaskHandle>) {
    for t in &tasks {
        t.stop.cancel();
    }
    for t in tasks {
        let abort = t.join.abort_handle();
        if tokio::time::timeout(STOP_GRACE, t.join).await.is_err() {
            tracing::warn!("task did not stop within {STOP_GRACE:?}; aborting it");
            abort.abort();
        }
    }
}
