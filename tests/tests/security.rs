//! Security, as an attacker would try it (SECURITY.md): a caller without the token, a web page
//! of another site, the seed's state-changing GET routes, configs that reach past their grant,
//! secrets that must not come back, and a guest trying to leave its sandbox.

use std::path::Path;
use std::time::Duration;

use ferry_tests::{Worker, files_root, http_with, temp_dir, unique, wait_for};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A worker with `restAuthToken` and `legacyGetWrites=false`, and the given extra settings.
fn locked_worker(plugins: &[&str], extra: &[(&str, &str)]) -> Worker {
    let mut worker = Worker::prepare(plugins, &unique("sec"), &unique("w"));
    worker.configure("restAuthToken", TOKEN);
    worker.configure("legacyGetWrites", "false");
    for (k, v) in extra {
        worker.configure(k, v);
    }
    worker.token = Some(TOKEN.into());
    worker.spawn();
    worker
}

fn error_of(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or_default(),
        body["message"].as_str().unwrap_or_default(),
    )
}

#[test]
fn a_caller_without_the_token_or_from_another_site_changes_nothing() {
    let worker = locked_worker(&["datagen"], &[("httpRequestTimeoutMs", "5000")]);
    let addr = worker.addr.clone();
    // Liveness and readiness stay open (an orchestrator's probes); everything else needs the
    // token.
    assert_eq!(http_with(&addr, "GET", "/healthz", None, &[]).0, 200);
    assert_ne!(http_with(&addr, "GET", "/readyz", None, &[]).0, 401);
    assert_eq!(http_with(&addr, "GET", "/", None, &[]).0, 401);
    for (path, headers) in [
        ("/connectors", vec![]),
        ("/getConnectors", vec![]),
        (
            "/connectors",
            vec![("Authorization", "Bearer wrong-token-0123456789abcdef")],
        ),
        ("/connectors", vec![("Authorization", "Basic dGVzdDp0ZXN0")]),
        (
            "/connectors",
            vec![("Authorization", "Bearer test-token-0123456789abcde")],
        ),
    ] {
        let (code, body) = http_with(&addr, "GET", path, None, &headers);
        assert_eq!(
            (code, error_of(&body).0),
            (401, "unauthorized"),
            "{path} {headers:?}: {body}"
        );
    }
    let config = json!({"connector-class": "datagen", "datagen.topic": unique("t")});
    let (code, body) = http_with(
        &addr,
        "POST",
        "/connectors",
        Some(&json!({"name": "intruder", "config": config})),
        &[],
    );
    assert_eq!(code, 401, "{body}");
    assert_eq!(worker.request("GET", "/connectors", None), (200, json!([])));

    // The seed's state-changing GET routes are off, each naming the route to use.
    let encoded = ferry_tests::url_encode(&config.to_string());
    for (path, instead) in [
        (
            format!("/connectors/create/x?config={encoded}"),
            "POST /connectors",
        ),
        (
            format!("/connectors/update/x?config={encoded}"),
            "PUT /connectors/{name}/config",
        ),
        (
            "/connectors/single/x/remove".into(),
            "DELETE /connectors/{name}",
        ),
        (
            "/connectors/single/x/disable".into(),
            "PUT /connectors/{name}/stop",
        ),
        ("/connectors/all/remove".into(), "DELETE /connectors/{name}"),
        (
            "/connectors/taskNum/x/3".into(),
            "PUT /connectors/{name}/config",
        ),
        ("/plugin/reload".into(), "POST /plugins/reload"),
        (
            "/logMsgDetail/true".into(),
            "PUT /logMsgDetail/{true|false}",
        ),
    ] {
        let (code, body) = worker.request("GET", &path, None);
        let (error, message) = error_of(&body);
        assert_eq!(
            (code, error),
            (405, "legacy_get_writes_disabled"),
            "{path}: {body}"
        );
        assert!(message.contains(instead), "{path}: {message}");
    }
    // Read routes of the seed still work.
    assert_eq!(worker.request("GET", "/getConnectors", None).0, 200);

    // A page of another site cannot make a change, even through a browser holding the token.
    let auth = format!("Bearer {TOKEN}");
    let create = json!({"name": "csrf", "config": config});
    for browser in [
        vec![
            ("Origin", "http://evil.example"),
            ("Authorization", auth.as_str()),
        ],
        vec![
            ("Sec-Fetch-Site", "cross-site"),
            ("Authorization", auth.as_str()),
        ],
        vec![("Origin", "null"), ("Authorization", auth.as_str())],
    ] {
        let (code, body) = http_with(&addr, "POST", "/connectors", Some(&create), &browser);
        assert_eq!(
            (code, error_of(&body).0),
            (403, "cross_origin"),
            "{browser:?}: {body}"
        );
    }
    // The same origin (the operator's own page on the worker) is fine.
    let own_origin = format!("http://{addr}");
    let (code, body) = http_with(
        &addr,
        "POST",
        "/connectors",
        Some(&create),
        &[
            ("Origin", own_origin.as_str()),
            ("Authorization", auth.as_str()),
        ],
    );
    assert_eq!(code, 201, "{body}");

    // Bodies past httpMaxBodyBytes (1 MiB by default) are refused before they are parsed.
    let huge = json!({"name": "big", "config": {"connector-class": "datagen", "pad": "x".repeat(2 << 20)}});
    let (code, body) = worker.request("POST", "/connectors", Some(&huge));
    assert_eq!(code, 413, "{body}");
}

