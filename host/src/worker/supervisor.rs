//! The supervisor: runs exactly the tasks the allocation gives this worker. A reconcile plans
//! what changed (the guest's validate() and task-configs(), outside any lock), then, under the
//! supervisor lock but without awaiting anything, stops what this worker no longer runs as it
//! was and starts what is missing. A stopping task finishes its in-flight deliveries in the
//! background; a task started again under the same key waits for it first, so one task never
//! runs twice on one worker.

use std::collections::{BTreeMap, BTreeSet};

use futures::FutureExt;

use super::{Plan, View, Worker};
use crate::cluster::{ConnectorRecord, TaskAllocator, Version};
use crate::config::{HostSettings, TASKS_NUM};
use crate::plugin::ReloadReport;
use crate::task::{self, Stopped, TaskDeps, TaskHandle, TaskSpec};
use crate::wasm::state::TaskIds;

/// A connector's plan for one version of its record.
struct Planned {
    version: Version,
    plan: Result<Plan, String>,
}

struct Running {
    handle: TaskHandle,
    /// What the task was started with: a change restarts it.
    fingerprint: String,
}

/// What the supervisor runs and what it bases that on.
pub(super) struct Supervisor {
    id: String,
    /// The live workers.
    members: BTreeSet<String>,
    /// The checked plan of each enabled connector's current version.
    plans: BTreeMap<String, Planned>,
    /// Tasks running here.
    running: BTreeMap<(String, u32), Running>,
    /// Tasks still finishing after a stop, by key.
    stopping: BTreeMap<(String, u32), Stopped>,
}

impl Supervisor {
    pub(super) fn new(id: &str) -> Self {
        Supervisor {
            id: id.to_string(),
            members: BTreeSet::from([id.to_string()]),
            plans: BTreeMap::new(),
            running: BTreeMap::new(),
            stopping: BTreeMap::new(),
        }
    }

