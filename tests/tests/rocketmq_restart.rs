//! The RocketMQ broker restarted mid-stream, with traffic in both directions: no record lost.
//! (Its own test binary: the restart would disturb tests running beside it.)

use std::time::Duration;

use ferry_tests::kafka::{self, Outgoing};
use ferry_tests::{Worker, assert_complete, brokers, sink_counts, temp_dir, unique, wait_for};
use serde_json::json;

#[test]
fn rocketmq_broker_restart_mid_stream_loses_nothing() {
    let worker = Worker::start(&["kafka-source", "kafka-sink", "datagen", "file-sink"]);
    let (k2r, r2k) = (unique("restart-k2r"), unique("restart-r2k"));
    let (k2r_total, r2k_total) = (40_000u64, 40_000u64);
    kafka::create_topic(&k2r, 2);
    kafka::create_topic(&r2k, 2);
    let out = temp_dir("restart-out");
    worker.create(
        &unique("ksrc"),
        json!({"connector-class": "kafka-source", "kafka.topics": k2r, "kafka.bootstrap.server": kafka::bootstrap(),
               "kafka.client.session.timeout.ms": "6000"}),
    );
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": k2r, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &unique("gen"),
        json!({"connector-class": "datagen", "datagen.topic": r2k, "datagen.count": r2k_total.to_string(), "datagen.rate": "4000"}),
    );
    worker.create(
        &unique("ksink"),
        json!({"connector-class": "kafka-sink", "rocketmq.topics": r2k, "kafka.bootstrap.server": kafka::bootstrap()}),
    );
    let produce = |range: std::ops::Range<u64>| {
        kafka::produce(
            &k2r,
            range.map(|i| Outgoing {
                key: format!("key-{}", i % 31).into_bytes(),
                value: format!("{i} via-restart").into_bytes(),
                headers: vec![],
                timestamp: 1_650_000_000_000 + i as i64,
            }),
        )
    };
    produce(0..k2r_total / 2);
    wait_for("both directions flowing", Duration::from_secs(120), || {
        (sink_counts(&out).len() as u64 >= k2r_total / 4).then_some(())
    });

    brokers("rocketmq-broker-down");
    produce(k2r_total / 2..k2r_total);
    brokers("rocketmq-broker-up");

    wait_for(
        "every Kafka record in RocketMQ after the restart",
        Duration::from_secs(300),
        || (sink_counts(&out).len() as u64 >= k2r_total).then_some(()),
    );
    let dups_k2r = assert_complete(&sink_counts(&out), k2r_total);
    let got = kafka::read_until(&r2k, Duration::from_secs(300), |r| {
        r.iter()
            .filter_map(|r| {
                String::from_utf8_lossy(&r.value)
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
            >= r2k_total
    });
    let mut counts = std::collections::BTreeMap::new();
    for r in &got {
        if let Some(n) = String::from_utf8_lossy(&r.value)
            .split(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            *counts.entry(n).or_insert(0u32) += 1;
        }
    }
    let dups_r2k = assert_complete(&counts, r2k_total);
    println!("rocketmq restart: duplicates Kafka->RocketMQ {dups_k2r}, RocketMQ->Kafka {dups_r2k}");
}
