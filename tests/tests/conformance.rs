//! The conformance kit (`ferry check`) against every connector in `connectors/`, in all four
//! languages (Rust, Python, JavaScript, C), with the destinations they need (Kafka on Tansu, a local HTTP server, a
//! folder); and `ferry new` projects that build and pass it.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_tests::http_server::HttpServer;
use ferry_tests::{built_plugins, ferry_bin, kafka, temp_dir, unique};
use serde_json::{Value, json};

/// Runs `ferry check --json` on a built plugin; returns the exit code and the report (with
/// the tail of its log under `"log"`, for failure messages).
fn check(plugin: &str, config: &[(&str, String)]) -> (i32, Value) {
    let mut cmd = Command::new(ferry_bin());
    // One compile cache for the whole test run: the interpreted components take ~15 s each to
    // compile cold on 2 cores.
    let cache = std::env::temp_dir().join("ferry-tests-check-cache");
    cmd.arg("check")
        .arg(built_plugins().join(format!("{plugin}.wasm")))
        .arg("--json")
        .arg("--cache-dir")
        .arg(cache);
    for (k, v) in config {
        cmd.arg("--config").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run ferry check");
    let text = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    let mut report: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("ferry check {plugin}: no JSON report: {text}\n{log}"));
    let tail: String = log
        .chars()
        .rev()
        .take(3000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    report["log"] = json!(tail);
    (out.status.code().unwrap_or(-1), report)
}

fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["outcome"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Asserts every check of the kit ran and passed.
fn assert_conforms(plugin: &str, config: &[(&str, String)]) -> Value {
    let (code, report) = check(plugin, config);
    let checks = outcomes(&report);
    let names: Vec<&str> = checks.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in [
        "describe-is-valid",
        "validate-accepts-config",
        "validate-names-missing-keys",
        "task-configs-respect-max-tasks",
        "guest-errors-are-reported",
    ] {
        assert!(
            names.contains(&expected),
            "{plugin}: {expected} missing from {names:?}"
        );
    }
    // Skipped only where the connector has nothing to check (no required key of its own).
    let failed: Vec<_> = checks
        .iter()
        .filter(|(_, o, d)| o != "passed" && !(o == "skipped" && d.contains("no required key")))
        .collect();
    assert!(
        failed.is_empty(),
        "{plugin}: {failed:?}\nlog: {}",
        report["log"]
    );
    assert_eq!(code, 0, "{plugin}: {report}");
    println!(
        "{plugin}: {} {}, compile {:.0} ms, cached {:.1} ms, instantiate {:.1} ms",
        report["kind"],
        report["wit_version"],
        report["compile_ms"].as_f64().unwrap(),
        report["compile_cached_ms"].as_f64().unwrap(),
        report["instantiate_ms"].as_f64().unwrap()
    );
    report
}

#[test]
fn rust_connectors_conform() {
    assert_conforms("datagen", &[("datagen.topic", unique("kit"))]);
    assert_conforms(
        "legacy-source",
        &[
            ("legacy.topic", unique("kit")),
            ("legacy.count", "1000".into()),
        ],
    );
    let dir = temp_dir("kit-files");
    assert_conforms(
        "file-sink",
        &[
            ("rocketmq.topics", unique("kit")),
            ("file.dir", dir.display().to_string()),
        ],
    );
    assert!(
        ferry_tests::sink_lines(&dir).len() >= 3,
        "file-sink's put() in the kit wrote its records"
    );
    assert_conforms("bench-sink", &[("rocketmq.topics", unique("kit"))]);
    assert_conforms(
        "legacy-sink",
        &[
            ("rocketmq.topics", unique("kit")),
            ("file.dir", temp_dir("kit-legacy").display().to_string()),
        ],
    );
}

#[test]
fn kafka_connectors_conform() {
    let topic = unique("kit-kafka");
    kafka::create_topic(&topic, 1);
    kafka::produce(
        &topic,
        (0..200).map(|n| kafka::Outgoing {
            key: format!("k{n}").into_bytes(),
            value: format!("{n} kit").into_bytes(),
            headers: vec![],
            timestamp: 1_700_000_000_000 + n,
        }),
    );
    assert_conforms(
        "kafka-source",
        &[
            ("kafka.topics", topic.clone()),
            ("kafka.bootstrap.server", kafka::bootstrap()),
            ("connector.name", unique("kit")),
            // The first batch must leave records for the round trip to resume at.
            ("kafka.poll.max.records", "50".into()),
        ],
    );
    assert_conforms(
        "kafka-sink",
        &[
            ("rocketmq.topics", topic),
            ("kafka.bootstrap.server", kafka::bootstrap()),
        ],
    );
}

#[test]
fn python_and_javascript_connectors_conform() {
    // The first two POSTs fail with 503: the kit must see put() answer retriable and the
    // same batch delivered after.
    let posts = Arc::new(AtomicU32::new(0));
    let server = {
        let posts = posts.clone();
        HttpServer::start(move |request| {
            if request.method == "POST" {
                return if posts.fetch_add(1, Ordering::SeqCst) < 2 {
                    (503, b"busy".to_vec())
                } else {
                    (200, b"{}".to_vec())
                };
            }
            let after: u64 = request.query("after").map_or(0, |a| a.parse().unwrap());
            let records: Vec<Value> = (after..after + 5)
                .map(|n| json!({"key": format!("k{n}"), "value": format!("{n} kit")}))
                .collect();
            (
                200,
                serde_json::to_vec(&json!({"records": records, "cursor": (after + 5).to_string()}))
                    .unwrap(),
            )
        })
    };
    let report = assert_conforms(
        "http-sink",
        &[
            ("rocketmq.topics", unique("kit")),
            ("http.url", server.url("/in")),
        ],
    );
    let retried = outcomes(&report)
        .into_iter()
        .find(|(n, _, _)| n == "put-is-retried-after-retriable")
        .unwrap();
    assert!(retried.2.contains("retriable 2 times"), "{retried:?}");
    assert_eq!(
        report["describe"]["config_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "http.headers")
            .unwrap()["secret"],
        true
    );
    assert_conforms(
        "http-source",
        &[
            ("http.topic", unique("kit")),
            ("http.url", server.url("/feed")),
        ],
    );
}

/// The twins of `datagen` and `bench-sink` in C, Python and JavaScript (the benchmark's
/// per-language connectors) pass the kit like the Rust originals.
#[test]
fn twin_connectors_conform_in_every_language() {
    for lang in ["c", "py", "js"] {
        let report = assert_conforms(
            &format!("datagen-{lang}"),
            &[("datagen.topic", unique("kit"))],
        );
        assert_eq!(report["kind"], "source", "{report}");
        assert_conforms(
            &format!("bench-sink-{lang}"),
            &[("rocketmq.topics", unique("kit"))],
        );
    }
}

/// Every folder in `connectors/`, and the test above that runs the kit on it; a connector
/// added without a kit run fails `every_connector_is_checked`.
const CHECKED: &[(&str, &str)] = &[
    ("datagen", "rust_connectors_conform"),
    ("legacy-source", "rust_connectors_conform"),
    ("file-sink", "rust_connectors_conform"),
    ("bench-sink", "rust_connectors_conform"),
    ("legacy-sink", "rust_connectors_conform"),
    ("kafka-source", "kafka_connectors_conform"),
    ("kafka-sink", "kafka_connectors_conform"),
    ("http-sink-py", "python_and_javascript_connectors_conform"),
    ("http-source-js", "python_and_javascript_connectors_conform"),
    ("datagen-c", "twin_connectors_conform_in_every_language"),
    ("bench-sink-c", "twin_connectors_conform_in_every_language"),
    ("datagen-py", "twin_connectors_conform_in_every_language"),
    ("bench-sink-py", "twin_connectors_conform_in_every_language"),
    ("datagen-js", "twin_connectors_conform_in_every_language"),
    ("bench-sink-js", "twin_connectors_conform_in_every_language"),
    // Made to fail it: the kit must catch it.
    ("test-faults", "the_kit_catches_a_connector_that_traps"),
    // Not a connector a user deploys: it tries to escape the sandbox (tests/tests/security.rs).
    ("sandbox-probe", "security.rs"),
];

#[test]
fn every_connector_is_checked() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors");
    let mut unchecked = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !CHECKED.iter().any(|(c, _)| *c == name) {
            unchecked.push(name);
        }
    }
    assert!(
        unchecked.is_empty(),
        "connectors without a conformance kit run in tests/tests/conformance.rs: {unchecked:?}"
    );
}

#[test]
fn the_kit_catches_a_connector_that_traps() {
    let (code, report) = check("test-faults", &[("fault.mode", "panic".into())]);
    assert_eq!(code, 1, "{report}");
    let failed: Vec<_> = outcomes(&report)
        .into_iter()
        .filter(|(_, o, _)| o == "failed")
        .collect();
    assert!(
        failed
            .iter()
            .any(|(n, _, d)| n == "positions-round-trip" && d.contains("panic")),
        "{failed:?}"
    );
    // A file that is not a component is refused with exit code 2 and a reason.
    let bogus = temp_dir("kit-bogus").join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    let out = Command::new(ferry_bin())
        .arg("check")
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus.wasm"));
}

/// `ferry new` for every language and kind: the project builds with its one command and its
/// test (the conformance kit) passes.
#[test]
fn ferry_new_projects_build_and_conform() {
    let dir = temp_dir("ferry-new");
    for (lang, kind) in [
        ("rust", "source"),
        ("rust", "sink"),
        ("python", "source"),
        ("python", "sink"),
        ("js", "source"),
        ("js", "sink"),
    ] {
        let name = format!("my-{lang}-{kind}");
        let out = Command::new(ferry_bin())
            .args(["new", &name, "--lang", lang, "--kind", kind, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ferry new {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("bash")
            .arg(dir.join(&name).join("test.sh"))
            .arg("--cache-dir")
            .arg(std::env::temp_dir().join("ferry-tests-check-cache"))
            .env("FERRY", ferry_bin())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name}/test.sh failed:\n{text}");
        assert!(!text.contains("FAIL"), "{text}");
        assert!(text.contains("pass validate-names-missing-keys"), "{text}");
        let data_check = if kind == "source" {
            "pass positions-round-trip"
        } else {
            "pass put-is-retried-after-retriable"
        };
        assert!(text.contains(data_check), "{text}");
    }
    // A second `new` over an existing project refuses instead of overwriting it.
    let out = Command::new(ferry_bin())
        .args([
            "new",
            "my-rust-sink",
            "--lang",
            "rust",
            "--kind",
            "sink",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
