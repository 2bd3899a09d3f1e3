//! What the status API shows about a task.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::wasm::GuestFault;

/// A task's lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskLifecycle {
    /// Instantiating the guest or connecting to RocketMQ.
    Starting,
    /// Moving records.
    Running,
    /// The guest faulted; it restarts after a backoff.
    Failed,
    /// Stopped on request.
    Stopped,
}

/// The last error a task met.
#[derive(Clone, Debug, Serialize)]
pub struct TaskError {
    /// `panic`, `out-of-memory`, `timeout`, `trap`, `fatal`, `invalid-config`, `retriable`,
    /// `rocketmq`.
    pub kind: String,
    /// The full reason.
    pub message: String,
    /// Unix ms when it happened.
    pub at_ms: i64,
}

/// A task's status.
#[derive(Clone, Debug, Serialize)]
pub struct TaskStatus {
    /// Lifecycle state.
    pub state: TaskLifecycle,
    /// The last error, kept after a restart so the cause stays visible.
    pub error: Option<TaskError>,
    /// Restarts since the last success.
    pub restarts: u32,
    /// Records delivered (acknowledged by the destination) by this task.
    pub delivered: u64,
    /// The plugin version (sha256 prefix) the task runs.
    pub plugin_version: String,
}

impl Default for TaskStatus {
    fn default() -> Self {
        TaskStatus {
            state: TaskLifecycle::Starting,
            error: None,
            restarts: 0,
            delivered: 0,
            plugin_version: String::new(),
        }
    }
}

/// A task's status, shared between its loop and the REST API.
#[derive(Clone, Default)]
pub struct StatusCell(Arc<Mutex<TaskStatus>>);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl StatusCell {
    /// A copy of the current status.
    pub fn get(&self) -> TaskStatus {
        self.0.lock().unwrap().clone()
    }

    /// Sets the lifecycle state.
    pub fn set_state(&self, state: TaskLifecycle) {
        self.0.lock().unwrap().state = state;
    }

    /// The guest runs `version`.
    pub fn running(&self, version: &str) {
        let mut s = self.0.lock().unwrap();
        s.state = TaskLifecycle::Running;
        s.plugin_version = version.chars().take(12).collect();
    }

    /// The guest faulted; `restarts` is the backoff attempt.
    pub fn failed(&self, fault: &GuestFault, restarts: u32) {
        tracing::warn!(kind = fault.kind(), restarts, "task failed: {fault}");
        let mut s = self.0.lock().unwrap();
        s.state = TaskLifecycle::Failed;
        s.restarts = restarts;
        s.error = Some(TaskError {
            kind: fault.kind().into(),
            message: fault.to_string(),
            at_ms: now_ms(),
        });
    }

    /// A transient error (a destination is down); the task keeps retrying.
    pub fn retrying(&self, kind: &str, message: String) {
        tracing::warn!(kind, "retrying: {message}");
        self.0.lock().unwrap().error = Some(TaskError {
            kind: kind.into(),
            message,
            at_ms: now_ms(),
        });
    }

    /// `n` more records were acknowledged.
    pub fn delivered(&self, n: u64) {
        self.0.lock().unwrap().delivered += n;
    }
}
