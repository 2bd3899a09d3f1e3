//! What the status API shows about a task, and the task's retry limit
//! (`errors.retry.timeout`): a task that keeps failing to reach its source or destination for
//! longer than that gives up, shows `FAILED`, and stops without committing anything unacknowledged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use crate::metrics::TaskMetrics;
use crate::wasm::GuestFault;
use crate::wasm::caps::kafka::AssignedPartitions;

/// A task's lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskLifecycle {
    /// Instantiating the guest or connecting to RocketMQ.
    Starting,
    /// Moving records.
    Running,
    /// Running, but its Kafka consumer was given no partitions (more tasks than partitions):
    /// it takes over when the group rebalances.
    Idle,
    /// The guest faulted (it restarts after a backoff), or the task gave up retrying.
    Failed,
    /// Paused on request (`PUT /connectors/{name}/pause`): the task keeps its place (its
    /// guest, consumers and positions) but moves no records until resumed.
    Paused,
    /// Stopped on request.
    Stopped,
}

/// Every error kind a task reports (the `kind` of [`TaskError`], and a label of the errors
/// metric).
pub const ERROR_KINDS: [&str; 11] = [
    "panic",
    "out-of-memory",
    "timeout",
    "trap",
    "fatal",
    "invalid-config",
    "retriable",
    "rocketmq",
    "retry-timeout",
    "record-too-large",
    "rejected",
];

/// The last error a task met.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskError {
    /// One of [`ERROR_KINDS`].
    pub kind: String,
    /// The full reason.
    pub message: String,
    /// Unix ms when it happened.
    pub at_ms: i64,
}

/// A task's status.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskStatus {
    /// Lifecycle state.
    pub state: TaskLifecycle,
    /// Why the task is `IDLE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_reason: Option<String>,
    /// Partitions its Kafka consumer owns, once the group assigned them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_partitions: Option<u32>,
    /// The last error, kept after a restart so the cause stays visible.
    pub error: Option<TaskError>,
    /// Unix ms since when the task has been retrying a failed delivery (the source or
    /// destination is unreachable); absent once a delivery succeeds again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrying_since_ms: Option<i64>,
    /// Restarts since the last success.
    pub restarts: u32,
    /// Records delivered (acknowledged by the destination) by this task.
    pub delivered: u64,
    /// The plugin version (sha256 prefix) the task runs.
    pub plugin_version: String,
    /// Unix ms when this task was started on its worker (a restart or a move changes it).
    pub started_at_ms: i64,
}

impl Default for TaskStatus {
    fn default() -> Self {
        TaskStatus {
            state: TaskLifecycle::Starting,
            idle_reason: None,
            kafka_partitions: None,
            error: None,
            retrying_since_ms: None,
            restarts: 0,
            delivered: 0,
            plugin_version: String::new(),
            started_at_ms: now_ms(),
        }
    }
}

struct Shared {
    status: Mutex<TaskStatus>,
    partitions: AssignedPartitions,
    retry_limit: Option<Duration>,
    /// Cancelled when the task gives up retrying; the task loop runs under it.
    give_up: CancellationToken,
    /// Set when the task gave up for good (retry limit, or a record that can never be sent):
    /// it stays `FAILED` until restarted.
    gave_up: std::sync::atomic::AtomicBool,
    /// The task's metric handles.
    metrics: TaskMetrics,
    /// `true` while the connector is paused.
    paused: tokio::sync::watch::Sender<bool>,
}

/// A task's status, shared between its loop and the REST API.
#[derive(Clone)]
pub struct StatusCell(Arc<Shared>);

/// Wall-clock time in ms since the epoch (status timestamps, record ages).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Default for StatusCell {
    fn default() -> Self {
        StatusCell::new(None, CancellationToken::new(), TaskMetrics::detached())
    }
}

