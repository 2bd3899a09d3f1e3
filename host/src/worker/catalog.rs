//! The connector catalog's write side. Every write (create, replace, merge, task count,
//! enable/disable, restart, delete) is a [`ConfigWrite`] executed by the leader, the lowest live
//! `workerId`, one at a time: it checks the write against the records it holds, validates the
//! config with the guest, publishes the new record with a version above every one it has seen,
//! and acknowledges only once it has read the record back from the config topic. Other workers
//! forward their writes to it over REST, then wait until they have read the record themselves,
//! so a caller reads its own write from the worker it asked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Plan, Worker, WorkerError, next_version};
use crate::cluster::{ConfigEvent, ConnectorRecord, Version};
use crate::config::{CONNECTOR_CLASS, CONNECTOR_NAME, ConnectorConfig, HostSettings, TASKS_NUM};
use crate::model::TargetState;
use crate::wasm::{GuestFault, GuestLimits, PluginKind};

/// The internal route a worker forwards writes to.
pub const FORWARD_PATH: &str = "/internal/config-writes";
/// How long a write waits to read its record back from the config topic.
const READ_BACK: Duration = Duration::from_secs(15);
/// How long a worker keeps trying to reach the leader (it may be changing).
const FIND_LEADER: Duration = Duration::from_secs(15);

/// One write to the catalog, as the leader executes it (and as it travels when forwarded).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ConfigWrite {
    /// Create; refused if the name is taken.
    Create {
        /// Connector name.
        name: String,
        /// Its config.
        config: ConnectorConfig,
    },
    /// Create or replace the whole config.
    Put {
        /// Connector name.
        name: String,
        /// Its config.
        config: ConnectorConfig,
    },
    /// The given keys overwrite the stored ones (the seed's update).
    Merge {
        /// Connector name.
        name: String,
        /// Keys to set.
        patch: ConnectorConfig,
    },
    /// Enable or disable.
    SetEnabled {
        /// Connector name.
        name: String,
        /// The new state.
        enabled: bool,
    },
    /// Run, pause or stop (KIP-980).
    SetTarget {
        /// Connector name.
        name: String,
        /// The new target state.
        target: TargetState,
    },
    /// Restart every task (a new generation).
    Restart {
        /// Connector name.
        name: String,
    },
    /// Restart the listed tasks (per-task generations); with none, only plan the connector
    /// again (its `validate()` and `task-configs()`), restarting tasks whose config changed.
    RestartTasks {
        /// Connector name.
        name: String,
        /// Task indexes.
        tasks: Vec<u32>,
    },
    /// Replace a source's positions (KIP-875 offsets).
    SetPositions {
        /// Connector name.
        name: String,
        /// The new positions and their epoch.
        reset: crate::model::PositionsReset,
    },
    /// Delete.
    Delete {
        /// Connector name.
        name: String,
    },
}

impl ConfigWrite {
    fn name(&self) -> &str {
        match self {
            ConfigWrite::Create { name, .. }
            | ConfigWrite::Put { name, .. }
            | ConfigWrite::Merge { name, .. }
            | ConfigWrite::SetEnabled { name, .. }
            | ConfigWrite::SetTarget { name, .. }
            | ConfigWrite::Restart { name }
            | ConfigWrite::RestartTasks { name, .. }
            | ConfigWrite::SetPositions { name, .. }
            | ConfigWrite::Delete { name } => name,
        }
    }
}

/// What [`Worker::validate`] found.
pub struct Validation {
    /// The keys the plugin declares (empty when the class is unknown).
    pub declared: Vec<crate::wasm::ConfigKey>,
    /// Errors per key.
    pub errors: BTreeMap<String, Vec<String>>,
    /// Errors that name no key.
    pub general: Vec<String>,
}

/// What an acknowledged write did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteOutcome {
    /// The connector was created by it.
    pub created: bool,
    /// The version it was published with (`None`: nothing to change).
    pub version: Option<Version>,
}

/// A forwarded write's error, as the leader answers it.
#[derive(Serialize, Deserialize)]
pub struct ForwardedError {
    /// The error code.
    pub error: String,
    /// The message.
    pub message: String,
}

