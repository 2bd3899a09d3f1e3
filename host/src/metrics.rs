//! Prometheus metrics for `GET /metrics` (OpenMetrics text, which Prometheus scrapes natively).
//!
//! One set of metric families per process (a process runs one worker). Task loops hold a
//! [`TaskMetrics`]: handles into those families, resolved once per task start, so counting on
//! the hot path is an atomic add and never a label lookup. Cardinality is bounded: labels are
//! the connector, the task index, the error kind (a fixed set) and the task state (a fixed set);
//! never a record, key, offset or queue. A task's series are dropped when it stops running on
//! this worker (see [`forget_task`]), so a connector moved away or deleted leaves nothing behind.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::task::TaskLifecycle;

/// The labels of a per-task series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// Connector name.
    pub connector: String,
    /// Task index.
    pub task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    connector: String,
    task: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    connector: String,
    task: String,
    state: &'static str,
}

/// Latency buckets: 0.5 ms to ~16 s, doubling.
#[derive(Clone)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0005, 2.0, 16))
    }
}

type TaskCounter = Family<TaskLabels, Counter>;
type TaskGauge = Family<TaskLabels, Gauge>;
type TaskHistogram = Family<TaskLabels, Histogram, LatencyBuckets>;

/// Every metric family of the process.
struct Families {
    records_in: TaskCounter,
    records_out: TaskCounter,
    bytes_in: TaskCounter,
    bytes_out: TaskCounter,
    batches: TaskCounter,
    poll_seconds: TaskHistogram,
    put_seconds: TaskHistogram,
    put_age_seconds: TaskHistogram,
    flush_seconds: TaskHistogram,
    send_seconds: TaskHistogram,
    commit_seconds: TaskHistogram,
    errors: Family<KindLabels, Counter>,
    dead_letters: TaskCounter,
    restarts: TaskCounter,
    retries: TaskCounter,
    state: Family<StateLabels, Gauge>,
    lag: TaskGauge,
    members: Gauge,
    tasks: Gauge,
    rebalances: Counter,
    plugin_loads: Counter,
    plugin_failures: Gauge,
    guest_memory: Gauge,
    compile_cache_hits: Counter,
    compile_cache_misses: Counter,
    guests_recycled: Counter,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    records_in: Family::default(),
    records_out: Family::default(),
    bytes_in: Family::default(),
    bytes_out: Family::default(),
    batches: Family::default(),
    poll_seconds: Family::new_with_constructor(LatencyBuckets),
    put_seconds: Family::new_with_constructor(LatencyBuckets),
    put_age_seconds: Family::new_with_constructor(LatencyBuckets),
    flush_seconds: Family::new_with_constructor(LatencyBuckets),
    send_seconds: Family::new_with_constructor(LatencyBuckets),
    commit_seconds: Family::new_with_constructor(LatencyBuckets),
    errors: Family::default(),
    dead_letters: Family::default(),
    restarts: Family::default(),
    retries: Family::default(),
    state: Family::default(),
    lag: Family::default(),
    members: Gauge::default(),
    tasks: Gauge::default(),
    rebalances: Counter::default(),
    plugin_loads: Counter::default(),
    plugin_failures: Gauge::default(),
    guest_memory: Gauge::default(),
    compile_cache_hits: Counter::default(),
    compile_cache_misses: Counter::default(),
    guests_recycled: Counter::default(),
});

/// Every task state, for the one-hot `ferry_task_state` gauge.
const STATES: [(TaskLifecycle, &str); 6] = [
    (TaskLifecycle::Starting, "STARTING"),
    (TaskLifecycle::Running, "RUNNING"),
    (TaskLifecycle::Idle, "IDLE"),
    (TaskLifecycle::Paused, "PAUSED"),
    (TaskLifecycle::Failed, "FAILED"),
    (TaskLifecycle::Stopped, "STOPPED"),
];

