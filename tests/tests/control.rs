//! The operator's control surface against a real worker and real brokers: `/metrics`, Kafka
//! Connect's pause / resume / stop (KIP-980), task routes and restarts, `?expand=`, and config
//! validation without creating.

use std::time::Duration;

use ferry_tests::{Worker, metric_sum, sink_counts, temp_dir, unique, wait_for};
use serde_json::{Value, json};

/// `started_at_ms` of each task of `connector`, once every task runs.
fn started_at(worker: &Worker, connector: &str, tasks: usize) -> Vec<i64> {
    wait_for(
        &format!("{tasks} tasks of {connector} running"),
        Duration::from_secs(60),
        || {
            let status = worker.status(connector);
            let list = status["tasks"].as_array()?;
            (list.len() == tasks && list.iter().all(|t| t["state"] == "RUNNING")).then(|| {
                list.iter()
                    .map(|t| t["started_at_ms"].as_i64().unwrap())
                    .collect()
            })
        },
    )
}

#[test]
fn metrics_count_every_record_moved() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let (topic, out) = (unique("metrics"), temp_dir("metrics-out"));
    let (generator, view) = (unique("gen"), unique("view"));
    let total = 3_000u64;
    worker.create(&view, json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &generator,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string(), "tasks.num": "2"}),
    );
    wait_for("every record in the file", Duration::from_secs(60), || {
        (sink_counts(&out).len() as u64 >= total).then_some(())
    });
    let seen: u64 = sink_counts(&out).values().map(|n| *n as u64).sum();
    // The sink's counter catches up with its commit right after the file is written.
    let text = wait_for(
        "the sink's delivered count",
        Duration::from_secs(10),
        || {
            let text = worker.metrics();
            (metric_sum(
                &text,
                "ferry_task_records_delivered_total",
                &[("connector", &view)],
            ) == Some(seen as f64))
            .then_some(text)
        },
    );
    let sum = |name: &str, connector: &str| {
        metric_sum(&text, name, &[("connector", connector)])
            .unwrap_or_else(|| panic!("no {name} for {connector} in\n{text}"))
    };
    let total = total as f64;
    assert_eq!(sum("ferry_task_records_received_total", &generator), total);
    assert_eq!(sum("ferry_task_records_delivered_total", &generator), total);
    assert_eq!(sum("ferry_task_records_received_total", &view), seen as f64);
    let bytes = sum("ferry_task_delivered_bytes_total", &generator);
    assert!(bytes >= total, "{bytes} bytes for {total} records");
    assert_eq!(
        sum("ferry_task_received_bytes_total", &view),
        bytes * seen as f64 / total
    );
    assert!(sum("ferry_task_batches_total", &view) >= 1.0);
    assert!(sum("ferry_task_put_seconds_count", &view) >= 1.0);
    assert!(sum("ferry_task_poll_seconds_count", &generator) >= 1.0);
    assert!(sum("ferry_task_send_seconds_count", &generator) >= 1.0);
    assert_eq!(
        sum("ferry_task_lag_records", &view),
        0.0,
        "the sink caught up"
    );
    // One-hot state: each of the 3 tasks is RUNNING and nothing else.
    let running = metric_sum(&text, "ferry_task_state", &[("state", "RUNNING")]).unwrap();
    let any = metric_sum(&text, "ferry_task_state", &[]).unwrap();
    assert_eq!((running, any), (3.0, 3.0), "{text}");
    // Every series carries the worker; worker-wide figures are there.
    let me = [("worker", worker.worker_id.as_str())];
    assert_eq!(metric_sum(&text, "ferry_worker_members", &me), Some(1.0));
    assert_eq!(metric_sum(&text, "ferry_worker_tasks", &me), Some(3.0));
    assert!(metric_sum(&text, "ferry_plugin_loads_total", &me).unwrap() >= 2.0);
    assert!(metric_sum(&text, "ferry_guest_memory_bytes", &me).unwrap() > 0.0);
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    // A deleted connector's series are gone.
    assert_eq!(
        worker
            .request("DELETE", &format!("/connectors/{generator}"), None)
            .0,
        204
    );
    wait_for(
        "the generator's series dropped",
        Duration::from_secs(30),
        || {
            metric_sum(
                &worker.metrics(),
                "ferry_task_records_delivered_total",
                &[("connector", &generator)],
            )
            .is_none()
            .then_some(())
        },
    );
}

