//! The REST API's error cases and the seed's GET routes.

use ferry_tests::{Worker, unique};
use serde_json::json;

#[test]
fn errors_are_json_with_the_right_status() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let topic = unique("rest");

    // Unknown class: 400 naming it and listing the known ones.
    let (code, body) = worker.request(
        "POST",
        "/connectors",
        Some(&json!({"name": "x1", "config": {"connector-class": "NoSuchThing"}})),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"], "unknown_connector_class");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("NoSuchThing")
            && message.contains("datagen")
            && message.contains("file-sink"),
        "{message}"
    );

    // Missing required key (from describe()): 400 naming it.
    let (code, body) = worker.request(
        "POST",
        "/connectors",
        Some(&json!({"name": "x2", "config": {"connector-class": "datagen"}})),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("missing_config_key")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("datagen.topic"),
        "{body}"
    );

    // A bad host setting: 400 naming the key.
    let (code, body) = worker.request(
        "POST",
        "/connectors",
        Some(&json!({"name": "x3", "config": {"connector-class": "datagen", "datagen.topic": topic, "tasks.num": "lots"}})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("tasks.num"),
        "{body}"
    );

    // Malformed JSON body and query.
    let (code, body) = worker.request("POST", "/connectors", None);
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("malformed_json")),
        "{body}"
    );
    let (code, body) = worker.request("GET", "/connectors/create/x4?config=%7Bnot-json", None);
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("malformed_json")),
        "{body}"
    );
    let (code, body) = worker.request("GET", "/connectors/create/x4", None);
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("malformed_query")),
        "{body}"
    );

    // Create through the seed's route, then a duplicate: 409.
    let config = json!({"connector-class": "DatagenSourceConnector", "datagen.topic": topic, "datagen.rate": "10", "tasks.num": "1"});
    let path = format!(
        "/connectors/create/seedgen?config={}",
        ferry_tests::url_encode(&config.to_string())
    );
    let (code, body) = worker.request("GET", &path, None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = worker.request("GET", &path, None);
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("connector_exists")),
        "{body}"
    );
    let (code, body) = worker.request(
        "POST",
        "/connectors",
        Some(&json!({"name": "seedgen", "config": config})),
    );
    assert_eq!(code, 409, "{body}");

    // Reads through both APIs.
    let (code, body) = worker.request("GET", "/getConnectors", None);
    assert_eq!(code, 200);
    assert_eq!(body["seedgen"]["datagen.topic"], topic.as_str());
    let (_, body) = worker.request("GET", "/connectors", None);
    assert_eq!(body, json!(["seedgen"]));
    let (code, body) = worker.request("GET", "/getConnectorsStatus/seedgen", None);
    assert_eq!(code, 200);
    assert_eq!(body["type"], "source");

    // The seed's partial update keeps other keys.
    let path = format!(
        "/connectors/update/seedgen?config={}",
        ferry_tests::url_encode(&json!({"datagen.rate": "20"}).to_string())
    );
    let (code, body) = worker.request("GET", &path, None);
    assert_eq!(code, 200, "{body}");
    let (_, body) = worker.request("GET", "/connectors/seedgen/config", None);
    assert_eq!(
        (
            body["datagen.rate"].as_str(),
            body["datagen.topic"].as_str()
        ),
        (Some("20"), Some(topic.as_str()))
    );

    // Unknown connector: 404 everywhere.
    for (method, path) in [
        ("GET", "/connectors/nope"),
        ("GET", "/connectors/nope/status"),
        ("DELETE", "/connectors/nope"),
        ("GET", "/getConnectors/nope"),
        ("GET", "/getConnectorsStatus/nope"),
        ("GET", "/connectors/single/nope/remove"),
    ] {
        let (code, body) = worker.request(method, path, None);
        assert_eq!(
            (code, body["error"].as_str()),
            (404, Some("connector_not_found")),
            "{method} {path}: {body}"
        );
    }

    // PUT creates then replaces; DELETE and the seed's remove.
    let (code, _) = worker.request(
        "PUT",
        "/connectors/putgen/config",
        Some(&json!({"connector-class": "datagen", "datagen.topic": topic})),
    );
    assert_eq!(code, 201);
    let (code, _) = worker.request(
        "PUT",
        "/connectors/putgen/config",
        Some(&json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.rate": "5"})),
    );
    assert_eq!(code, 200);
    let (code, _) = worker.request("DELETE", "/connectors/putgen", None);
    assert_eq!(code, 204);
    let (code, _) = worker.request("GET", "/connectors/single/seedgen/remove", None);
    assert_eq!(code, 200);
    let (_, body) = worker.request("GET", "/connectors", None);
    assert_eq!(body, json!([]));
}