    /// Starts and stops tasks so that this worker runs what the allocation gives it. A
    /// connector whose current version has no plan yet keeps its tasks as they are (the
    /// reconcile that planned it follows).
    fn apply(&mut self, records: &BTreeMap<String, ConnectorRecord>, deps: &TaskDeps) {
        self.stopping
            .retain(|_, done| done.clone().now_or_never().is_none());
        self.plans.retain(|name, _| {
            records
                .get(name)
                .is_some_and(|r| r.config.is_some() && r.enabled)
        });
        let allocator = TaskAllocator::new(&self.members);
        let mut desired: BTreeMap<(String, u32), Option<(TaskSpec, String)>> = BTreeMap::new();
        // Paused connectors' tasks keep running here but move nothing.
        let paused: BTreeSet<&str> = records
            .iter()
            .filter(|(_, r)| r.config.is_some() && r.paused)
            .map(|(name, _)| name.as_str())
            .collect();
        for (name, record) in records {
            if record.config.is_none() || !record.enabled {
                continue;
            }
            let Some(planned) = self.plans.get(name).filter(|p| p.version == record.version) else {
                for key in self.running.keys().filter(|(c, _)| c == name) {
                    desired.insert(key.clone(), None);
                }
                continue;
            };
            let Ok((plugin, settings, configs)) = &planned.plan else {
                continue;
            };
            for (index, task_config) in configs.iter().enumerate() {
                let index = index as u32;
                if allocator.owner(name, index) != Some(self.id.as_str()) {
                    continue;
                }
                let fingerprint = format!(
                    "{}.{}|{}",
                    record.generation,
                    record
                        .task_generations
                        .get(&index.to_string())
                        .copied()
                        .unwrap_or(0),
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
                desired.insert((name.clone(), index), Some((spec, fingerprint)));
            }
        }
        let stale: Vec<(String, u32)> = self
            .running
            .iter()
            .filter(|(key, r)| match desired.get(*key) {
                None => true,
                Some(None) => false,
                Some(Some((_, f))) => *f != r.fingerprint,
            })
            .map(|(key, _)| key.clone())
            .collect();
        if !stale.is_empty() {
            tracing::info!(tasks = ?stale, "stopping tasks this worker no longer runs as they were");
        }
        for key in stale {
            if let Some(r) = self.running.remove(&key) {
                self.stopping.insert(key, task::stop(r.handle));
            }
        }
        let mut started = Vec::new();
        for (key, wanted) in desired {
            let Some((spec, fingerprint)) = wanted else {
                continue;
            };
            if self.running.contains_key(&key) {
                continue;
            }
            started.push(key.clone());
            let handle = task::spawn(
                spec,
                deps.clone(),
                self.stopping.get(&key).cloned(),
                paused.contains(key.0.as_str()),
            );
            self.running.insert(
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
        for ((connector, _), r) in &self.running {
            r.handle
                .status
                .set_paused(paused.contains(connector.as_str()));
        }
        // Series of tasks that no longer run here (moved, stopped, deleted) are dropped.
        for (connector, task) in self.stopping.keys() {
            if !self.running.contains_key(&(connector.clone(), *task)) {
                crate::metrics::forget_task(connector, *task);
            }
        }
        crate::metrics::worker::set_tasks(self.running.len());
        crate::metrics::worker::set_members(self.members.len());
    }

    /// What REST reads.
    fn view(&self) -> View {
        View {
            members: self.members.clone(),
            plans: self
                .plans
                .iter()
                .map(|(name, p)| {
                    let summary = match &p.plan {
                        Ok((plugin, _, configs)) => {
                            Ok((plugin.kind, plugin.name.clone(), configs.len() as u32))
                        }
                        Err(e) => Err(e.clone()),
                    };
                    (name.clone(), summary)
                })
                .collect(),
            running: self
                .running
                .iter()
                .map(|(key, r)| (key.clone(), r.handle.status.clone()))
                .collect(),
            task_configs: self
                .plans
                .iter()
                .filter_map(|(name, p)| {
                    let (_, _, configs) = p.plan.as_ref().ok()?;
                    Some((name.clone(), configs.clone()))
                })
                .collect(),
        }
    }
}

impl Worker {
    /// Plans what changed (outside the lock: a guest's validate() may take its whole time
    /// budget), then starts and stops tasks so that this worker runs exactly what the
    /// allocation gives it.
    pub async fn reconcile_now(&self) {
        let records = self.deps.store.records();
        let outdated: Vec<(String, Version, crate::config::ConnectorConfig)> = {
            let supervisor = self.supervisor.lock().await;
            records
                .iter()
                .filter_map(|(name, r)| {
                    let config = r.config.as_ref().filter(|_| r.enabled)?;
                    supervisor
                        .plans
                        .get(name)
                        .is_none_or(|p| p.version != r.version)
                        .then(|| (name.clone(), r.version.clone(), config.clone()))
                })
                .collect()
        };
        let mut fresh = Vec::with_capacity(outdated.len());
        for (name, version, config) in outdated {
            let plan = match self.catalog.take_prepared(&name, &version) {
                Some(plan) => Ok(plan),
                None => self.plan(&name, &config).await.map_err(|e| {
                    tracing::warn!(connector = %name, "connector not started: {e}");
                    e.to_string()
                }),
            };
            fresh.push((name, Planned { version, plan }));
        }
        let mut supervisor = self.supervisor.lock().await;
        let records = self.deps.store.records();
        for (name, planned) in fresh {
            // A reconcile that planned a newer version meanwhile wins; an older plan is dropped.
            if records
                .get(&name)
                .is_some_and(|r| r.version == planned.version)
            {
                supervisor.plans.insert(name, planned);
            }
        }
        supervisor.apply(&records, &self.deps);
        *self.view.write().unwrap() = supervisor.view();
    }

    /// The member list changed: re-allocate.
    pub async fn members_changed(&self, members: BTreeSet<String>) {
        {
            let mut supervisor = self.supervisor.lock().await;
            if supervisor.members == members {
                return;
            }
            tracing::info!(?members, "cluster members changed");
            crate::metrics::worker::rebalanced();
            supervisor.members = members;
        }
        self.reconcile_now().await;
    }

    /// After a reload: plans that failed (a missing plugin) are made again.
    pub async fn plugins_reloaded(&self, report: &ReloadReport) {
        if report.added.is_empty() {
            return;
        }
        self.supervisor
            .lock()
            .await
            .plans
            .retain(|_, p| p.plan.is_ok());
        self.reconcile_now().await;
    }

    /// Stops every task and waits for them to finish their in-flight deliveries.
    pub async fn shutdown(&self) {
        let waits: Vec<Stopped> = {
            let mut supervisor = self.supervisor.lock().await;
            let running = std::mem::take(&mut supervisor.running);
            let mut waits: Vec<Stopped> = std::mem::take(&mut supervisor.stopping)
                .into_values()
                .collect();
            waits.extend(running.into_values().map(|r| task::stop(r.handle)));
            *self.view.write().unwrap() = supervisor.view();
            waits
        };
        futures::future::join_all(waits).await;
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