/// One task's metric handles. [`TaskMetrics::detached`] counts into nothing (unit tests).
#[derive(Clone)]
pub struct TaskMetrics {
    labels: Option<TaskLabels>,
    /// Records taken from the source side (guest `poll()`, or RocketMQ for a sink).
    pub records_in: Counter,
    /// Records the destination acknowledged.
    pub records_out: Counter,
    /// Value bytes taken from the source side.
    pub bytes_in: Counter,
    /// Value bytes the destination acknowledged.
    pub bytes_out: Counter,
    /// Batches handed on (one `put()`, or one poll's send to RocketMQ).
    pub batches: Counter,
    /// Time of a source guest's `poll()`.
    pub poll_seconds: Histogram,
    /// Time of a sink guest's `put()`.
    pub put_seconds: Histogram,
    /// Age of the oldest record of each sink `put()` as the guest gets it, from its RocketMQ
    /// store time (the broker's clock, so skew between hosts adds to it): how long records
    /// waited in RocketMQ and in the task before the guest saw them. Splits a sink's latency
    /// into the part before the guest and the destination's part.
    pub put_age_seconds: Histogram,
    /// Time of a sink guest's `flush()`: the loop puts nothing meanwhile.
    pub flush_seconds: Histogram,
    /// Time from handing a poll's records to RocketMQ to its last acknowledgement.
    pub send_seconds: Histogram,
    /// Time of a commit outside Ferry's store (a source guest's `commit()`, a sink's RocketMQ
    /// offsets): the task's loop waits for it, so records arriving meanwhile wait too.
    pub commit_seconds: Histogram,
    /// Records sent to the dead-letter queue.
    pub dead_letters: Counter,
    /// Guest restarts after a fault.
    pub restarts: Counter,
    /// Retries of a failed delivery.
    pub retries: Counter,
    /// Records behind the head of what the task reads (RocketMQ queues for a sink, Kafka
    /// partitions for kafka-source), as of its last read.
    pub lag: Gauge,
}

impl TaskMetrics {
    /// The handles of `connector`'s task `task`, registered for `/metrics`.
    pub fn new(connector: &str, task: u32) -> Self {
        let labels = TaskLabels {
            connector: connector.to_string(),
            task: task.to_string(),
        };
        let f = &*FAMILIES;
        TaskMetrics {
            records_in: f.records_in.get_or_create_owned(&labels),
            records_out: f.records_out.get_or_create_owned(&labels),
            bytes_in: f.bytes_in.get_or_create_owned(&labels),
            bytes_out: f.bytes_out.get_or_create_owned(&labels),
            batches: f.batches.get_or_create_owned(&labels),
            poll_seconds: f.poll_seconds.get_or_create_owned(&labels),
            put_seconds: f.put_seconds.get_or_create_owned(&labels),
            put_age_seconds: f.put_age_seconds.get_or_create_owned(&labels),
            flush_seconds: f.flush_seconds.get_or_create_owned(&labels),
            send_seconds: f.send_seconds.get_or_create_owned(&labels),
            commit_seconds: f.commit_seconds.get_or_create_owned(&labels),
            dead_letters: f.dead_letters.get_or_create_owned(&labels),
            restarts: f.restarts.get_or_create_owned(&labels),
            retries: f.retries.get_or_create_owned(&labels),
            lag: f.lag.get_or_create_owned(&labels),
            labels: Some(labels),
        }
    }

    /// Handles that count into nothing.
    pub fn detached() -> Self {
        let latency = || LatencyBuckets.new_metric();
        TaskMetrics {
            labels: None,
            records_in: Counter::default(),
            records_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            batches: Counter::default(),
            poll_seconds: latency(),
            put_seconds: latency(),
            put_age_seconds: latency(),
            flush_seconds: latency(),
            send_seconds: latency(),
            commit_seconds: latency(),
            dead_letters: Counter::default(),
            restarts: Counter::default(),
            retries: Counter::default(),
            lag: Gauge::default(),
        }
    }

