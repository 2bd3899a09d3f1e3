//! Records a task can never deliver (KIP-298 semantics) against a real worker and real brokers:
//! `errors.tolerance=all` sends them to the dead-letter topic in RocketMQ, with context headers,
//! and the pipeline goes on; `none` (the default) fails the task and names the record.

use std::time::Duration;

use ferry_tests::kafka;
use ferry_tests::{Worker, metric_sum, sink_lines, temp_dir, unique, wait_for};
use serde_json::{Value, json};

/// The DLQ records file-sink wrote to `dir`, once there are `n` distinct datagen numbers.
fn dead_letters(dir: &std::path::Path, n: usize, context: impl Fn() -> String) -> Vec<Value> {
    let number = |l: &Value| {
        l["value"]
            .as_str()
            .and_then(|v| v.split(' ').next())
            .map(String::from)
    };
    let mut waited = 0;
    wait_for(
        "records in the dead-letter topic",
        Duration::from_secs(120),
        || {
            let lines = sink_lines(dir);
            let mut numbers: Vec<String> = lines.iter().filter_map(number).collect();
            numbers.sort();
            numbers.dedup();
            waited += 1;
            if waited % 300 == 0 {
                println!("waiting for dead letters: {numbers:?}; {}", context());
            }
            (numbers.len() >= n).then_some(lines)
        },
    )
}

/// The one task of `connector`, once its status shows it.
fn task_status(worker: &Worker, connector: &str) -> Value {
    worker.status(connector)["tasks"][0].clone()
}

#[test]
fn a_sink_dead_letters_the_records_kafka_would_refuse_and_goes_on() {
    let worker = Worker::start(&["datagen", "kafka-sink", "file-sink"]);
    let (topic, dlq, out) = (unique("dlq-in"), unique("dlq"), temp_dir("dlq-out"));
    let sink = unique("ksink");
    let small = 300u64;
    kafka::create_topic(&topic, 1);
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": dlq, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &sink,
        json!({"connector-class": "kafka-sink", "rocketmq.topics": topic, "kafka.bootstrap.server": kafka::bootstrap(),
               "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
               "errors.deadletterqueue.context.headers.enable": "true", "errors.log.enable": "true"}),
    );
    // Small records around three of 1.2 MB, which Kafka's default message.max.bytes (1,000,000)
    // refuses: the rate limits interleave them, so rejections fall inside put() calls.
    worker.create(
        &unique("small"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": small.to_string(), "datagen.rate": "100"}),
    );
    worker.create(
        &unique("big"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": "3", "datagen.size": "1200000",
               "datagen.batch": "1", "datagen.rate": "1"}),
    );

    // Every small record reaches Kafka; no large one does.
    let records = kafka::read_until(&topic, Duration::from_secs(120), |r| {
        kafka::counts_by_number(r).len() as u64 >= small
    });
    assert!(
        records.iter().all(|r| r.value.len() < 1000),
        "a record over Kafka's limit reached Kafka"
    );
    ferry_tests::assert_complete(&kafka::counts_by_number(&records), small);

    // The three large ones are in the dead-letter topic, whole, with where they came from and why.
    let lines = dead_letters(&out, 3, || worker.status(&sink).to_string());
    let mut numbers = Vec::new();
    for line in &lines {
        let value = line["value"].as_str().expect("datagen values are text");
        assert_eq!(
            value.len(),
            1_200_000,
            "the dead letter keeps the whole value"
        );
        numbers.push(value.split(' ').next().unwrap().to_string());
        let h = &line["headers"];
        assert_eq!(h["connect.errors.topic"], json!(topic), "{h}");
        assert_eq!(h["connect.errors.connector.name"], json!(sink), "{h}");
        assert_eq!(h["connect.errors.task.id"], "0", "{h}");
        assert_eq!(h["connect.errors.stage"], "put", "{h}");
        assert_eq!(h["connect.errors.class.name"], "rejected", "{h}");
        assert!(
            h["connect.errors.partition"]
                .as_str()
                .is_some_and(|p| p.parse::<i32>().is_ok()),
            "{h}"
        );
        assert!(
            h["connect.errors.offset"]
                .as_str()
                .is_some_and(|o| o.parse::<i64>().is_ok_and(|o| o >= 0)),
            "{h}"
        );
        assert!(
            h["connect.errors.exception.message"]
                .as_str()
                .is_some_and(|m| m.contains("message.max.bytes")),
            "{h}"
        );
        // The record's own key travels with it.
        assert!(
            line["key"].as_str().is_some_and(|k| k.starts_with('k')),
            "{line}"
        );
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers, ["0", "1", "2"]);

    // The task never stopped, and the metrics and the log say what happened.
    assert_eq!(task_status(&worker, &sink)["state"], "RUNNING");
    let metrics = worker.metrics();
    let labels = [("connector", sink.as_str())];
    assert!(metric_sum(&metrics, "ferry_task_dead_letters_total", &labels).unwrap() >= 3.0);
    assert!(
        metric_sum(
            &metrics,
            "ferry_task_errors_total",
            &[("connector", sink.as_str()), ("kind", "rejected")]
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        worker
            .log_text()
            .contains("record cannot be delivered; tolerated (errors.tolerance=all)")
    );
}

