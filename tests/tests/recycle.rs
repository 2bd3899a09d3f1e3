//! A guest that leaks (componentize-py returns leak about a record's size per record) is
//! reopened by the host at a safe point before it runs out of memory: every record arrives
//! exactly once, and the task never faults.

use std::time::Duration;

use ferry_tests::{
    Worker, assert_complete, metric_sum, sink_counts, temp_dir, unique, wait_for_records,
};
use serde_json::json;

#[test]
fn a_leaking_python_source_is_recycled_without_loss_or_duplicates() {
    let worker = Worker::start(&["datagen-py", "file-sink"]);
    let total = 60_000u64;
    let topic = unique("recycle");
    let source = unique("leaky");
    // 32 MiB: the guest starts at ~12 MiB and leaks ~1 KiB per 1 KiB record, so it passes
    // 75% (24 MiB) about every 12,000 records.
    worker.create(
        &source,
        json!({"connector-class": "datagen-py", "datagen.topic": topic, "datagen.count": total.to_string(),
               "datagen.size": "1024", "task.memory.max.bytes": (32u64 << 20).to_string()}),
    );
    let out = temp_dir("recycle-out");
    worker.create(
        &unique("sink"),
        json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}),
    );
    wait_for_records(
        "every record in the sink",
        &out,
        total,
        Duration::from_secs(300),
        || worker.status(&source).to_string(),
    );
    let duplicates = assert_complete(&sink_counts(&out), total);
    assert_eq!(
        duplicates, 0,
        "a recycled source repeats nothing it had committed"
    );
    let recycled = metric_sum(&worker.metrics(), "ferry_guests_recycled_total", &[]).unwrap_or(0.0);
    assert!(recycled >= 2.0, "the guest was reopened ({recycled} times)");
    let status = worker.status(&source);
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert!(
        status["tasks"][0]["error"].is_null(),
        "no fault was reported: {status}"
    );
    let log = worker.log_text();
    assert!(log.contains("reopening the guest at its committed positions"));
    assert!(
        !log.contains("out of memory"),
        "the guest never ran out of memory"
    );
    println!("recycle: {total} records, guest reopened {recycled} times, {duplicates} duplicates");
}