    /// Counts one error of `kind` (the status API's error kinds: a fixed set).
    pub fn error(&self, kind: &str) {
        if let Some(l) = &self.labels {
            FAMILIES
                .errors
                .get_or_create(&KindLabels {
                    connector: l.connector.clone(),
                    task: l.task.clone(),
                    kind: kind.to_string(),
                })
                .inc();
        }
    }

    /// Shows `state` as the task's one current state.
    pub fn set_state(&self, state: &TaskLifecycle) {
        let Some(l) = &self.labels else { return };
        for (s, name) in &STATES {
            FAMILIES
                .state
                .get_or_create(&StateLabels {
                    connector: l.connector.clone(),
                    task: l.task.clone(),
                    state: name,
                })
                .set(i64::from(s == state));
        }
    }
}

/// Drops the series of a task that no longer runs on this worker.
pub fn forget_task(connector: &str, task: u32) {
    let labels = TaskLabels {
        connector: connector.to_string(),
        task: task.to_string(),
    };
    let f = &*FAMILIES;
    for family in [
        &f.records_in,
        &f.records_out,
        &f.bytes_in,
        &f.bytes_out,
        &f.batches,
        &f.dead_letters,
        &f.restarts,
        &f.retries,
    ] {
        family.remove(&labels);
    }
    for family in [
        &f.poll_seconds,
        &f.put_seconds,
        &f.put_age_seconds,
        &f.flush_seconds,
        &f.send_seconds,
        &f.commit_seconds,
    ] {
        family.remove(&labels);
    }
    f.lag.remove(&labels);
    for (_, state) in &STATES {
        f.state.remove(&StateLabels {
            connector: labels.connector.clone(),
            task: labels.task.clone(),
            state,
        });
    }
    // Error kinds are a small fixed set; drop each one this task may have counted.
    for kind in crate::task::status::ERROR_KINDS {
        f.errors.remove(&KindLabels {
            connector: labels.connector.clone(),
            task: labels.task.clone(),
            kind: kind.to_string(),
        });
    }
}

/// Worker-wide figures, set by the worker's loops.
pub mod worker {
    use super::FAMILIES;

    /// The live members this worker sees.
    pub fn set_members(n: usize) {
        FAMILIES.members.set(n as i64);
    }

    /// Tasks running on this worker.
    pub fn set_tasks(n: usize) {
        FAMILIES.tasks.set(n as i64);
    }

    /// The member list changed (tasks were re-allocated).
    pub fn rebalanced() {
        FAMILIES.rebalances.inc();
    }

    /// A plugin file was compiled and loaded.
    pub fn plugin_loaded() {
        FAMILIES.plugin_loads.inc();
    }

    /// Plugin files that failed to load in the last scan.
    pub fn set_plugin_failures(n: usize) {
        FAMILIES.plugin_failures.set(n as i64);
    }

    /// Guest linear memory granted (positive) or released (negative).
    pub fn guest_memory(delta: i64) {
        FAMILIES.guest_memory.inc_by(delta);
    }

    /// Guest linear memory held by every live store of this process (benchmarks read it).
    pub fn guest_memory_bytes() -> i64 {
        FAMILIES.guest_memory.get()
    }

    /// A task reopened its guest because its memory neared the limit (see `task::RECYCLE_AT`).
    pub fn guest_recycled() {
        FAMILIES.guests_recycled.inc();
    }

    /// A compiled component was found in the cache (`true`) or compiled (`false`).
    pub fn compile_cache(hit: bool) {
        match hit {
            true => FAMILIES.compile_cache_hits.inc(),
            false => FAMILIES.compile_cache_misses.inc(),
        };
    }
}

