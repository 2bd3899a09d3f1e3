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

/// Plugins nobody runs cost no code: the worker keeps only what `describe()` said and loads
/// a plugin's compiled code (from the compile cache) when a task starts. An interpreted
/// component's code and memory image cost ~25 MiB each when they were kept, so a worker with
/// a Python and a JavaScript connector in its folder idled at ~90 MiB.
#[test]
fn plugins_without_tasks_hold_no_code() {
    let plugins = [
        "kafka-source",
        "file-sink",
        "datagen-py",
        "http-source",
        "datagen-c",
    ];
    let mut worker = Worker::start(&plugins);
    let all_listed = |worker: &Worker| {
        wait_for("every plugin loaded", Duration::from_secs(120), || {
            let (_, body) = worker.request("GET", "/connector-plugins", None);
            let listed = body["plugins"].as_array().map_or(0, Vec::len);
            (listed == plugins.len()).then_some(())
        })
    };
    all_listed(&worker);
    // Compiling a component leaves heap behind that malloc_trim cannot return (~40 MiB per
    // interpreted component here): the bound is for a worker on a warm compile cache, as
    // every start after a plugin version's first is.
    worker.kill9();
    worker.spawn();
    all_listed(&worker);
    let settled = wait_for(
        "the idle worker under 64 MiB",
        Duration::from_secs(45),
        || {
            let rss = worker.rss_mib();
            (rss < IDLE_WORKER_MIB).then_some(rss)
        },
    );
    println!(
        "idle worker with {} plugins: {settled:.1} MiB",
        plugins.len()
    );
    // A task loads its plugin's code, and runs.
    let topic = unique("lazy-code");
    let datagen = unique("lazy-gen");
    worker.create(
        &datagen,
        json!({"connector-class": "datagen-py", "datagen.topic": topic, "datagen.count": "1000"}),
    );
    wait_for("datagen-py delivering", Duration::from_secs(60), || {
        let delivered = worker.status(&datagen)["tasks"][0]["delivered"]
            .as_u64()
            .unwrap_or(0);
        (delivered >= 1000).then_some(())
    });
}