#[test]
fn pause_holds_tasks_in_place_stop_shuts_them_down_and_resume_continues() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let (topic, out) = (unique("pause"), temp_dir("pause-out"));
    let (generator, view) = (unique("gen"), unique("view"));
    let total = 20_000u64;
    worker.create(&view, json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &generator,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string(), "datagen.rate": "2000"}),
    );
    wait_for("records flowing", Duration::from_secs(60), || {
        (sink_counts(&out).len() > 500).then_some(())
    });
    let before = started_at(&worker, &view, 1);

    let (code, body) = worker.request("PUT", &format!("/connectors/{view}/pause"), None);
    assert_eq!(code, 202, "{body}");
    let paused = wait_for("the sink paused", Duration::from_secs(30), || {
        let s = worker.status(&view);
        (s["connector"]["state"] == "PAUSED" && s["tasks"][0]["state"] == "PAUSED").then_some(s)
    });
    assert_eq!(
        paused["tasks"][0]["started_at_ms"].as_i64().unwrap(),
        before[0],
        "a paused task keeps its place (not restarted)"
    );
    let held = sink_counts(&out).len();
    // The generator keeps going: once RocketMQ holds 2,000 records more than the paused sink
    // has written, it still has written none of them.
    let sent = |w: &Worker| {
        metric_sum(
            &w.metrics(),
            "ferry_task_records_delivered_total",
            &[("connector", &generator)],
        )
        .unwrap_or(0.0)
    };
    wait_for(
        "2,000 records the paused sink has not written",
        Duration::from_secs(60),
        || (sent(&worker) >= held as f64 + 2_000.0).then_some(()),
    );
    assert_eq!(
        sink_counts(&out).len(),
        held,
        "a paused sink writes nothing"
    );

    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{view}/resume"), None)
            .0,
        202
    );
    wait_for("more records after resume", Duration::from_secs(30), || {
        (sink_counts(&out).len() > held).then_some(())
    });
    assert_eq!(
        started_at(&worker, &view, 1),
        before,
        "resume continues the same task"
    );

    // Stop: the tasks are shut down (none listed), the config kept.
    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{view}/stop"), None)
            .0,
        202
    );
    wait_for("the sink stopped", Duration::from_secs(30), || {
        let s = worker.status(&view);
        (s["connector"]["state"] == "STOPPED" && s["tasks"].as_array()?.is_empty()).then_some(())
    });
    assert_eq!(
        worker
            .request("GET", &format!("/connectors/{view}/config"), None)
            .0,
        200
    );
    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{view}/resume"), None)
            .0,
        202
    );
    let after = started_at(&worker, &view, 1);
    assert!(
        after[0] > before[0],
        "a stopped connector's task starts anew"
    );
    wait_for("every record in the file", Duration::from_secs(120), || {
        (sink_counts(&out).len() as u64 >= total).then_some(())
    });
    assert_eq!(worker.request("PUT", "/connectors/nope/pause", None).0, 404);
}