/// The OpenMetrics text of every metric, each series labelled with `worker`.
pub fn encode(worker: &str) -> String {
    let f = &*FAMILIES;
    let mut r = Registry::with_prefix_and_labels(
        "ferry",
        [("worker".into(), worker.to_string().into())].into_iter(),
    );
    r.register(
        "task_records_received",
        "Records taken from the source side (a source guest's poll(), or RocketMQ for a sink)",
        f.records_in.clone(),
    );
    r.register("task_records_delivered", "Records the destination acknowledged (RocketMQ for a source, the sink guest's put() and flush())", f.records_out.clone());
    r.register_with_unit(
        "task_received",
        "Value bytes taken from the source side",
        Unit::Bytes,
        f.bytes_in.clone(),
    );
    r.register_with_unit(
        "task_delivered",
        "Value bytes the destination acknowledged",
        Unit::Bytes,
        f.bytes_out.clone(),
    );
    r.register(
        "task_batches",
        "Batches handed on (a sink's put(), a source poll's send to RocketMQ)",
        f.batches.clone(),
    );
    r.register_with_unit(
        "task_poll",
        "Time of a source guest's poll()",
        Unit::Seconds,
        f.poll_seconds.clone(),
    );
    r.register_with_unit(
        "task_put",
        "Time of a sink guest's put()",
        Unit::Seconds,
        f.put_seconds.clone(),
    );
    r.register_with_unit(
        "task_put_age",
        "Age of the oldest record of a sink put() as the guest gets it, from its RocketMQ store time",
        Unit::Seconds,
        f.put_age_seconds.clone(),
    );
    r.register_with_unit(
        "task_flush",
        "Time of a sink guest's flush()",
        Unit::Seconds,
        f.flush_seconds.clone(),
    );
    r.register_with_unit(
        "task_send",
        "Time from handing a poll's records to RocketMQ to the last acknowledgement",
        Unit::Seconds,
        f.send_seconds.clone(),
    );
    r.register_with_unit(
        "task_commit",
        "Time of a commit outside Ferry's store: a source guest's commit(), a sink's RocketMQ offsets",
        Unit::Seconds,
        f.commit_seconds.clone(),
    );
    r.register(
        "task_errors",
        "Errors by kind (the status API's error kinds)",
        f.errors.clone(),
    );
    r.register(
        "task_dead_letters",
        "Records sent to the dead-letter queue (errors.tolerance=all)",
        f.dead_letters.clone(),
    );
    r.register(
        "task_restarts",
        "Guest restarts after a fault",
        f.restarts.clone(),
    );
    r.register(
        "task_retries",
        "Retries of a failed delivery (source or destination unreachable)",
        f.retries.clone(),
    );
    r.register(
        "task_state",
        "1 for the task's current state, 0 for the others",
        f.state.clone(),
    );
    r.register("task_lag_records", "Records behind the head of what the task reads (RocketMQ queues of a sink's consumer group; Kafka partitions of kafka-source), as of its last read; sum by connector for the connector's lag", f.lag.clone());
    r.register(
        "worker_members",
        "Live workers this worker sees in the cluster",
        f.members.clone(),
    );
    r.register(
        "worker_tasks",
        "Tasks running on this worker",
        f.tasks.clone(),
    );
    r.register(
        "worker_rebalances",
        "Changes of the member list (each re-allocates tasks)",
        f.rebalances.clone(),
    );
    r.register(
        "plugin_loads",
        "Plugin files compiled and loaded",
        f.plugin_loads.clone(),
    );
    r.register(
        "plugin_failures",
        "Plugin files that failed to load in the last scan",
        f.plugin_failures.clone(),
    );
    r.register_with_unit(
        "guest_memory",
        "Linear memory of every running guest",
        Unit::Bytes,
        f.guest_memory.clone(),
    );
    r.register(
        "compile_cache_hits",
        "Components loaded from the compile cache",
        f.compile_cache_hits.clone(),
    );
    r.register(
        "compile_cache_misses",
        "Components compiled (not in the compile cache)",
        f.compile_cache_misses.clone(),
    );
    r.register(
        "guests_recycled",
        "Guests reopened at a safe point because their memory neared task.memory.max.bytes",
        f.guests_recycled.clone(),
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r)
        .expect("writing to a String cannot fail");
    out
}