/// The catalog's write-side state.
#[derive(Default)]
pub(super) struct Catalog {
    /// Held while the leader executes one write: writes are serialized.
    serial: tokio::sync::Mutex<()>,
    /// Plans made while validating a write, kept for the reconcile that applies its version
    /// (so the guest's validate() runs once per write).
    prepared: Mutex<HashMap<(String, Version), Plan>>,
}

impl Catalog {
    /// The plan made for `name` at `version`, if the write made one.
    pub(super) fn take_prepared(&self, name: &str, version: &Version) -> Option<Plan> {
        self.prepared
            .lock()
            .unwrap()
            .remove(&(name.to_string(), version.clone()))
    }
}

/// Shifts this worker's clock for versions: a test knob (`FERRY_TEST_CLOCK_SKEW_MS`) that
/// shows a clock behind cannot revert a newer write.
fn clock_skew_ms() -> i64 {
    std::env::var("FERRY_TEST_CLOCK_SKEW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
    /// Creates and starts a connector; `Exists` if the name is taken.
    pub async fn create(&self, name: &str, config: ConnectorConfig) -> Result<(), WorkerError> {
        self.write(ConfigWrite::Create {
            name: name.into(),
            config,
        })
        .await
        .map(drop)
    }

    /// Replaces a connector's config (creating it when absent); only tasks whose task config
    /// changed restart. Returns true when the connector was created.
    pub async fn put_config(
        &self,
        name: &str,
        config: ConnectorConfig,
    ) -> Result<bool, WorkerError> {
        self.write(ConfigWrite::Put {
            name: name.into(),
            config,
        })
        .await
        .map(|o| o.created)
    }

    /// The seed's update: the given keys overwrite the stored ones, others are kept.
    pub async fn merge_config(
        &self,
        name: &str,
        patch: ConnectorConfig,
    ) -> Result<(), WorkerError> {
        self.write(ConfigWrite::Merge {
            name: name.into(),
            patch,
        })
        .await
        .map(drop)
    }

    /// The seed's `taskNum`: sets `tasks.num`; only the tasks added or removed start or stop.
    pub async fn set_task_count(&self, name: &str, tasks: u32) -> Result<(), WorkerError> {
        let patch = ConnectorConfig::from([(TASKS_NUM.to_string(), tasks.to_string())]);
        self.merge_config(name, patch).await
    }

    /// Enables or disables a connector (a disabled one keeps its config and runs no task).
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), WorkerError> {
        self.write(ConfigWrite::SetEnabled {
            name: name.into(),
            enabled,
        })
        .await
        .map(drop)
    }

    /// Runs, pauses or stops a connector, cluster-wide (KIP-980).
    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<(), WorkerError> {
        self.write(ConfigWrite::SetTarget {
            name: name.into(),
            target,
        })
        .await
        .map(drop)
    }

    /// Restarts the listed tasks of a connector, wherever they run; with none, plans the
    /// connector again.
    pub async fn restart_tasks(&self, name: &str, tasks: Vec<u32>) -> Result<(), WorkerError> {
        self.write(ConfigWrite::RestartTasks {
            name: name.into(),
            tasks,
        })
        .await
        .map(drop)
    }

    /// Kafka Connect's `POST /connectors/{name}/restart?includeTasks=&onlyFailed=`: plans the
    /// connector again, and with `include_tasks` restarts its tasks (only the `FAILED` ones
    /// with `only_failed`). With `only_failed` and no tasks, plans again only when the
    /// connector itself failed (its last plan was refused). Returns the restarted task ids.
    pub async fn restart_selected(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Vec<u32>, WorkerError> {
        let status = self.status(name).await?;
        let tasks: Vec<u32> = status
            .tasks
            .iter()
            .filter(|t| {
                include_tasks
                    && (!only_failed
                        || t.status
                            .as_ref()
                            .is_some_and(|s| s.state == crate::task::TaskLifecycle::Failed))
            })
            .map(|t| t.id)
            .collect();
        let connector_failed = status.connector.error.is_some();
        if only_failed && tasks.is_empty() && !connector_failed {
            return Ok(tasks);
        }
        self.restart_tasks(name, tasks.clone()).await?;
        Ok(tasks)
    }

    /// Restarts every task of a connector, on whichever worker runs it.
    pub async fn restart(&self, name: &str) -> Result<(), WorkerError> {
        self.write(ConfigWrite::Restart { name: name.into() })
            .await
            .map(drop)
    }

    /// Stops and forgets a connector.
    pub async fn delete(&self, name: &str) -> Result<(), WorkerError> {
        self.write(ConfigWrite::Delete { name: name.into() })
            .await
            .map(drop)?;
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Executes a write here when this worker leads (or runs alone), else forwards it to the
    /// leader and waits until this worker has read the result back.
    pub async fn write(&self, write: ConfigWrite) -> Result<WriteOutcome, WorkerError> {
        check_name(write.name())?;
        if self.sync.is_none() || self.leader() == self.id {
            return self.execute(write).await;
        }
        let deadline = tokio::time::Instant::now() + FIND_LEADER;
        loop {
            let leader = self.leader();
            if leader == self.id {
                return self.execute(write).await;
            }
            let attempt = self.forward(&leader, &write).await;
            match attempt {
                Err(WorkerError::NotLeader(..) | WorkerError::Cluster(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(outcome) => {
                    if let Some(version) = &outcome.version
                        && !self
                            .deps
                            .store
                            .wait_for_version(write.name(), version, READ_BACK)
                            .await
                    {
                        tracing::warn!(
                            connector = write.name(),
                            "the leader applied a write this worker has not read yet"
                        );
                    }
                    return Ok(outcome);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A write forwarded by another worker: executed only while this worker leads.
    pub async fn execute_forwarded(&self, write: ConfigWrite) -> Result<WriteOutcome, WorkerError> {
        let leader = self.leader();
        if leader != self.id {
            return Err(WorkerError::NotLeader(self.id.clone(), leader));
        }
        check_name(write.name())?;
        self.execute(write).await
    }

    async fn forward(
        &self,
        leader: &str,
        write: &ConfigWrite,
    ) -> Result<WriteOutcome, WorkerError> {
        let addresses = self.deps.store.worker_addresses();
        let addr = addresses.get(leader).ok_or_else(|| {
            WorkerError::Cluster(format!(
                "the leader `{leader}` has not announced its REST address yet"
            ))
        })?;
        let (status, answer) = self
            .peers
            .post_json::<_, serde_json::Value>(addr, FORWARD_PATH, write)
            .await
            .map_err(|e| {
                WorkerError::Cluster(format!("cannot reach the leader `{leader}`: {e}"))
            })?;
        if status == 200 {
            return serde_json::from_value(answer).map_err(|e| {
                WorkerError::Cluster(format!(
                    "the leader `{leader}` answered something else: {e}"
                ))
            });
        }
        let error: ForwardedError = serde_json::from_value(answer).map_err(|e| {
            WorkerError::Cluster(format!("the leader `{leader}` answered {status}: {e}"))
        })?;
        Err(match error.error.as_str() {
            "not_leader" => WorkerError::NotLeader(leader.to_string(), String::new()),
            _ => WorkerError::Forwarded {
                status,
                code: error.error,
                message: error.message,
            },
        })
    }

    /// Executes one write as the leader (or alone): serialized, validated, published, read back.
    async fn execute(&self, write: ConfigWrite) -> Result<WriteOutcome, WorkerError> {
        let _serial = self.catalog.serial.lock().await;
        let name = write.name().to_string();
        let current = self.deps.store.record(&name).filter(|r| r.config.is_some());
        let exists = current.is_some();
        let target = current
            .as_ref()
            .map_or(TargetState::Running, |r| r.target());
        let mut task_generations = current
            .as_ref()
            .map(|r| r.task_generations.clone())
            .unwrap_or_default();
        let mut positions_reset = current.as_ref().and_then(|r| r.positions_reset.clone());
        let (config, target, restart) = match write {
            ConfigWrite::Create { config, .. } => {
                if exists {
                    return Err(WorkerError::Exists(name));
                }
                (Some(config), TargetState::Running, false)
            }
            ConfigWrite::Put { config, .. } => (Some(config), target, false),
            ConfigWrite::Merge { patch, .. } => {
                let (mut config, _) = self.live_config(&name)?;
                config.extend(patch);
                (Some(config), target, false)
            }
            ConfigWrite::SetEnabled { enabled, .. } => {
                let (config, _) = self.live_config(&name)?;
                // The seed's enable/disable: disable is KIP-980's stop, enable runs (and so
                // also resumes a paused connector).
                let wanted = if enabled {
                    TargetState::Running
                } else {
                    TargetState::Stopped
                };
                if wanted == target {
                    return Ok(WriteOutcome {
                        created: false,
                        version: None,
                    });
                }
                (Some(config), wanted, false)
            }
            ConfigWrite::SetTarget { target: wanted, .. } => {
                let (config, _) = self.live_config(&name)?;
                if wanted == target {
                    return Ok(WriteOutcome {
                        created: false,
                        version: None,
                    });
                }
                (Some(config), wanted, false)
            }
            ConfigWrite::Restart { .. } => {
                let (config, _) = self.live_config(&name)?;
                (Some(config), target, true)
            }
            ConfigWrite::RestartTasks { tasks, .. } => {
                let (config, _) = self.live_config(&name)?;
                for task in tasks {
                    *task_generations.entry(task.to_string()).or_default() += 1;
                }
                (Some(config), target, false)
            }
            ConfigWrite::SetPositions { reset, .. } => {
                let (config, _) = self.live_config(&name)?;
                if target != TargetState::Stopped {
                    return Err(WorkerError::NotStopped(name));
                }
                positions_reset = Some(reset);
                (Some(config), target, false)
            }
            ConfigWrite::Delete { .. } => {
                self.live_config(&name)?;
                (None, TargetState::Stopped, false)
            }
        };
        // A config read back through the API shows secrets as `[hidden]`: writing it back
        // keeps the stored values instead of storing the placeholder.
        let config = config.map(|mut config| {
            if let Some(stored) = current.as_ref().and_then(|r| r.config.as_ref()) {
                for (key, value) in config.iter_mut() {
                    if value == crate::security::secrets::HIDDEN
                        && let Some(kept) = stored.get(key)
                    {
                        value.clone_from(kept);
                    }
                }
            }
            config
        });
        // A new or changed config is validated (by the guest too) before it is published.
        let plan = match &config {
            Some(config) if current.as_ref().and_then(|r| r.config.as_ref()) != Some(config) => {
                Some(self.plan(&name, config).await?)
            }
            _ => None,
        };
        let record = ConnectorRecord {
            version: next_version(&self.deps.store.records(), &self.id, clock_skew_ms()),
            config,
            enabled: target != TargetState::Stopped,
            paused: target == TargetState::Paused,
            generation: current.map_or(0, |r| r.generation + u64::from(restart)),
            task_generations,
            positions_reset,
        };
        let version = record.version.clone();
        if let Some(plan) = plan {
            self.catalog
                .prepared
                .lock()
                .unwrap()
                .insert((name.clone(), version.clone()), plan);
        }
        let published = self.publish(&name, record).await;
        if published.is_err() {
            self.catalog.take_prepared(&name, &version);
        }
        published?;
        Ok(WriteOutcome {
            created: !exists,
            version: Some(version),
        })
    }

    /// Publishes a record and waits until the config topic gave it back (alone: applies it).
    async fn publish(&self, name: &str, record: ConnectorRecord) -> Result<(), WorkerError> {
        let Some(sync) = &self.sync else {
            self.deps.store.apply(name, record)?;
            self.reconcile_now().await;
            return Ok(());
        };
        let version = record.version.clone();
        let event = ConfigEvent::Connector {
            name: name.to_string(),
            record,
        };
        sync.publish_config(&event)
            .await
            .map_err(|e| WorkerError::Cluster(e.to_string()))?;
        if !self
            .deps
            .store
            .wait_for_version(name, &version, READ_BACK)
            .await
        {
            return Err(WorkerError::Cluster(format!(
                "the change was published but not read back from the config topic within {READ_BACK:?}; \
                 it may still apply"
            )));
        }
        // During a leadership change (at most one membership poll) another worker may also have
        // led: if its write overtook this one, say so instead of acknowledging a lost write.
        if self
            .deps
            .store
            .record(name)
            .is_some_and(|r| r.version != version)
        {
            return Err(WorkerError::Cluster(format!(
                "connector `{name}` was changed concurrently by another worker while leadership moved; read it and retry"
            )));
        }
        Ok(())
    }

    /// Kafka Connect's `PUT /connector-plugins/{class}/config/validate`: checks `config` as a
    /// create would (host settings, grants, required keys, the guest's `validate()`) without
    /// creating anything, and says per key what is wrong. Errors that name no key of the
    /// config or the plugin are returned apart.
    pub async fn validate(&self, config: &ConnectorConfig) -> Validation {
        let plugin = config
            .get(CONNECTOR_CLASS)
            .and_then(|class| self.deps.registry.resolve(class));
        let declared: Vec<crate::wasm::ConfigKey> = plugin
            .map(|p| p.info.config_keys.clone())
            .unwrap_or_default();
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut general = Vec::new();
        for key in declared.iter().filter(|k| k.required) {
            if config.get(&key.name).is_none_or(|v| v.is_empty()) {
                errors
                    .entry(key.name.clone())
                    .or_default()
                    .push(format!("missing required config key `{}`", key.name));
            }
        }
        let name = config
            .get("name")
            .filter(|n| check_name(n).is_ok())
            .map_or("validate", String::as_str);
        if let Err(e) = self.plan(name, config).await {
            let message = e.to_string();
            let keys = config.keys().chain(declared.iter().map(|k| &k.name));
            let named = match &e {
                WorkerError::MissingKey(key) => Some(key.clone()),
                _ => keys
                    .filter(|k| {
                        message.starts_with(&format!("invalid config: {k}: "))
                            || message.contains(&format!("`{k}`"))
                    })
                    .max_by_key(|k| k.len())
                    .cloned(),
            };
            match named {
                Some(key) => {
                    // A missing required key was already listed above.
                    let list = errors.entry(key).or_default();
                    if list.is_empty() || !matches!(e, WorkerError::MissingKey(_)) {
                        list.push(message);
                    }
                }
                None => general.push(message),
            }
        }
        Validation {
            declared,
            errors,
            general,
        }
    }

    /// `config` with its `${env:..}` / `${file:..}` references resolved, and its host-level
    /// settings read and checked against the worker's grants.
    pub(super) fn resolved(
        &self,
        config: &ConnectorConfig,
    ) -> Result<(ConnectorConfig, HostSettings), WorkerError> {
        let config = crate::security::secrets::resolve(config, &self.deps.grants)
            .map_err(WorkerError::InvalidConfig)?;
        let settings = HostSettings::from_config(&config, &self.deps.grants)
            .map_err(|e| WorkerError::InvalidConfig(e.to_string()))?;
        Ok((config, settings))
    }

    /// Checks a config and plans its tasks: plugin, host settings, required keys, and the
    /// guest's own `validate()` and `task-configs()`.
    pub(super) async fn plan(
        &self,
        name: &str,
        config: &ConnectorConfig,
    ) -> Result<Plan, WorkerError> {
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
        // References are resolved here, on the worker that plans (and runs) the tasks: the
        // stored and published config keeps `${env:..}` / `${file:..}`, never the secret.
        let declared = plugin.info.secret_keys();
        crate::security::secrets::remember_config(config, &declared);
        let (resolved, settings) = self.resolved(config)?;
        let config = &resolved;
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
        // `kafka.client.*` is for the host's Kafka clients: its secrets never enter the sandbox.
        let mut pairs: Vec<(String, String)> = config
            .iter()
            .filter(|(k, _)| !k.starts_with(crate::model::CLIENT_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Connectors name their consumer groups after the connector (the seed's convention).
        pairs.push((CONNECTOR_NAME.into(), name.to_string()));
        let code = plugin.code().await.map_err(|e| {
            WorkerError::InvalidConfig(format!(
                "the plugin `{}` could not be loaded: {e}",
                plugin.name
            ))
        })?;
        let tasks = code
            .plan_tasks(
                self.deps.registry.runtime(),
                &pairs,
                settings.tasks,
                // The connector's own sandbox limits bound its validate() too.
                &GuestLimits {
                    memory_max: settings.memory_max,
                    call_timeout: settings.call_timeout,
                    ..GuestLimits::default()
                },
            )
            .await
            .map_err(|fault| match fault {
                GuestFault::InvalidConfig(m) => WorkerError::InvalidConfig(m),
                other => WorkerError::InvalidConfig(format!(
                    "the connector's validate() failed: {other}"
                )),
            })?;
        Ok((plugin, settings, tasks))
    }
}
