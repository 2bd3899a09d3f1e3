//! Memory at default settings (DESIGN.md §8, issue 13): an idle worker stays under 64 MiB, and
//! each idle task adds at most 16 MiB (its WebAssembly store and its clients: a Kafka consumer
//! for kafka-source, a RocketMQ lite-pull consumer for a sink).

use std::time::{Duration, Instant};

use ferry_tests::kafka;
use ferry_tests::{Worker, temp_dir, unique, wait_for};
use serde_json::json;

/// An idle worker's bound.
const IDLE_WORKER_MIB: f64 = 64.0;
/// What one idle task may add.
const PER_TASK_MIB: f64 = 16.0;

/// The highest resident size seen while sampling for `window` (a measurement, not a wait).
fn peak_rss(worker: &Worker, window: Duration) -> f64 {
    let end = Instant::now() + window;
    let mut peak: f64 = 0.0;
    while Instant::now() < end {
        peak = peak.max(worker.rss_mib());
        std::thread::sleep(Duration::from_millis(200));
    }
    peak
}

#[test]
fn ten_idle_tasks_keep_the_worker_within_64_mib_plus_16_each() {
    let worker = Worker::start(&["kafka-source", "file-sink"]);
    let idle = peak_rss(&worker, Duration::from_secs(3));
    println!("idle worker: {idle:.1} MiB");
    assert!(
        idle < IDLE_WORKER_MIB,
        "an idle worker uses {idle:.1} MiB (bound {IDLE_WORKER_MIB} MiB)"
    );

    // Ten tasks with nothing to move: five kafka-source tasks on an empty 2-partition topic
    // (three of them without a partition) and five file-sink tasks on an empty RocketMQ topic.
    let topic = unique("idle-mem");
    kafka::create_topic(&topic, 2);
    let (source, sink) = (unique("idle-src"), unique("idle-sink"));
    worker.create(
        &source,
        json!({"connector-class": "kafka-source", "kafka.topics": topic, "kafka.bootstrap.server": kafka::bootstrap(),
               "tasks.num": "5", "kafka.client.session.timeout.ms": "6000"}),
    );
    let out = temp_dir("idle-mem-out");
    worker.create(
        &sink,
        json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap(), "tasks.num": "5"}),
    );
    wait_for("ten tasks started", Duration::from_secs(90), || {
        [&source, &sink]
            .iter()
            .all(|c| {
                let status = worker.status(c);
                let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
                tasks.len() == 5
                    && tasks
                        .iter()
                        .all(|t| t["state"] == "RUNNING" || t["state"] == "IDLE")
            })
            .then_some(())
    });
    let busy = peak_rss(&worker, Duration::from_secs(10));
    let bound = IDLE_WORKER_MIB + 10.0 * PER_TASK_MIB;
    println!(
        "ten idle tasks: {busy:.1} MiB, {:.1} MiB per task over the idle worker",
        (busy - idle) / 10.0
    );
    assert!(
        busy < bound,
        "ten idle tasks: {busy:.1} MiB (bound {bound} MiB)"
    );
}