#[test]
fn a_config_cannot_reach_past_its_grant() {
    let worker = locked_worker(&["datagen", "file-sink", "kafka-source"], &[]);
    let kafka = "127.0.0.1:9092";
    let roots = files_root().display().to_string();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"connector-class": "file-sink", "rocketmq.topics": "t", "file.dir": "/etc"}),
            "file.dir",
            &roots,
        ),
        (
            json!({"connector-class": "file-sink", "rocketmq.topics": "t",
                "file.dir": format!("{roots}/../etc")}),
            "file.dir",
            "outside",
        ),
        (
            json!({"connector-class": "file-sink", "rocketmq.topics": "t",
                "file.dir": worker.store.join("x").display().to_string()}),
            "file.dir",
            "outside",
        ),
        (
            json!({"connector-class": "kafka-source", "kafka.topics": "t", "kafka.bootstrap.server": kafka,
                "kafka.client.sasl.kerberos.kinit.cmd": "touch /tmp/pwned"}),
            "kafka.client.sasl.kerberos.kinit.cmd",
            "not an allowed",
        ),
        (
            json!({"connector-class": "kafka-source", "kafka.topics": "t", "kafka.bootstrap.server": kafka,
                "kafka.client.plugin.library.paths": "/tmp/evil.so"}),
            "kafka.client.plugin.library.paths",
            "not an allowed",
        ),
        (
            json!({"connector-class": "kafka-source", "kafka.topics": "t", "kafka.bootstrap.server": kafka,
                "kafka.client.group.id": "payments"}),
            "kafka.client.group.id",
            "not an allowed",
        ),
        (
            json!({"connector-class": "kafka-source", "kafka.topics": "t", "kafka.bootstrap.server": kafka,
                "kafka.client.ssl.key.location": "/etc/shadow"}),
            "kafka.client.ssl.key.location",
            "fileRoots",
        ),
        (
            json!({"connector-class": "datagen", "datagen.topic": "t", "x.password": "${env:HOME}"}),
            "x.password",
            "configEnvAllowlist",
        ),
        (
            json!({"connector-class": "datagen", "datagen.topic": "t", "x.password": "${file:/etc/passwd:root}"}),
            "x.password",
            "fileRoots",
        ),
    ];
    for (config, key, says) in cases {
        let name = unique("grant");
        let (code, body) = worker.request(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": config})),
        );
        let (error, message) = error_of(&body);
        assert_eq!((code, error), (400, "invalid_config"), "{config}: {body}");
        assert!(
            message.contains(key) && message.contains(says),
            "{key}: {message}"
        );
    }
    assert_eq!(worker.request("GET", "/connectors", None), (200, json!([])));
    assert!(!Path::new("/tmp/pwned").exists());
}

