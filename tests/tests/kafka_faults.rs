//! Kafka <-> RocketMQ under faults: the worker killed with SIGKILL mid-stream, and Kafka
//! unreachable for 30 s. No record may be lost; duplicates are counted and reported.

use std::time::Duration;

use ferry_tests::kafka::{self, Outgoing, PrivateKafka};
use ferry_tests::{Worker, assert_complete, sink_counts, temp_dir, unique, wait_for};
use serde_json::json;

/// Tansu answers a JoinGroup after half the session timeout (DESIGN.md §7): keep it short.
const SESSION: &str = "6000";

fn records(total: u64) -> impl Iterator<Item = Outgoing> {
    (0..total).map(|i| Outgoing {
        key: format!("key-{}", i % 97).into_bytes(),
        value: format!("{i} kafka-record").into_bytes(),
        headers: vec![],
        timestamp: 1_650_000_000_000 + i as i64,
    })
}

#[test]
fn worker_sigkill_mid_stream_loses_nothing_either_way() {
    let mut worker = Worker::start(&["kafka-source", "kafka-sink", "datagen", "file-sink"]);
    let (k2r, r2k) = (unique("kill-k2r"), unique("kill-r2k"));
    let (k2r_total, r2k_total) = (150_000u64, 60_000u64);
    kafka::create_topic(&k2r, 4);
    kafka::create_topic(&r2k, 4);
    kafka::produce(&k2r, records(k2r_total));
    let out = temp_dir("kill-out");
    worker.create(
        &unique("ksrc"),
        json!({"connector-class": "kafka-source", "kafka.topics": k2r, "kafka.bootstrap.server": kafka::bootstrap(),
               "tasks.num": "2", "kafka.client.session.timeout.ms": SESSION, "kafka.poll.max.records": "200"}),
    );
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": k2r, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &unique("gen"),
        json!({"connector-class": "datagen", "datagen.topic": r2k, "datagen.count": r2k_total.to_string(), "datagen.rate": "10000"}),
    );
    worker.create(
        &unique("ksink"),
        json!({"connector-class": "kafka-sink", "rocketmq.topics": r2k, "kafka.bootstrap.server": kafka::bootstrap()}),
    );

    wait_for(
        "Kafka records flowing into RocketMQ",
        Duration::from_secs(120),
        || (sink_counts(&out).len() > 10_000).then_some(()),
    );
    worker.kill9();
    let before = sink_counts(&out).len() as u64;
    assert!(
        before < k2r_total,
        "the Kafka -> RocketMQ stream finished before the kill"
    );
    worker.spawn();

    wait_for(
        "every Kafka record in RocketMQ after the restart",
        Duration::from_secs(400),
        || (sink_counts(&out).len() as u64 >= k2r_total).then_some(()),
    );
    let dups_k2r = assert_complete(&sink_counts(&out), k2r_total);
    let got = kafka::read_until(&r2k, Duration::from_secs(400), |r| {
        kafka::counts_by_number(r).len() as u64 >= r2k_total
    });
    let dups_r2k = assert_complete(&kafka::counts_by_number(&got), r2k_total);
    println!(
        "sigkill: {before} of {k2r_total} copied before the kill; duplicates Kafka->RocketMQ {dups_k2r}, RocketMQ->Kafka {dups_r2k}"
    );
}

