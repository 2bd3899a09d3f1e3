//! The REST API against its own OpenAPI document, fuzzed by schemathesis (installed by
//! `scripts/install-schemathesis.sh`, which `just test` runs): every operation with valid and
//! invalid inputs, a bounded number of cases each. No answer may be a 5xx or break the schema
//! the document declares for it, and the worker must still serve afterwards.

use std::path::PathBuf;
use std::process::Command;

use ferry_tests::{Worker, temp_dir, unique};
use serde_json::{Value, json};

fn schemathesis_dir() -> PathBuf {
    let tools = std::env::var_os("FERRY_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/ferry/tools")
        });
    tools.join("schemathesis")
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_schema() {
    let dir = schemathesis_dir();
    assert!(
        dir.join("schemathesis").is_dir(),
        "schemathesis is not installed in {}: run scripts/install-schemathesis.sh (`just test` does)",
        dir.display()
    );
    let worker = Worker::start(&["datagen", "file-sink"]);
    // Something for the name-based routes to find besides random names.
    worker.create(
        &unique("fuzz"),
        json!({"connector-class": "datagen", "datagen.topic": unique("fuzz"), "datagen.count": "10"}),
    );
    let (code, doc) = worker.request("GET", "/openapi.json", None);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");

    let report = temp_dir("fuzz").join("events.ndjson");
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("http://{}/openapi.json", worker.addr))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "12",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "7",
            "--no-shrink",
            "--generation-database",
            "none",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--no-color",
            "--report",
            "ndjson",
            "--report-ndjson-path",
        ])
        .arg(&report)
        .env("PYTHONPATH", &dir)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    // How many requests it made, from its event log.
    let requests = std::fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|event| event.to_string().matches("\"request\"").count())
        .sum::<usize>();
    println!(
        "schemathesis: {requests} requests; summary:\n{}",
        stdout
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        requests >= 200,
        "only {requests} requests were made:\n{stdout}"
    );
    assert!(
        worker.is_running(),
        "the worker died:\n{}",
        worker.log_text()
    );
    assert_eq!(worker.request("GET", "/healthz", None).0, 200);
    assert_eq!(worker.request("GET", "/connectors", None).0, 200);
}