#[test]
fn task_routes_restart_one_task_or_the_selected_ones() {
    let worker = Worker::start(&["datagen"]);
    let generator = unique("gen");
    let topic = unique("tasks");
    worker.create(
        &generator,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": "0", "datagen.rate": "10", "tasks.num": "2"}),
    );
    let before = started_at(&worker, &generator, 2);

    let (code, tasks) = worker.request("GET", &format!("/connectors/{generator}/tasks"), None);
    assert_eq!(code, 200, "{tasks}");
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(t["id"], json!({"connector": generator, "task": i}));
        assert_eq!(t["config"]["datagen.topic"], topic.as_str());
    }
    let (code, one) = worker.request(
        "GET",
        &format!("/connectors/{generator}/tasks/1/status"),
        None,
    );
    assert_eq!(code, 200, "{one}");
    assert_eq!(
        (one["id"].as_u64(), one["state"].as_str()),
        (Some(1), Some("RUNNING"))
    );
    assert_eq!(one["worker_id"], worker.worker_id.as_str());
    let (code, missing) = worker.request(
        "GET",
        &format!("/connectors/{generator}/tasks/7/status"),
        None,
    );
    assert_eq!(
        (code, missing["error"].as_str()),
        (404, Some("task_not_found")),
        "{missing}"
    );
    assert_eq!(
        worker
            .request(
                "POST",
                &format!("/connectors/{generator}/tasks/7/restart"),
                None
            )
            .0,
        404
    );
    let (code, bad) = worker.request(
        "GET",
        &format!("/connectors/{generator}/tasks/x/status"),
        None,
    );
    assert_eq!(
        (code, bad["error"].as_str()),
        (400, Some("bad_request")),
        "{bad}"
    );

    // One task restarts; the other keeps running as it was.
    let (code, body) = worker.request(
        "POST",
        &format!("/connectors/{generator}/tasks/1/restart"),
        None,
    );
    assert_eq!(code, 204, "{body}");
    let after = wait_for("task 1 restarted", Duration::from_secs(30), || {
        let now = started_at(&worker, &generator, 2);
        (now[1] > before[1]).then_some(now)
    });
    assert_eq!(after[0], before[0], "task 0 untouched");

    // Nothing failed: onlyFailed restarts nothing.
    let (code, answer) = worker.request(
        "POST",
        &format!("/connectors/{generator}/restart?includeTasks=true&onlyFailed=true"),
        None,
    );
    assert_eq!(code, 202, "{answer}");
    assert!(
        answer["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] != "RESTARTING"),
        "{answer}"
    );
    // includeTasks: both restart.
    let (code, answer) = worker.request(
        "POST",
        &format!("/connectors/{generator}/restart?includeTasks=true"),
        None,
    );
    assert_eq!(code, 202, "{answer}");
    assert!(
        answer["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "RESTARTING"),
        "{answer}"
    );
    wait_for("both tasks restarted", Duration::from_secs(30), || {
        let now = started_at(&worker, &generator, 2);
        (now[0] > after[0] && now[1] > after[1]).then_some(())
    });
    let (code, body) = worker.request(
        "POST",
        &format!("/connectors/{generator}/restart?includeTasks=maybe"),
        None,
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );

    // ?expand=status&expand=info
    let (code, all) = worker.request("GET", "/connectors?expand=status&expand=info", None);
    assert_eq!(code, 200, "{all}");
    let entry = &all[&generator];
    assert_eq!(entry["info"]["type"], "source", "{all}");
    assert_eq!(entry["info"]["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(entry["info"]["config"]["datagen.topic"], topic.as_str());
    assert_eq!(entry["status"]["name"], generator.as_str());
    assert!(entry["status"]["tasks"].is_array());
    let (code, only) = worker.request("GET", "/connectors?expand=status", None);
    assert_eq!(code, 200);
    assert!(only[&generator]["info"].is_null() && only[&generator]["status"].is_object());
    assert_eq!(
        worker
            .request("GET", "/connectors?expand=everything", None)
            .0,
        400
    );
    let (_, names) = worker.request("GET", "/connectors", None);
    assert!(
        names
            .as_array()
            .unwrap()
            .contains(&Value::from(generator.as_str()))
    );
}

#[test]
fn validate_answers_per_key_without_creating_anything() {
    let worker = Worker::start(&["datagen"]);
    let (code, keys) = worker.request("GET", "/connector-plugins/datagen/config", None);
    assert_eq!(code, 200, "{keys}");
    let topic_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "datagen.topic")
        .unwrap_or_else(|| panic!("{keys}"));
    assert_eq!(topic_key["required"], true);
    assert!(!topic_key["documentation"].as_str().unwrap().is_empty());

    let validate = |config: Value| {
        let (code, body) = worker.request(
            "PUT",
            "/connector-plugins/datagen/config/validate",
            Some(&config),
        );
        assert_eq!(code, 200, "{body}");
        body
    };
    let errors_of = |answer: &Value, key: &str| -> Vec<String> {
        answer["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .map(|c| serde_json::from_value(c["value"]["errors"].clone()).unwrap())
            .unwrap_or_default()
    };
    // The required key is missing.
    let answer = validate(json!({"datagen.count": "10"}));
    assert_eq!(answer["name"], "datagen");
    assert_eq!(answer["error_count"], 1, "{answer}");
    assert!(
        errors_of(&answer, "datagen.topic")[0].contains("datagen.topic"),
        "{answer}"
    );
    // The guest's own validate() refuses a value; the host refuses another.
    let answer = validate(json!({"datagen.topic": "t", "datagen.rate": "-1"}));
    assert_eq!(answer["error_count"], 1, "{answer}");
    assert!(
        errors_of(&answer, "datagen.rate")[0].contains("positive"),
        "{answer}"
    );
    let answer = validate(json!({"datagen.topic": "t", "tasks.num": "lots"}));
    assert_eq!(answer["error_count"], 1, "{answer}");
    assert_eq!(errors_of(&answer, "tasks.num").len(), 1, "{answer}");
    // A good config: no errors; a secret is shown hidden.
    let answer = validate(json!({"datagen.topic": "t", "api.password": "hunter2-hunter2"}));
    assert_eq!(answer["error_count"], 0, "{answer}");
    let password = answer["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "api.password")
        .unwrap();
    assert_eq!(password["value"]["value"], "[hidden]");
    // Nothing was created; unknown classes and a mismatched class are refused.
    assert_eq!(worker.request("GET", "/connectors", None).1, json!([]));
    let (code, body) = worker.request(
        "PUT",
        "/connector-plugins/nope/config/validate",
        Some(&json!({})),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("unknown_connector_class")),
        "{body}"
    );
    assert_eq!(
        worker
            .request("GET", "/connector-plugins/nope/config", None)
            .0,
        404
    );
    let (code, body) = worker.request(
        "PUT",
        "/connector-plugins/datagen/config/validate",
        Some(&json!({"connector-class": "file-sink"})),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("class_mismatch")),
        "{body}"
    );
}

#[test]
fn offsets_of_a_stopped_connector_can_be_read_set_and_reset() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let (topic, out) = (unique("offsets"), temp_dir("offsets-out"));
    let (generator, view) = (unique("gen"), unique("view"));
    let total = 500u64;
    worker.create(&view, json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}));
    worker.create(
        &generator,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string()}),
    );
    wait_for("every record in the file", Duration::from_secs(60), || {
        (sink_counts(&out).len() as u64 >= total).then_some(())
    });
    let offsets = |name: &str| {
        let (code, body) = worker.request("GET", &format!("/connectors/{name}/offsets"), None);
        assert_eq!(code, 200, "{body}");
        body["offsets"].as_array().unwrap().clone()
    };
    // The source: its delivered position; the sink: its group's offsets, one per queue.
    let partition = format!("{topic}/0");
    wait_for(
        "the source's last position",
        Duration::from_secs(30),
        || {
            offsets(&generator)
                .iter()
                .any(|o| {
                    o["partition"]["source_partition"] == partition.as_str()
                        && o["offset"]["source_offset"] == "499"
                })
                .then_some(())
        },
    );
    let committed = wait_for(
        "the sink's offsets to cover every record",
        Duration::from_secs(30),
        || {
            let list = offsets(&view);
            let sum: i64 = list
                .iter()
                .map(|o| o["offset"]["offset"].as_i64().unwrap())
                .sum();
            (sum == total as i64).then_some(list)
        },
    );
    assert!(
        committed
            .iter()
            .all(|o| o["partition"]["topic"] == topic.as_str()),
        "{committed:?}"
    );

    // Only a stopped connector's offsets change.
    let (code, body) = worker.request("DELETE", &format!("/connectors/{view}/offsets"), None);
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("connector_not_stopped")),
        "{body}"
    );

    // Reset the sink: it delivers everything again from offset 0.
    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{view}/stop"), None)
            .0,
        202
    );
    let (code, body) = worker.request("DELETE", &format!("/connectors/{view}/offsets"), None);
    assert_eq!(code, 200, "{body}");
    let after = offsets(&view);
    assert!(
        after.iter().all(|o| o["offset"]["offset"] == 0),
        "{after:?}"
    );
    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{view}/resume"), None)
            .0,
        202
    );
    wait_for(
        "every record delivered twice",
        Duration::from_secs(90),
        || sink_counts(&out).values().all(|n| *n >= 2).then_some(()),
    );

    // Set the source back to 299: it generates 300..499 again, and only those.
    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{generator}/stop"), None)
            .0,
        202
    );
    let patch = json!({"offsets": [{"partition": {"source_partition": partition}, "offset": {"source_offset": "299"}}]});
    let (code, body) = worker.request(
        "PATCH",
        &format!("/connectors/{generator}/offsets"),
        Some(&patch),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(offsets(&generator)[0]["offset"]["source_offset"], "299");
    assert_eq!(
        worker
            .request("PUT", &format!("/connectors/{generator}/resume"), None)
            .0,
        202
    );
    wait_for(
        "300..499 delivered a third time",
        Duration::from_secs(90),
        || {
            let counts = sink_counts(&out);
            (300..total)
                .all(|n| counts.get(&n) == Some(&3))
                .then_some(())
        },
    );
    let counts = sink_counts(&out);
    assert!(
        (0..300).all(|n| counts[&n] == 2),
        "records before the set position were not generated again"
    );
    let (code, body) = worker.request(
        "PATCH",
        &format!("/connectors/{generator}/offsets"),
        Some(&json!({"offsets": 5})),
    );
    assert_eq!(code, 400, "{body}");
}