#[test]
fn bad_worker_settings_exit_with_code_2_naming_the_key() {
    let dir = ferry_tests::temp_dir("badconf");
    let conf = dir.join("connect.conf");
    std::fs::write(
        &conf,
        "workerId=w\nstorePathRootDir=/tmp/x\nnamesrvAddr=127.0.0.1:9876\n",
    )
    .unwrap();
    let (code, stderr) = ferry_tests::run_ferry_to_exit(&conf);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("pluginPaths") && stderr.contains("connect.conf"),
        "{stderr}"
    );
}

#[test]
fn a_missing_internal_topic_without_auto_create_is_a_startup_error_naming_it() {
    let worker = ferry_tests::Worker::prepare(&[], &ferry_tests::unique("noauto"), "w-noauto");
    let conf = std::fs::read_to_string(&worker.conf)
        .unwrap()
        .replace("autoCreateGroupEnable=true", "autoCreateGroupEnable=false");
    std::fs::write(&worker.conf, conf).unwrap();
    let (code, stderr) = worker.run_to_exit();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("internal topic `connector-cluster-topic-noauto")
            && stderr.contains("autoCreateGroupEnable"),
        "{stderr}"
    );
}

/// A guest's validate() that never returns must not stall the worker: reads answer at once
/// while it runs out its time budget, and the create then fails naming the timeout.
#[test]
fn reads_answer_within_200ms_while_a_guests_validate_loops() {
    let worker = Worker::start(&["datagen", "test-faults"]);
    let running = unique("gen");
    worker.create(
        &running,
        json!({"connector-class": "datagen", "datagen.topic": unique("vl-t"), "datagen.rate": "10"}),
    );
    let stuck = unique("stuck");
    std::thread::scope(|s| {
        let create = s.spawn(|| {
            worker.request(
                "POST",
                "/connectors",
                Some(&json!({"name": stuck, "config": {"connector-class": "test-faults", "fault.mode": "validate-loop",
                             "task.call.timeout.ms": "8000"}})),
            )
        });
        // Read for 4 s while the create runs (its validate() spins for 8 s of those).
        let mut slowest = std::time::Duration::ZERO;
        let reading = std::time::Instant::now();
        while reading.elapsed() < std::time::Duration::from_secs(4) {
            for path in [
                "/connectors".to_string(),
                format!("/connectors/{running}/status"),
                "/getClusterInfo".to_string(),
                "/getAllocatedTask".to_string(),
                "/connector-plugins".to_string(),
            ] {
                let started = std::time::Instant::now();
                let (code, body) = worker.request("GET", &path, None);
                let took = started.elapsed();
                assert_eq!(code, 200, "{path}: {body}");
                assert!(
                    took < std::time::Duration::from_millis(200),
                    "{path} took {took:?}"
                );
                slowest = slowest.max(took);
            }
        }
        assert!(
            !create.is_finished(),
            "validate() returned early: the test measured nothing"
        );
        let (code, body) = create.join().unwrap();
        assert_eq!(code, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("timeout"),
            "{body}"
        );
        println!("slowest read while validate() looped: {slowest:?}");
    });
}
