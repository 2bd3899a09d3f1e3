//! What runs where: this worker answers from its view, and asks the workers that run the rest
//! over REST, all at once, each answer bounded by the peer timeout.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ConnectorConfig, ConnectorState, ConnectorStatus, LocalTask, TaskStatusEntry, Worker,
    WorkerError,
};
use crate::cluster::TaskAllocator;
use crate::model::TargetState;
use crate::task::{self, TaskStatus};

impl Worker {
    /// The tasks running on every live worker (asking the others), by worker id.
    pub async fn cluster_tasks(&self) -> BTreeMap<String, Result<Vec<LocalTask>, String>> {
        let members: BTreeSet<String> = self.members().await.into_iter().map(|(w, _)| w).collect();
        self.tasks_on(&members).await
    }

    /// What each of `workers` runs: this worker answers itself, the others are asked at once.
    async fn tasks_on(
        &self,
        workers: &BTreeSet<String>,
    ) -> BTreeMap<String, Result<Vec<LocalTask>, String>> {
        let addresses = self.deps.store.worker_addresses();
        let answers = futures::future::join_all(workers.iter().map(|w| async {
            let tasks = if *w == self.id {
                Ok(self.local_tasks().await)
            } else {
                match addresses.get(w) {
                    None => Err("the worker has not announced its REST address yet".to_string()),
                    Some(addr) => self
                        .peers
                        .get_json(addr, "/getAllocatedTask")
                        .await
                        .map_err(|e| e.to_string()),
                }
            };
            (w.clone(), tasks)
        }))
        .await;
        answers.into_iter().collect()
    }

    /// A connector's status, with every task wherever it runs.
    pub async fn status(&self, name: &str) -> Result<ConnectorStatus, WorkerError> {
        let target = self
            .deps
            .store
            .record(name)
            .filter(|r| r.config.is_some())
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?
            .target();
        let (kind, plugin, error, owners, local) = {
            let view = self.view.read().unwrap();
            let allocator = TaskAllocator::new(&view.members);
            let (kind, plugin, error, count) = match view.plans.get(name) {
                Some(Ok((kind, plugin, count))) => {
                    (Some(*kind), Some(plugin.clone()), None, *count)
                }
                Some(Err(e)) => (None, None, Some(e.clone()), 0),
                None => (None, None, None, 0),
            };
            let owners: Vec<(u32, String)> = (0..count)
                .filter_map(|t| Some((t, allocator.owner(name, t)?.to_string())))
                .collect();
            let local: BTreeMap<u32, TaskStatus> = view
                .running
                .iter()
                .filter(|((c, _), _)| c == name)
                .map(|((_, t), status)| (*t, status.get()))
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
        let state = if target == TargetState::Stopped {
            "STOPPED"
        } else if tasks.is_empty() {
            "UNASSIGNED"
        } else if tasks.iter().any(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.state == task::TaskLifecycle::Failed)
        }) {
            "FAILED"
        } else if target == TargetState::Paused {
            "PAUSED"
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
}

impl Worker {
    /// Each task's config as `task-configs()` made it, secrets hidden (Kafka Connect's
    /// `GET /connectors/{name}/tasks`).
    pub async fn task_configs(&self, name: &str) -> Result<Vec<ConnectorConfig>, WorkerError> {
        let config = self.config(name).await?;
        let configs = self
            .view
            .read()
            .unwrap()
            .task_configs
            .get(name)
            .cloned()
            .unwrap_or_default();
        let declared = self.declared_secrets(&config);
        Ok(configs
            .into_iter()
            .map(|c| crate::security::secrets::redact(&c.into_iter().collect(), &declared))
            .collect())
    }

    /// One task's status, wherever it runs; `NoSuchTask` when the connector has no such task.
    pub async fn task_status(&self, name: &str, task: u32) -> Result<TaskStatusEntry, WorkerError> {
        self.status(name)
            .await?
            .tasks
            .into_iter()
            .find(|t| t.id == task)
            .ok_or_else(|| WorkerError::NoSuchTask(name.to_string(), task))
    }
}
