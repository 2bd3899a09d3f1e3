//! datagen -> RocketMQ -> file-sink on a real broker, counted exactly, including a SIGKILL of
//! the worker mid-stream.

use std::time::Duration;

use ferry_tests::{
    Worker, assert_complete, sink_counts, temp_dir, unique, unreadable_lines, wait_for,
};
use serde_json::json;

/// Creates datagen (`count` records into a fresh topic) and, once the topic exists, file-sink
/// (`file.buffered` as given).
fn start_pipeline(
    worker: &Worker,
    count: u64,
    rate: Option<u64>,
    buffered: bool,
) -> (String, String, std::path::PathBuf) {
    let topic = unique("flow");
    let (source, sink) = (unique("src"), unique("sink"));
    let out = temp_dir("flow-out");
    let mut config = json!({
        "connector-class": "datagen",
        "datagen.topic": topic,
        "datagen.count": count.to_string(),
        "datagen.size": "100",
    });
    if let Some(rate) = rate {
        config["datagen.rate"] = json!(rate.to_string());
    }
    worker.create(&source, config);
    wait_for(
        "datagen to deliver its first records",
        Duration::from_secs(60),
        || {
            let s = worker.status(&source);
            (s["tasks"][0]["delivered"].as_u64().unwrap_or(0) > 0).then_some(())
        },
    );
    worker.create(
        &sink,
        json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap(),
               "file.buffered": buffered.to_string()}),
    );
    (source, sink, out)
}

#[test]
fn hundred_thousand_records_arrive_exactly() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let total = 100_000;
    let (_source, sink, out) = start_pipeline(&worker, total, None, false);
    wait_for(
        "all 100k records in the sink files",
        Duration::from_secs(300),
        || (sink_counts(&out).len() as u64 >= total).then_some(()),
    );
    let duplicates = assert_complete(&sink_counts(&out), total);
    println!("flow: {total} records delivered, {duplicates} duplicates");
    let status = worker.status(&sink);
    assert_eq!(status["connector"]["state"], "RUNNING", "{status}");
    assert!(
        status["tasks"][0]["delivered"].as_u64().unwrap() >= total,
        "{status}"
    );
}

#[test]
fn sigkill_mid_stream_loses_nothing() {
    sigkill_mid_stream(false);
}

/// file-sink with `file.buffered=true` writes only in `flush()`: the host must call it before
/// committing, or the buffer dies with the process (and, before the first flush, nothing is
/// ever written).
#[test]
fn sigkill_of_a_buffering_sink_loses_nothing() {
    sigkill_mid_stream(true);
}

fn sigkill_mid_stream(buffered: bool) {
    let mut worker = Worker::start(&["datagen", "file-sink"]);
    let total = 60_000;
    let (_source, _sink, out) = start_pipeline(&worker, total, Some(10_000), buffered);
    wait_for(
        "a part of the stream in the sink",
        Duration::from_secs(120),
        || (sink_counts(&out).len() > 10_000).then_some(()),
    );
    worker.kill9();
    let before = sink_counts(&out).len();
    assert!(
        before < total as usize,
        "the stream had already finished before the kill"
    );
    worker.spawn();
    wait_for(
        "all records after the restart",
        Duration::from_secs(300),
        || (sink_counts(&out).len() as u64 >= total).then_some(()),
    );
    let duplicates = assert_complete(&sink_counts(&out), total);
    println!(
        "sigkill (file.buffered={buffered}): {before} records before the kill, {total} after, {duplicates} duplicates"
    );
}

/// A worker killed in the middle of a write leaves part of a line at the end of the file (the
/// kernel stops the write at a page boundary). The next owner's first line must start on a
/// line of its own: glued to the cut one, both were unreadable and that record was lost.
#[test]
fn a_file_cut_mid_line_by_a_killed_writer_goes_on_on_a_new_line() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let (topic, total) = (unique("cut"), 1_000u64);
    let out = temp_dir("cut-out");
    let cut = r#"{"topic":"earlier","queue":4,"offs"#;
    std::fs::write(
        out.join("records-0.jsonl"),
        format!("{{\"value\":\"x\"}}\n{cut}"),
    )
    .unwrap();
    worker.create(
        &unique("src"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string()}),
    );
    worker.create(
        &unique("sink"),
        json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}),
    );
    wait_for("every record in the file", Duration::from_secs(120), || {
        (sink_counts(&out).len() as u64 >= total).then_some(())
    });
    assert_complete(&sink_counts(&out), total);
    let bad = unreadable_lines(&out);
    assert_eq!(
        bad,
        vec![("records-0.jsonl".to_string(), 2, cut.to_string())],
        "only the cut line is unreadable, on its own line"
    );
}

/// A record RocketMQ will never accept (over its 4 MiB message limit) must not stall the task
/// forever behind retries: the task fails, naming the cause, and the worker keeps serving.
#[test]
fn a_record_larger_than_rocketmq_accepts_fails_the_task_with_the_reason() {
    let worker = Worker::start(&["datagen"]);
    let name = unique("huge");
    let size = 5 * 1024 * 1024;
    worker.create(
        &name,
        json!({"connector-class": "datagen", "datagen.topic": unique("huge-t"), "datagen.size": size.to_string(),
               "datagen.batch": "1", "datagen.count": "3"}),
    );
    let status = wait_for("the task to fail", Duration::from_secs(60), || {
        let s = worker.status(&name);
        (s["tasks"][0]["state"] == "FAILED").then_some(s)
    });
    let error = &status["tasks"][0]["error"];
    assert_eq!(error["kind"], "record-too-large", "{status}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("a record of {size} bytes")),
        "{message}"
    );
    assert_eq!(status["tasks"][0]["delivered"], 0, "{status}");
    assert_eq!(worker.request("GET", "/healthz", None).0, 200);
}
