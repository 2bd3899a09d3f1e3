//! Connectors created before their topics exist start moving records within seconds of the
//! topics' creation (not at the clients' next 5-minute metadata refresh): a kafka-source whose
//! Kafka topic is created later, and a sink whose RocketMQ topic is created later (by that
//! source's first send).

use std::time::{Duration, Instant};

use ferry_tests::kafka::{self, Outgoing};
use ferry_tests::{Worker, sink_counts, temp_dir, unique, wait_for};
use serde_json::json;

/// The bound from the topic's creation to the last record delivered: librdkafka looks for a
/// missing topic every 5 s (Ferry's default; its own is 5 minutes), Tansu's group join takes
/// about 3 s, and the sink's consumer re-balances every 3 s. Measured: about 8 s to the first
/// record in RocketMQ and 11 s to the last record in the files.
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn connectors_created_before_their_topics_deliver_within_seconds_of_creation() {
    let worker = Worker::start(&["kafka-source", "file-sink"]);
    let (topic, out) = (unique("late"), temp_dir("late-out"));
    let (source, view) = (unique("late-src"), unique("late-view"));
    let total = 1_000u64;
    // Neither the Kafka topic nor the RocketMQ topic exists yet.
    worker.create(&view, json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &source,
        json!({"connector-class": "kafka-source", "kafka.topics": topic, "kafka.bootstrap.server": kafka::bootstrap(),
               "kafka.client.session.timeout.ms": "6000"}),
    );
    wait_for("both tasks running", Duration::from_secs(60), || {
        [&source, &view]
            .iter()
            .all(|c| worker.status(c)["tasks"][0]["state"] == "RUNNING")
            .then_some(())
    });
    // The scenario itself, not a synchronisation: the clients have subscribed and found no
    // topic; it appears a few seconds later.
    std::thread::sleep(Duration::from_secs(5));
    let created = Instant::now();
    kafka::create_topic(&topic, 2);
    kafka::produce(
        &topic,
        (0..total).map(|i| Outgoing {
            key: format!("k{i}").into_bytes(),
            value: format!("{i} late").into_bytes(),
            headers: vec![],
            timestamp: 1_600_000_000_000 + i as i64,
        }),
    );
    // When the first record crossed each hop: Kafka -> RocketMQ (the source's delivered
    // counter), then RocketMQ -> files (the sink).
    let delivered = |name: &str| {
        ferry_tests::metric_sum(
            &worker.metrics(),
            "ferry_task_records_delivered_total",
            &[("connector", name)],
        )
        .unwrap_or(0.0)
    };
    let first_in_rocketmq = wait_for("the source's first record", BOUND, || {
        (delivered(&source) > 0.0).then(|| created.elapsed())
    });
    let first_in_files = wait_for("the sink's first record", BOUND, || {
        (delivered(&view) > 0.0).then(|| created.elapsed())
    });
    ferry_tests::wait_for_records(
        "every record of the late topic in RocketMQ and in the sink's files",
        &out,
        total,
        BOUND,
        || format!("{} / {}", worker.status(&source), worker.status(&view)),
    );
    println!(
        "late topics: first record in RocketMQ after {:.1} s, in the sink's files after {:.1} s, all {total} after {:.1} s",
        first_in_rocketmq.as_secs_f64(),
        first_in_files.as_secs_f64(),
        created.elapsed().as_secs_f64()
    );
    assert!(sink_counts(&out).len() as u64 >= total);
}