impl StatusCell {
    /// A status for a task that gives up after failing for `retry_limit` (never with `None`)
    /// by cancelling `give_up`.
    pub fn new(
        retry_limit: Option<Duration>,
        give_up: CancellationToken,
        metrics: TaskMetrics,
    ) -> Self {
        metrics.set_state(&TaskLifecycle::Starting);
        StatusCell(Arc::new(Shared {
            status: Mutex::new(TaskStatus::default()),
            partitions: AssignedPartitions::reporting_lag_to(metrics.lag.clone()),
            metrics,
            paused: tokio::sync::watch::Sender::new(false),
            retry_limit,
            give_up,
            gave_up: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Pauses or resumes the task (it notices before its next record).
    pub fn set_paused(&self, paused: bool) {
        self.0
            .paused
            .send_if_modified(|p| std::mem::replace(p, paused) != paused);
    }

    /// Whether the task is asked to pause.
    pub fn is_paused(&self) -> bool {
        *self.0.paused.borrow()
    }

    /// While the task is asked to pause: shows `PAUSED` and waits until resumed or stopped,
    /// then shows `RUNNING` again. Returns at once when not paused.
    pub async fn wait_while_paused(&self, stop: &CancellationToken) {
        if !self.is_paused() {
            return;
        }
        tracing::info!("task paused");
        self.set_state(TaskLifecycle::Paused);
        let mut rx = self.0.paused.subscribe();
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = rx.wait_for(|p| !*p) => {
                tracing::info!("task resumed");
                self.set_state(TaskLifecycle::Running);
            }
        }
    }

    /// The task's metric handles.
    pub fn metrics(&self) -> &TaskMetrics {
        &self.0.metrics
    }

    /// Where the task's Kafka consumer reports its assignment.
    pub fn partitions(&self) -> AssignedPartitions {
        self.0.partitions.clone()
    }

    /// A copy of the current status.
    pub fn get(&self) -> TaskStatus {
        let mut s = self.0.status.lock().unwrap().clone();
        s.kafka_partitions = self.0.partitions.get();
        if s.state == TaskLifecycle::Running && s.kafka_partitions == Some(0) {
            s.state = TaskLifecycle::Idle;
            s.idle_reason = Some(
                "the Kafka consumer group gave this task no partitions (tasks.num is larger than \
                 the partition count); it takes over partitions when the group rebalances"
                    .into(),
            );
        }
        s
    }

    /// Sets the lifecycle state.
    pub fn set_state(&self, state: TaskLifecycle) {
        self.0.metrics.set_state(&state);
        self.0.status.lock().unwrap().state = state;
    }

    /// The task loop ended: `STOPPED`, unless it gave up retrying (then it stays `FAILED`).
    pub fn stopped(&self) {
        if !self.gave_up() {
            self.set_state(TaskLifecycle::Stopped);
        }
    }

    /// The task gave up: its retry limit passed, or it met a record that can never be sent.
    pub fn gave_up(&self) -> bool {
        self.0.gave_up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Something can never succeed by retrying (a record larger than RocketMQ accepts): the
    /// task stops as `FAILED` with `kind` and `message`, committing nothing after the last
    /// acknowledged record. `POST /connectors/{name}/restart` starts it again.
    pub fn fail_for_good(&self, kind: &str, message: String) {
        tracing::error!(kind, "task failed and stops: {message}");
        self.0.metrics.error(kind);
        self.0.metrics.set_state(&TaskLifecycle::Failed);
        let mut s = self.0.status.lock().unwrap();
        s.state = TaskLifecycle::Failed;
        s.error = Some(TaskError {
            kind: kind.into(),
            message,
            at_ms: now_ms(),
        });
        self.0
            .gave_up
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.0.give_up.cancel();
    }

    /// The guest runs `version`.
    pub fn running(&self, version: &str) {
        self.0.metrics.set_state(&TaskLifecycle::Running);
        let mut s = self.0.status.lock().unwrap();
        s.state = TaskLifecycle::Running;
        s.plugin_version = version.chars().take(12).collect();
    }

    /// The guest faulted; `restarts` is the backoff attempt.
    pub fn failed(&self, fault: &GuestFault, restarts: u32) {
        tracing::warn!(kind = fault.kind(), restarts, "task failed: {fault}");
        self.0.metrics.error(fault.kind());
        self.0.metrics.restarts.inc();
        self.0.metrics.set_state(&TaskLifecycle::Failed);
        let mut s = self.0.status.lock().unwrap();
        s.state = TaskLifecycle::Failed;
        s.restarts = restarts;
        s.error = Some(TaskError {
            kind: fault.kind().into(),
            message: fault.to_string(),
            at_ms: now_ms(),
        });
    }

    /// A transient error (a source or destination is down) that has lasted `failing_for`; the
    /// task keeps retrying unless that exceeds the retry limit, in which case it gives up.
    fn retrying(&self, kind: &str, message: String, failing_for: Duration) {
        let mut s = self.0.status.lock().unwrap();
        match self.0.retry_limit {
            Some(limit) if failing_for >= limit && !self.0.give_up.is_cancelled() => {
                tracing::error!(
                    kind,
                    "giving up after {failing_for:?} of failures (errors.retry.timeout): {message}"
                );
                self.0.metrics.error("retry-timeout");
                self.0.metrics.set_state(&TaskLifecycle::Failed);
                s.state = TaskLifecycle::Failed;
                s.error = Some(TaskError {
                    kind: "retry-timeout".into(),
                    message: format!(
                        "gave up after {} ms of failures, errors.retry.timeout is {} ms; \
                         nothing after the last acknowledged record was committed; last error \
                         ({kind}): {message}",
                        failing_for.as_millis(),
                        limit.as_millis()
                    ),
                    at_ms: now_ms(),
                });
                self.0
                    .gave_up
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                self.0.give_up.cancel();
            }
            _ if self.0.give_up.is_cancelled() => {}
            _ => {
                tracing::warn!(kind, "retrying: {message}");
                self.0.metrics.error(kind);
                self.0.metrics.retries.inc();
                s.retrying_since_ms = Some(now_ms() - failing_for.as_millis() as i64);
                s.error = Some(TaskError {
                    kind: kind.into(),
                    message,
                    at_ms: now_ms(),
                });
            }
        }
    }

    /// One failed attempt of a retry loop: shows `message`, then waits out `backoff`'s next
    /// delay. False when the task was stopped meanwhile, or gave up because the failures have
    /// lasted past the retry limit (that cancels `stop`, the task's run token).
    pub async fn wait_to_retry(
        &self,
        backoff: &mut Backoff,
        kind: &str,
        message: String,
        stop: &CancellationToken,
    ) -> bool {
        let delay = backoff.next_delay();
        self.retrying(kind, message, backoff.failing_for());
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// `n` more records (`bytes` of values) were acknowledged.
    pub fn delivered(&self, n: u64, bytes: u64) {
        self.0.metrics.records_out.inc_by(n);
        self.0.metrics.bytes_out.inc_by(bytes);
        super::DELIVERED.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let mut s = self.0.status.lock().unwrap();
        s.delivered += n;
        s.retrying_since_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_only_past_the_limit() {
        let token = CancellationToken::new();
        let status = StatusCell::new(
            Some(Duration::from_secs(2)),
            token.clone(),
            TaskMetrics::detached(),
        );
        status.running("abc");
        status.retrying("retriable", "down".into(), Duration::from_secs(1));
        assert!(!token.is_cancelled());
        assert_eq!(status.get().state, TaskLifecycle::Running);
        status.retrying("retriable", "still down".into(), Duration::from_secs(2));
        assert!(token.is_cancelled());
        let s = status.get();
        assert_eq!(s.state, TaskLifecycle::Failed);
        assert_eq!(s.error.unwrap().kind, "retry-timeout");
        status.stopped();
        assert_eq!(status.get().state, TaskLifecycle::Failed);
    }

    #[test]
    fn failing_for_good_stops_the_task_and_stays_failed() {
        let token = CancellationToken::new();
        let status = StatusCell::new(None, token.clone(), TaskMetrics::detached());
        status.running("abc");
        status.retrying("rocketmq", "down".into(), Duration::from_secs(1));
        assert!(status.get().retrying_since_ms.is_some());
        status.delivered(1, 10);
        assert!(status.get().retrying_since_ms.is_none());
        status.fail_for_good("record-too-large", "5 MiB".into());
        assert!(token.is_cancelled());
        status.stopped();
        let s = status.get();
        assert_eq!(s.state, TaskLifecycle::Failed);
        assert_eq!(s.error.unwrap().kind, "record-too-large");
    }

    #[test]
    fn no_limit_retries_forever() {
        let token = CancellationToken::new();
        let status = StatusCell::new(None, token.clone(), TaskMetrics::detached());
        status.retrying("retriable", "down".into(), Duration::from_secs(86_400));
        assert!(!token.is_cancelled());
        token.cancel();
        status.stopped();
        assert_eq!(status.get().state, TaskLifecycle::Stopped);
    }

    #[test]
    fn every_fault_kind_is_a_known_error_kind() {
        let faults = [
            GuestFault::Panic(String::new()),
            GuestFault::Returned(String::new()),
            GuestFault::InvalidConfig(String::new()),
            GuestFault::Retriable(String::new()),
            GuestFault::Rejected {
                batch: 0,
                index: 0,
                reason: String::new(),
            },
        ];
        for fault in &faults {
            assert!(ERROR_KINDS.contains(&fault.kind()), "{}", fault.kind());
        }
    }

    #[test]
    fn no_partitions_reads_as_idle() {
        let status = StatusCell::default();
        status.running("abc");
        assert_eq!(status.get().state, TaskLifecycle::Running);
        status.partitions().set(Some(0));
        let s = status.get();
        assert_eq!(s.state, TaskLifecycle::Idle);
        assert!(s.idle_reason.unwrap().contains("tasks.num"));
        status.partitions().set(Some(3));
        assert_eq!(status.get().state, TaskLifecycle::Running);
    }
}
