//! The operator's surface of one worker: `ferry --help` / `--version`, `GET /`, `/readyz`, and
//! JSON logs.

use std::time::Duration;

use ferry_tests::{Worker, ferry_bin, unique, wait_for};
use serde_json::Value;

#[test]
fn the_binary_explains_itself() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(ferry_bin())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&["--version"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.trim(), format!("ferry {}", env!("CARGO_PKG_VERSION")));
    let (code, text) = run(&["--help"]);
    assert_eq!(code, Some(0), "{text}");
    for expected in ["-c, --config <FILE>", "FERRY_LOG_FORMAT", "Exit codes"] {
        assert!(text.contains(expected), "--help lacks {expected}:\n{text}");
    }
    // No settings file: a usage error (exit 2) that names the missing flag.
    let (code, text) = run(&[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--config <FILE>"), "{text}");
}

#[test]
fn root_and_readiness_describe_a_working_worker_and_logs_can_be_json() {
    let cluster = unique("op");
    let mut worker = Worker::prepare(&["datagen"], &cluster, &unique("w"));
    worker.env.push(("FERRY_LOG_FORMAT".into(), "json".into()));
    worker.spawn();
    let (code, root) = worker.request("GET", "/", None);
    assert_eq!(code, 200, "{root}");
    assert_eq!(root["worker_id"], worker.worker_id.as_str());
    assert_eq!(root["cluster_name"], cluster.as_str());
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        root["wit_versions"],
        serde_json::json!(["ferry:connector@0.1.0", "ferry:connector@0.2.0"])
    );
    let ready = wait_for("the worker to be ready", Duration::from_secs(60), || {
        let (code, body) = worker.request("GET", "/readyz", None);
        (code == 200).then_some(body)
    });
    assert_eq!(ready["status"], "ready");
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["ok"], true, "{ready}");
            c["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, ["plugins", "rocketmq", "membership"]);
    // Every log line is one JSON object with a level and a message.
    let log = worker.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("ferry worker listening"))),
        "{log}"
    );
}

#[test]
fn log_msg_detail_logs_each_record_moved_until_turned_off() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let (code, body) = worker.request("PUT", "/logMsgDetail/true", None);
    assert_eq!(code, 200, "{body}");
    let (topic, out) = (unique("detail"), ferry_tests::temp_dir("detail-out"));
    worker.create(&unique("view"), serde_json::json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}));
    worker.create(&unique("gen"), serde_json::json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": "5"}));
    let moved = |direction: &str| {
        worker
            .log_text()
            .lines()
            .filter(|l| {
                l.contains("record moved")
                    && l.contains(&format!("direction=\"{direction}\""))
                    && l.contains(&topic)
            })
            .count()
    };
    wait_for("5 records logged each way", Duration::from_secs(60), || {
        (moved("source->rocketmq") == 5 && moved("rocketmq->sink") >= 5).then_some(())
    });
    let line = worker
        .log_text()
        .lines()
        .find(|l| l.contains("record moved"))
        .unwrap()
        .to_string();
    for field in [
        "connector=",
        "task=",
        "partition=",
        "offset=",
        "key=",
        "value_bytes=",
        "value_head=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    // Off again (the seed's GET form): records keep flowing, unlogged.
    assert_eq!(worker.request("GET", "/logMsgDetail/false", None).0, 200);
    let (topic2, out2) = (unique("quiet"), ferry_tests::temp_dir("quiet-out"));
    worker.create(&unique("view"), serde_json::json!({"connector-class": "file-sink", "rocketmq.topics": topic2, "file.dir": out2.to_str().unwrap()}));
    worker.create(&unique("gen"), serde_json::json!({"connector-class": "datagen", "datagen.topic": topic2, "datagen.count": "5"}));
    wait_for(
        "the second 5 records delivered",
        Duration::from_secs(60),
        || (ferry_tests::sink_counts(&out2).len() == 5).then_some(()),
    );
    assert!(
        !worker
            .log_text()
            .lines()
            .any(|l| l.contains("record moved") && l.contains(&topic2))
    );
    assert_eq!(worker.request("GET", "/logMsgDetail/maybe", None).0, 400);
}
