//! Bad plugins and misbehaving guests: each gets its own precise reason while a healthy
//! connector on the same worker keeps flowing.

use std::time::Duration;

use ferry_tests::{Worker, sink_counts, temp_dir, unique, wait_for};
use serde_json::{Value, json};

/// Waits until task 0 of `name` shows FAILED with `kind`; returns its message.
fn failed_with(worker: &Worker, name: &str, kind: &str) -> String {
    wait_for(
        &format!("{name} to fail with {kind}"),
        Duration::from_secs(90),
        || {
            let s = worker.status(name);
            let task = &s["tasks"][0];
            (task["state"] == "FAILED" && task["error"]["kind"] == kind).then(|| {
                task["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        },
    )
}

#[test]
fn bad_plugins_and_faulty_guests_fail_alone() {
    let worker = {
        // Bad files go in before the worker starts: they must be listed, not fatal.
        let w = Worker::start(&["datagen", "file-sink", "test-faults"]);
        std::fs::write(w.plugins.join("garbage.wasm"), b"this is not wasm at all").unwrap();
        std::fs::write(w.plugins.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
        // An empty component: valid, but it exports neither Ferry world.
        std::fs::write(w.plugins.join("other-world.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
        w
    };
    let (code, _) = worker.request("POST", "/plugins/reload", None);
    assert_eq!(code, 200);
    let (_, plugins) = worker.request("GET", "/connector-plugins", None);
    let failed = plugins["failed"].as_array().unwrap();
    let reason = |file: &str| -> String {
        failed
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(file))
            .map(|f| f["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{file} not listed as failed: {plugins}"))
    };
    assert!(
        reason("garbage.wasm").contains("not a WebAssembly file"),
        "{plugins}"
    );
    assert!(
        reason("core.wasm").contains("core WebAssembly module, not a component"),
        "{plugins}"
    );
    let classes: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"datagen")
            && classes.contains(&"file-sink")
            && classes.contains(&"test-faults"),
        "{plugins}"
    );

    // A healthy pipeline on the same worker.
    let topic = unique("healthy");
    let out = temp_dir("healthy-out");
    worker.create(
        &unique("gen"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.rate": "2000"}),
    );
    worker.create(
        &unique("sink"),
        json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}),
    );

    let faulty = |mode: &str, extra: Value| {
        let name = unique(mode);
        let mut config = json!({"connector-class": "test-faults", "fault.mode": mode, "fault.topic": unique("faults")});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        worker.create(&name, config);
        name
    };
    let looping = faulty("loop", json!({"task.call.timeout.ms": "500"}));
    let hungry = faulty("alloc", json!({"task.memory.max.bytes": "33554432"}));
    let panicking = faulty("panic", json!({}));

    let fatal = faulty("fatal", json!({}));

    let message = failed_with(&worker, &looping, "timeout");
    assert!(
        message.contains("500ms") && message.contains("poll"),
        "{message}"
    );
    let message = failed_with(&worker, &hungry, "out-of-memory");
    assert!(message.contains("limit is 33554432 bytes"), "{message}");
    let message = failed_with(&worker, &panicking, "panic");
    assert!(message.contains("panic on purpose"), "{message}");
    let message = failed_with(&worker, &fatal, "fatal");
    assert!(message.contains("fatal on purpose"), "{message}");
    println!("sandbox: every fault reported with its own kind");

    // The healthy pipeline kept flowing while the others failed and restarted.
    let seen = sink_counts(&out).len();
    wait_for(
        "the healthy pipeline to keep flowing",
        Duration::from_secs(60),
        || (sink_counts(&out).len() > seen + 1000).then_some(()),
    );
    let (code, health) = worker.request("GET", "/healthz", None);
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
}

#[test]
fn replacing_a_plugin_mid_stream_reloads_it_without_loss() {
    let worker = Worker::start(&["datagen", "file-sink"]);
    let total = 40_000u64;
    let topic = unique("reload");
    let out = temp_dir("reload-out");
    let source = unique("gen");
    worker.create(
        &source,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string(), "datagen.rate": "8000"}),
    );
    worker.create(
        &unique("sink"),
        json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap()}),
    );
    wait_for("part of the stream", Duration::from_secs(120), || {
        (sink_counts(&out).len() > 5_000).then_some(())
    });
    let old_version = worker.status(&source)["tasks"][0]["plugin_version"]
        .as_str()
        .unwrap()
        .to_string();

    // A new build of datagen: the same component with one more custom section.
    let path = worker.plugins.join("datagen.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    let name = b"ferry-test-version";
    bytes.push(0);
    bytes.push((1 + name.len() + 1) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.push(2);
    let tmp = worker.plugins.join("datagen.wasm.new");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();

    let new_version = wait_for(
        "the task to run the new version",
        Duration::from_secs(30),
        || {
            let v = worker.status(&source)["tasks"][0]["plugin_version"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (v != old_version && !v.is_empty()).then_some(v)
        },
    );
    wait_for(
        "all records after the reload",
        Duration::from_secs(240),
        || (sink_counts(&out).len() as u64 >= total).then_some(()),
    );
    let duplicates = ferry_tests::assert_complete(&sink_counts(&out), total);
    println!("reload: {old_version} -> {new_version}, {duplicates} duplicates");
}
