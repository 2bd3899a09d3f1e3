//! The WIT contract, `ferry:connector@0.2.0`: sources name their own source partitions, so
//! positions belong to the source and not to the destination topic; components built against
//! the frozen 0.1.0 still run; one built against a version the host does not know is refused
//! with a message that says to rebuild it.

use std::time::Duration;

use ferry_tests::kafka::{self, Outgoing};
use ferry_tests::{Worker, assert_complete, sink_counts, temp_dir, unique, wait_for};
use serde_json::{Value, json};

/// The `wit` a worker lists for `class`, or the failure listed for a file named `file`.
fn plugin_wit(worker: &Worker, class: &str) -> Option<String> {
    let list = worker.request("GET", "/connector-plugins", None).1;
    list["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["class"] == class)
        .and_then(|p| p["wit"].as_str().map(String::from))
}

#[test]
fn a_component_built_against_0_1_0_still_runs_and_its_positions_are_derived() {
    let worker = Worker::start(&["legacy-source", "legacy-sink", "datagen", "file-sink"]);
    assert_eq!(
        plugin_wit(&worker, "legacy-source").as_deref(),
        Some("ferry:connector@0.1.0")
    );
    assert_eq!(
        plugin_wit(&worker, "legacy-sink").as_deref(),
        Some("ferry:connector@0.1.0")
    );
    assert_eq!(
        plugin_wit(&worker, "datagen").as_deref(),
        Some("ferry:connector@0.2.0")
    );
    assert_eq!(
        plugin_wit(&worker, "file-sink").as_deref(),
        Some("ferry:connector@0.2.0")
    );
    let topic = unique("legacy");
    let out = temp_dir("legacy-out");
    let name = unique("old");
    worker.create(
        &name,
        json!({"connector-class": "legacy-source", "legacy.topic": topic, "legacy.count": "500"}),
    );
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}));
    // A 0.1.0 sink reads the same topic.
    let legacy_out = temp_dir("legacy-sink-out");
    worker.create(&unique("old-sink"), json!({"connector-class": "legacy-sink", "rocketmq.topics": topic, "file.dir": legacy_out.to_str().unwrap()}));
    wait_for("all 500 legacy records", Duration::from_secs(60), || {
        (sink_counts(&out).len() >= 500).then_some(())
    });
    assert_eq!(assert_complete(&sink_counts(&out), 500), 0);
    let legacy_lines = wait_for(
        "the 0.1.0 sink to write all 500",
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(legacy_out.join("legacy-0.txt")).ok()?;
            let lines: std::collections::BTreeSet<String> =
                text.lines().map(String::from).collect();
            (lines.len() >= 500).then_some(lines)
        },
    );
    assert_eq!(
        legacy_lines,
        (0..500).map(|n| format!("{n} legacy")).collect()
    );
    // 0.1.0's position rule: `<topic>/<partition>` -> the last record's offset.
    wait_for(
        "the derived position stored",
        Duration::from_secs(10),
        || {
            let stored: Value = std::fs::read(worker.store.join("positions.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())?;
            (stored[&name][format!("{topic}/0")] == "499").then_some(())
        },
    );
}

#[test]
fn a_component_of_an_unknown_contract_version_is_refused_with_the_reason() {
    let worker = Worker::start(&["datagen"]);
    // The legacy component with its export renamed to a version this host does not run (the
    // same length, so the binary stays valid).
    let mut bytes = std::fs::read(ferry_tests::built_plugins().join("legacy-source.wasm")).unwrap();
    let (from, to) = (
        b"ferry:connector/source@0.1.0",
        b"ferry:connector/source@0.9.0",
    );
    let mut replaced = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
        }
        i += 1;
    }
    assert!(
        replaced > 0,
        "the export name was not found in the component"
    );
    std::fs::write(worker.plugins.join("future.wasm"), bytes).unwrap();
    let (code, report) = worker.request("POST", "/plugins/reload", None);
    assert_eq!(code, 200, "{report}");
    let list = worker.request("GET", "/connector-plugins", None).1;
    let failure = list["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f.to_string().contains("future.wasm"))
        .unwrap_or_else(|| panic!("not listed as failed: {list}"))
        .to_string();
    assert!(
        failure.contains("ferry:connector/source@0.9.0") && failure.contains("rebuild"),
        "{failure}"
    );
    // The other plugins are untouched.
    assert_eq!(
        plugin_wit(&worker, "datagen").as_deref(),
        Some("ferry:connector@0.2.0")
    );
}

#[test]
fn two_kafka_topics_renamed_to_one_keep_their_own_positions_through_a_sigkill() {
    // topic.rename=a:x,b:x: with positions keyed by destination topic, b's offsets were
    // committed onto a and a's records skipped after a restart. Now each Kafka partition is its
    // own source partition.
    let mut worker = Worker::start(&["kafka-source", "file-sink"]);
    let (a, b, x) = (unique("ren-a"), unique("ren-b"), unique("ren-x"));
    kafka::create_topic(&a, 2);
    kafka::create_topic(&b, 2);
    let per_topic = 6_000u64;
    let records = |topic: &str, from: u64, to: u64, base: u64| {
        kafka::produce(
            topic,
            (from..to).map(|i| Outgoing {
                key: format!("key-{}", i % 13).into_bytes(),
                value: format!("{} via-{topic}", base + i).into_bytes(),
                headers: vec![],
                timestamp: 1_670_000_000_000 + i as i64,
            }),
        )
    };
    records(&a, 0, per_topic / 2, 0);
    records(&b, 0, per_topic / 2, per_topic);
    let out = temp_dir("ren-out");
    worker.create(
        &unique("src"),
        json!({"connector-class": "kafka-source", "kafka.topics": format!("{a},{b}"), "kafka.bootstrap.server": kafka::bootstrap(),
               "topic.rename": format!("{a}:{x},{b}:{x}"), "kafka.client.session.timeout.ms": "6000", "kafka.poll.max.records": "200"}),
    );
    worker.create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": x, "file.dir": out.to_str().unwrap()}));
    wait_for(
        "records of both topics arriving",
        Duration::from_secs(120),
        || {
            let seen = sink_counts(&out);
            (seen.keys().any(|n| *n < per_topic)
                && seen.keys().any(|n| *n >= per_topic)
                && seen.len() > 1000)
                .then_some(())
        },
    );
    worker.kill9();
    records(&a, per_topic / 2, per_topic, 0);
    records(&b, per_topic / 2, per_topic, per_topic);
    worker.spawn();
    wait_for(
        "every record of both topics",
        Duration::from_secs(300),
        || (sink_counts(&out).len() as u64 >= 2 * per_topic).then_some(()),
    );
    let duplicates = assert_complete(&sink_counts(&out), 2 * per_topic);
    println!(
        "rename a:x,b:x with a SIGKILL: {} records, none lost, {duplicates} duplicates",
        2 * per_topic
    );
}