#[test]
fn secrets_never_come_back_out() {
    let env_secret = format!("env-secret-{}", unique("v"));
    let literal_secret = format!("literal-secret-{}", unique("v"));
    let declared_secret = format!("declared-pin-{}", unique("v"));
    let file_secret = format!("file-secret-{}", unique("v"));
    let dir = temp_dir("secrets");
    let secrets_file = dir.join("secrets.properties");
    std::fs::write(&secrets_file, format!("# secrets\npin={file_secret}\n")).unwrap();
    let mut worker = Worker::prepare(&["sandbox-probe"], &unique("sec"), &unique("w"));
    worker
        .env
        .push(("FERRY_SECRET_TEST_PW".into(), env_secret.clone()));
    worker.spawn();

    let granted = dir.join("granted");
    let name = unique("probe");
    let config = json!({
        "connector-class": "sandbox-probe",
        "file.dir": granted.display().to_string(),
        "probe.port": "9",
        "kafka.bootstrap.server": "127.0.0.1:9",
        "kafka.client.sasl.password": "${env:FERRY_SECRET_TEST_PW}",
        "api.secret": literal_secret,
        "probe.pin": declared_secret,
    });
    let (code, created) = worker.request(
        "POST",
        "/connectors",
        Some(&json!({"name": name, "config": config})),
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["config"]["api.secret"], "[hidden]");
    assert_eq!(
        created["config"]["probe.pin"], "[hidden]",
        "declared secret in describe()"
    );
    assert_eq!(
        created["config"]["kafka.client.sasl.password"],
        "${env:FERRY_SECRET_TEST_PW}"
    );
    wait_for("the probe to finish", Duration::from_secs(60), || {
        worker.log_text().contains("probe finished").then_some(())
    });
    // A second connector reads its pin from a properties file inside fileRoots.
    let from_file = unique("probe-file");
    worker.create(
        &from_file,
        json!({"connector-class": "sandbox-probe", "file.dir": dir.join("granted2").display().to_string(),
               "probe.port": "9", "probe.pin": format!("${{file:{}:pin}}", secrets_file.display())}),
    );
    wait_for(
        "the second probe to finish",
        Duration::from_secs(60),
        || (worker.log_text().matches("probe finished").count() >= 2).then_some(()),
    );

    // Writing back what GET answered keeps the secrets (not the placeholder).
    let (_, shown) = worker.request("GET", &format!("/connectors/{name}/config"), None);
    assert_eq!(shown["probe.pin"], "[hidden]");
    let (code, body) = worker.request("PUT", &format!("/connectors/{name}/config"), Some(&shown));
    assert_eq!(code, 200, "{body}");
    let stored = std::fs::read_to_string(worker.store.join("connectors.json")).unwrap();
    assert!(
        stored.contains(&declared_secret) && !stored.contains("[hidden]"),
        "{stored}"
    );

    let mut answers = String::new();
    for path in [
        "/connectors".to_string(),
        format!("/connectors/{name}"),
        format!("/connectors/{name}/config"),
        format!("/connectors/{name}/status"),
        format!("/connectors/{from_file}/config"),
        "/getConnectors".into(),
        format!("/getConnectors/{name}"),
        format!("/getConnectorsStatus/{name}"),
        "/getAllocatedTask".into(),
        "/getAllTask/true".into(),
        "/getConnectorTask".into(),
        "/connector-plugins".into(),
        "/cluster".into(),
    ] {
        let (code, body) = worker.request("GET", &path, None);
        assert_eq!(code, 200, "{path}: {body}");
        answers.push_str(&body.to_string());
    }
    let log = worker.log_text();
    for secret in [&env_secret, &literal_secret, &declared_secret, &file_secret] {
        assert!(
            !answers.contains(secret.as_str()),
            "{secret} in an answer: {answers}"
        );
        assert!(!log.contains(secret.as_str()), "{secret} in the log");
    }
    assert!(answers.contains("[hidden]"));
    // The guest did get its own secrets (only the log hides them), resolved where it runs...
    assert!(
        log.contains(&format!(
            "probe pin seen by the guest: [hidden] ({} chars)",
            declared_secret.len()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "probe pin seen by the guest: [hidden] ({} chars)",
            file_secret.len()
        )),
        "{log}"
    );
    // ...but never the host's Kafka client secrets.
    assert!(
        log.contains("probe kafka.client keys seen by the guest: 0"),
        "{log}"
    );
    // References stay references in the store and on the config topic; only literals are kept.
    let stored = std::fs::read_to_string(worker.store.join("connectors.json")).unwrap();
    assert!(stored.contains("${env:FERRY_SECRET_TEST_PW}"));
    assert!(!stored.contains(&env_secret) && !stored.contains(&file_secret));
}