#[test]
fn kafka_unreachable_for_30s_loses_nothing() {
    let kafka = PrivateKafka::start();
    let worker = Worker::start(&["kafka-source", "kafka-sink", "datagen", "file-sink"]);
    let (k2r, r2k) = (unique("cut-k2r"), unique("cut-r2k"));
    let (k2r_total, r2k_total) = (20_000u64, 30_000u64);
    kafka::create_topic_on(&kafka.bootstrap(), &k2r, 2);
    kafka::create_topic_on(&kafka.bootstrap(), &r2k, 2);
    kafka::produce_on(&kafka.bootstrap(), &k2r, records(k2r_total / 2));
    let out = temp_dir("cut-out");
    worker.create(
        &unique("ksrc"),
        json!({"connector-class": "kafka-source", "kafka.topics": k2r, "kafka.bootstrap.server": kafka.bootstrap(),
               "kafka.client.session.timeout.ms": SESSION}),
    );
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": k2r, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &unique("gen"),
        json!({"connector-class": "datagen", "datagen.topic": r2k, "datagen.count": r2k_total.to_string(), "datagen.rate": "1000"}),
    );
    let sink = unique("ksink");
    worker.create(
        &sink,
        json!({"connector-class": "kafka-sink", "rocketmq.topics": r2k, "kafka.bootstrap.server": kafka.bootstrap(),
               "kafka.client.message.timeout.ms": "5000"}),
    );
    wait_for("both directions flowing", Duration::from_secs(120), || {
        let delivered = worker.status(&sink)["tasks"][0]["delivered"]
            .as_u64()
            .unwrap_or(0);
        (sink_counts(&out).len() as u64 >= k2r_total / 2 && delivered > 1000).then_some(())
    });

    // Kafka goes away for 30 s (the scenario itself, not a wait for a condition).
    kafka.cutter.cut();
    let message = wait_for(
        "kafka-sink to report the outage",
        Duration::from_secs(30),
        || {
            let task = &worker.status(&sink)["tasks"][0];
            (task["error"]["kind"] == "retriable").then(|| {
                task["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        },
    );
    std::thread::sleep(Duration::from_secs(25));
    kafka.cutter.heal();
    kafka::produce_on(
        &kafka.bootstrap(),
        &k2r,
        records(k2r_total).skip(k2r_total as usize / 2),
    );

    wait_for(
        "every Kafka record in RocketMQ",
        Duration::from_secs(300),
        || (sink_counts(&out).len() as u64 >= k2r_total).then_some(()),
    );
    let dups_k2r = assert_complete(&sink_counts(&out), k2r_total);
    let got = kafka::read_until_on(&kafka.bootstrap(), &r2k, Duration::from_secs(300), |r| {
        kafka::counts_by_number(r).len() as u64 >= r2k_total
    });
    let dups_r2k = assert_complete(&kafka::counts_by_number(&got), r2k_total);
    println!(
        "kafka outage: sink reported `{message}`; duplicates Kafka->RocketMQ {dups_k2r}, RocketMQ->Kafka {dups_r2k}"
    );
}

#[test]
fn retry_limit_gives_up_without_committing_and_restart_resumes() {
    let kafka = PrivateKafka::start();
    let worker = Worker::start(&["kafka-sink", "datagen"]);
    let topic = unique("limit");
    let total = 5_000u64;
    kafka::create_topic_on(&kafka.bootstrap(), &topic, 2);
    let sink = unique("ksink");
    worker.create(
        &sink,
        json!({"connector-class": "kafka-sink", "rocketmq.topics": topic, "kafka.bootstrap.server": kafka.bootstrap(),
               "kafka.client.message.timeout.ms": "1000", "errors.retry.timeout": "4000"}),
    );
    // Kafka is unreachable before the first record: every put fails until the limit is hit.
    kafka.cutter.cut();
    worker.create(
        &unique("gen"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string()}),
    );
    let error = wait_for("the sink to give up", Duration::from_secs(90), || {
        let task = &worker.status(&sink)["tasks"][0];
        (task["state"] == "FAILED" && task["error"]["kind"] == "retry-timeout").then(|| {
            task["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    });
    assert!(error.contains("errors.retry.timeout is 4000 ms"), "{error}");
    let status = worker.status(&sink);
    assert_eq!(status["connector"]["state"], "FAILED");
    assert_eq!(
        status["tasks"][0]["delivered"], 0,
        "nothing reached Kafka: {status}"
    );
    kafka.cutter.heal();
    let (code, body) = worker.request("POST", &format!("/connectors/{sink}/restart"), None);
    assert_eq!(code, 204, "{body}");
    let got = kafka::read_until_on(&kafka.bootstrap(), &topic, Duration::from_secs(180), |r| {
        kafka::counts_by_number(r).len() as u64 >= total
    });
    let dups = assert_complete(&kafka::counts_by_number(&got), total);
    println!(
        "retry limit: gave up with `{error}`; after restart all {total} arrived, {dups} duplicates"
    );
}