#[test]
fn without_tolerance_a_rejected_record_fails_the_task_and_names_it() {
    let worker = Worker::start(&["datagen", "kafka-sink"]);
    let topic = unique("strict-in");
    let sink = unique("strict");
    kafka::create_topic(&topic, 1);
    worker.create(
        &sink,
        json!({"connector-class": "kafka-sink", "rocketmq.topics": topic, "kafka.bootstrap.server": kafka::bootstrap()}),
    );
    worker.create(
        &unique("big"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": "1", "datagen.size": "1200000", "datagen.batch": "1"}),
    );
    let error = wait_for(
        "the sink task to fail on the large record",
        Duration::from_secs(90),
        || {
            let task = task_status(&worker, &sink);
            (task["error"]["kind"] == "rejected").then(|| task["error"]["message"].clone())
        },
    );
    let message = error.as_str().unwrap();
    assert!(message.contains(&topic), "{message}");
    assert!(message.contains("message.max.bytes"), "{message}");
    assert!(message.contains("errors.tolerance=none"), "{message}");
    let records = kafka::read_until(&topic, Duration::from_secs(2), |_| false);
    assert!(
        records.is_empty(),
        "nothing reached Kafka: {}",
        records.len()
    );

    // A dead-letter topic a connector may not write is refused when the connector is created.
    for reserved in ["connector-config-topic", "rmq_sys_TRACE", "%DLQ%x"] {
        let (code, body) = worker.request(
            "POST",
            "/connectors",
            Some(&json!({"name": unique("bad-dlq"), "config": {
                "connector-class": "kafka-sink", "rocketmq.topics": topic, "kafka.bootstrap.server": kafka::bootstrap(),
                "errors.tolerance": "all", "errors.deadletterqueue.topic.name": reserved}})),
        );
        assert_eq!(code, 400, "{reserved}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("errors.deadletterqueue.topic.name")),
            "{body}"
        );
    }
}

#[test]
fn a_source_record_too_large_for_rocketmq_is_dead_lettered_cut_to_fit() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let (topic, dlq, out) = (unique("huge"), unique("huge-dlq"), temp_dir("huge-dlq"));
    let generator = unique("huge-gen");
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": dlq, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &generator,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": "2", "datagen.size": "5000000",
               "datagen.batch": "1", "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
               "errors.deadletterqueue.context.headers.enable": "true"}),
    );
    let lines = dead_letters(&out, 2, || worker.status(&generator).to_string());
    for line in &lines {
        let h = &line["headers"];
        assert_eq!(
            line["value"].as_str().map(str::len),
            Some(1024 * 1024),
            "cut to 1 MiB"
        );
        assert_eq!(h["connect.errors.value.truncated.from"], "5000000", "{h}");
        assert_eq!(h["connect.errors.class.name"], "record-too-large", "{h}");
        assert_eq!(h["connect.errors.stage"], "send", "{h}");
        assert_eq!(h["connect.errors.topic"], json!(topic), "{h}");
        assert_eq!(
            h["connect.errors.partition"],
            json!(format!("{topic}/0")),
            "{h}"
        );
    }
    // The source went on: its positions moved past both records and it still runs.
    let metrics = worker.metrics();
    let labels = [("connector", generator.as_str())];
    assert_eq!(
        metric_sum(&metrics, "ferry_task_records_received_total", &labels),
        Some(2.0)
    );
    assert_eq!(
        metric_sum(&metrics, "ferry_task_records_delivered_total", &labels),
        Some(0.0)
    );
    assert!(metric_sum(&metrics, "ferry_task_dead_letters_total", &labels).unwrap() >= 2.0);
    assert_eq!(task_status(&worker, &generator)["state"], "RUNNING");
}