#[test]
fn a_guest_cannot_leave_its_sandbox() {
    let base = temp_dir("escape");
    let granted = base.join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(base.join("sibling.txt"), "outside the grant").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", granted.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc", granted.join("etc-link")).unwrap();
    let mut worker = Worker::prepare(&["sandbox-probe"], &unique("sec"), &unique("w"));
    worker
        .env
        .push(("FERRY_PROBE_PLANTED".into(), "planted-value".into()));
    worker.spawn();
    let name = unique("escape");
    // 9876 is the RocketMQ name server: a port that is certainly listening.
    worker.create(
        &name,
        json!({"connector-class": "sandbox-probe", "file.dir": granted.display().to_string(),
               "probe.port": "9876", "probe.env": "FERRY_PROBE_PLANTED",
               "kafka.bootstrap.server": "127.0.0.1:9",
               // An HTTP grant for another origin: the probe's request to :9876 is still refused.
               "http.url": "http://127.0.0.1:9/"}),
    );
    let log = wait_for("the probe to finish", Duration::from_secs(60), || {
        let log = worker.log_text();
        log.contains("probe finished").then_some(log)
    });
    let outcome = |attempt: &str| -> String {
        let marker = format!("probe {attempt}: ");
        let line = log
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_else(|| panic!("no outcome for {attempt}:\n{log}"));
        let rest = &line[line.find(&marker).unwrap() + marker.len()..];
        // The host appends the task's ids to each guest log line.
        rest.split(" connector=").next().unwrap().to_string()
    };
    // The host names the refused origin and the task in its own log.
    assert!(
        log.lines().any(
            |l| l.contains("HTTP request to http://127.0.0.1:9876 denied")
                && l.contains(&format!("connector={name}"))
        ),
        "{log}"
    );
    // The grant itself works (the attempts below fail for the right reason)...
    assert_eq!(outcome("write-inside"), "ok: written");
    assert_eq!(
        std::fs::read_to_string(granted.join("inside.txt")).unwrap(),
        "in"
    );
    // ...and nothing past it is reachable.
    for (attempt, expected) in [
        (
            "read-absolute",
            "denied: NotFound: No such file or directory (os error 44)",
        ),
        (
            "read-dotdot",
            "denied: PermissionDenied: Operation not permitted (os error 63)",
        ),
        (
            "read-symlink-file",
            "denied: PermissionDenied: Operation not permitted (os error 63)",
        ),
        (
            "read-symlink-dir",
            "denied: PermissionDenied: Operation not permitted (os error 63)",
        ),
        (
            "list-root",
            "denied: NotFound: No such file or directory (os error 44)",
        ),
        (
            "tcp-connect",
            "denied: PermissionDenied: Permission denied (os error 2)",
        ),
        ("http-outside-grant", "denied: HTTP-request-denied"),
        (
            "udp-bind",
            "denied: PermissionDenied: Permission denied (os error 2)",
        ),
        // wasi-libc reports the refused name lookup as EAI_FAIL.
        (
            "dns",
            "denied: Uncategorized: failed to lookup address information: Non-recoverable error",
        ),
        ("env-count", "0 variables"),
        ("env-planted", "denied: environment variable not found"),
        (
            "kafka-foreign-group",
            "denied: kafka: consumer group `payments-service` is not this connector's",
        ),
        (
            "kafka-kinit-cmd",
            "denied: kafka: sasl.kerberos.kinit.cmd: not an allowed Kafka client property",
        ),
    ] {
        let got = outcome(attempt);
        assert!(
            got.starts_with(expected),
            "{attempt}: got `{got}`, want `{expected}...`"
        );
    }
    assert!(!Path::new("/tmp/ferry-pwned").exists());
}

#[test]
fn tls_and_the_token_carry_between_workers() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    let cluster = unique("tls");
    let mut workers: Vec<Worker> = ["tls-a", "tls-b"]
        .iter()
        .map(|id| {
            let mut w = Worker::prepare(&["datagen"], &cluster, &unique(id));
            for (k, v) in [
                ("restAuthToken", TOKEN.to_string()),
                (
                    "httpTlsCert",
                    fixtures.join("worker.pem").display().to_string(),
                ),
                (
                    "httpTlsKey",
                    fixtures.join("worker.key").display().to_string(),
                ),
                (
                    "httpTlsCaFile",
                    fixtures.join("ca.pem").display().to_string(),
                ),
            ] {
                w.configure(k, &v);
            }
            w.token = Some(TOKEN.into());
            w
        })
        .collect();
    Worker::spawn_together(&mut workers);
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(fixtures.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // The async client on a runtime of its own (the blocking one would change reqwest's
    // features for the whole build, and rebuild the worker).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let send = |request: reqwest::RequestBuilder| -> (u16, Value) {
        runtime.block_on(async {
            let response = request.send().await.unwrap_or_else(|e| panic!("{e:?}"));
            let code = response.status().as_u16();
            (code, response.json().await.unwrap_or(Value::Null))
        })
    };
    let get = |addr: &str, path: &str, token: Option<&str>| -> (u16, Value) {
        let mut request = client.get(format!("https://{addr}{path}"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        send(request)
    };
    let a = workers[0].addr.clone();
    assert_eq!(get(&a, "/connectors", None).0, 401);
    assert_eq!(get(&a, "/healthz", None).0, 200);
    // Plain HTTP to the TLS port gets no HTTP answer.
    {
        use std::io::{Read, Write};
        let mut plain = std::net::TcpStream::connect(&a).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Both workers see each other, and a write made on the follower (forwarded to the leader
    // over HTTPS with the token) and the cluster-wide task list (asked of every peer) work.
    wait_for(
        "both workers in the cluster",
        Duration::from_secs(60),
        || {
            let (_, cluster) = get(&a, "/cluster", Some(TOKEN));
            (cluster["workers"].as_array().map_or(0, Vec::len) == 2).then_some(())
        },
    );
    for w in &workers {
        let name = unique("over-tls");
        let body = json!({"name": name, "config": {"connector-class": "datagen", "datagen.topic": unique("t"), "datagen.rate": "1"}});
        let (code, answer) = send(
            client
                .post(format!("https://{}/connectors", w.addr))
                .bearer_auth(TOKEN)
                .json(&body),
        );
        assert_eq!(code, 201, "{answer}");
    }
    let tasks = wait_for(
        "tasks reported by both workers",
        Duration::from_secs(60),
        || {
            let (code, all) = get(&a, "/getAllTask/true", Some(TOKEN));
            let reported = all
                .as_object()
                .map_or(0, |m| m.values().filter(|v| v.is_array()).count());
            (code == 200 && reported == 2).then_some(all)
        },
    );
    assert!(tasks.to_string().contains("over-tls"), "{tasks}");
}

#[test]
fn a_slow_request_is_cut_off_and_the_worker_keeps_answering() {
    let mut worker = Worker::prepare(&["test-faults"], &unique("sec"), &unique("w"));
    worker.configure("httpRequestTimeoutMs", "1000");
    worker.spawn();
    // validate() never returns: the connector's own call limit (10 s) would end it; the
    // request limit (1 s) answers first.
    let started = std::time::Instant::now();
    let (code, body) = worker.request(
        "POST",
        "/connectors",
        Some(
            &json!({"name": unique("slow"), "config": {"connector-class": "test-faults",
                     "fault.mode": "validate-loop", "task.call.timeout.ms": "10000"}}),
        ),
    );
    assert_eq!(
        (code, error_of(&body).0),
        (503, "request_timeout"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(worker.request("GET", "/healthz", None).0, 200);
}

#[test]
fn a_source_cannot_write_into_the_clusters_internal_topics() {
    let worker = Worker::start(&["datagen"]);
    // The worker's own config topic (suffixed with its cluster name) and a broker system topic.
    for topic in ["connector-config-topic", "rmq_sys_TRACE_DATA"] {
        let name = unique("intruder");
        worker.create(
            &name,
            json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": "10"}),
        );
        let error = wait_for(
            "the intruding source to fail",
            Duration::from_secs(60),
            || {
                let task = worker.status(&name)["tasks"][0].clone();
                (task["state"] == "FAILED").then(|| task["error"].clone())
            },
        );
        assert_eq!(error["kind"], "invalid-config", "{error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("reserved topic")),
            "{error}"
        );
        // A failed task's series may already be gone; if present, it delivered nothing.
        let metrics = worker.metrics();
        let delivered = ferry_tests::metric_sum(
            &metrics,
            "ferry_task_records_delivered_total",
            &[("connector", name.as_str())],
        );
        assert!(
            delivered.unwrap_or(0.0) == 0.0,
            "{delivered:?} records sent to {topic}"
        );
    }
}
