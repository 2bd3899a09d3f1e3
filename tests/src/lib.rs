//! Helpers for Ferry's integration tests: start `ferry` worker processes against the loopback
//! RocketMQ started by `just test`, talk to their REST API, and read what file-sink wrote.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cluster;
pub mod http_server;
pub mod kafka;

/// The name server the tests use (`FERRY_NAMESRV`, default 127.0.0.1:9876).
pub fn namesrv() -> String {
    std::env::var("FERRY_NAMESRV").unwrap_or_else(|_| "127.0.0.1:9876".into())
}

/// Where `just build-plugins` put the connectors.
pub fn built_plugins() -> PathBuf {
    std::env::var("FERRY_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

/// The `ferry` binary next to this test binary.
pub fn ferry_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("ferry")
}

/// A unique name for topics, connectors and folders of one test.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh folder under the system temp folder.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = files_root().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The directory test workers list in `fileRoots`: connectors may be granted folders in it
/// ([`temp_dir`] makes them there); worker stores live outside it.
pub fn files_root() -> PathBuf {
    let root = std::env::temp_dir().join("ferry-test-files");
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes (then panics with
/// `what` and the last observation from `describe`).
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `ferry` worker process with its own store and plugin folders.
pub struct Worker {
    child: Option<Child>,
    /// `host:port` of its REST API.
    pub addr: String,
    /// Its `storePathRootDir`.
    pub store: PathBuf,
    /// Its plugin folder.
    pub plugins: PathBuf,
    /// Its `connect.conf`.
    pub conf: PathBuf,
    /// Its `workerId`.
    pub worker_id: String,
    /// Where its log goes.
    pub log: PathBuf,
    /// Extra environment of the process (test knobs).
    pub env: Vec<(String, String)>,
    /// `restAuthToken`, when the test set one: sent by [`Self::request`].
    pub token: Option<String>,
}

impl Worker {
    /// Starts a worker whose plugin folder holds copies of `plugins` (names without `.wasm`),
    /// alone in a cluster of its own (tests run in parallel on one RocketMQ).
    pub fn start(plugins: &[&str]) -> Worker {
        Self::start_in_cluster(plugins, &unique("solo"), &unique("w"))
    }

    /// Starts worker `worker_id` in cluster `cluster` (`clusterName`), with `plugins`.
    pub fn start_in_cluster(plugins: &[&str], cluster: &str, worker_id: &str) -> Worker {
        let mut worker = Self::prepare(plugins, cluster, worker_id);
        worker.spawn();
        worker
    }

    /// Writes the worker's folders and `connect.conf` without starting it.
    pub fn prepare(plugins: &[&str], cluster: &str, worker_id: &str) -> Worker {
        let root = std::env::temp_dir().join(unique("ferry-worker"));
        let plugin_dir = root.join("plugins");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        for p in plugins {
            let from = built_plugins().join(format!("{p}.wasm"));
            std::fs::copy(&from, plugin_dir.join(format!("{p}.wasm"))).unwrap_or_else(|e| {
                panic!("copy {}: {e} (run `just build-plugins`)", from.display())
            });
        }
        let store = root.join("store");
        let conf = root.join("connect.conf");
        std::fs::write(
            &conf,
            format!(
                "workerId={}\nstorePathRootDir={}\nhttpPort=0\nnamesrvAddr={}\naclEnable=false\n\
                 autoCreateGroupEnable=true\npluginPaths={}\nclusterName={cluster}\nfileRoots={}\n",
                worker_id,
                store.display(),
                namesrv(),
                plugin_dir.display(),
                files_root().display()
            ),
        )
        .unwrap();
        Worker {
            child: None,
            addr: String::new(),
            store,
            plugins: plugin_dir,
            log: root.join("worker.log"),
            conf,
            worker_id: worker_id.to_string(),
            env: Vec::new(),
            token: None,
        }
    }

    /// Adds `key=value` to its `connect.conf` (before [`Self::spawn`]).
    pub fn configure(&self, key: &str, value: &str) {
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.conf)
            .unwrap();
        writeln!(conf, "{key}={value}").unwrap();
    }

    /// Starts prepared workers at the same moment (as an orchestrator starts replicas) and
    /// waits for each one's REST API.
    pub fn spawn_together(workers: &mut [Worker]) {
        std::thread::scope(|s| {
            for w in workers.iter_mut() {
                s.spawn(move || w.spawn());
            }
        });
    }

    /// (Re)starts the process on the same folders and waits for its REST API.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(ferry_bin())
            .arg("-c")
            .arg(&self.conf)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", ferry_bin().display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent
                    && line.contains(" listening on http")
                    && let Some(at) = line.find("://")
                {
                    let _ = tx.send(line[at + 3..].trim().to_string());
                    sent = true;
                }
            }
        });
        self.addr = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("worker did not start; log:\n{}", self.log_text()));
        self.child = Some(child);
    }

    /// Whether the process is running (started and not stopped or killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs the worker in the foreground until it exits (for settings it must refuse):
    /// its exit code and stderr.
    pub fn run_to_exit(&self) -> (Option<i32>, String) {
        run_ferry_to_exit(&self.conf)
    }

    /// The process's resident memory now, in MiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_mib(&self) -> f64 {
        let pid = self.child.as_ref().expect("worker running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib / 1024.0
    }

    /// The worker's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no shutdown work at all).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One HTTP request; returns (status, parsed JSON body or Null).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        match &self.token {
            Some(token) => {
                let auth = format!("Bearer {token}");
                http_with(&self.addr, method, path, body, &[("Authorization", &auth)])
            }
            None => http(&self.addr, method, path, body),
        }
    }

    /// `GET /metrics`: the OpenMetrics text, asserting 200 and its content type.
    pub fn metrics(&self) -> String {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let (code, head, body) = http_text(&self.addr, "GET", "/metrics", None, &headers);
        assert_eq!(code, 200, "{head}\n{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
        body
    }

    /// Creates a connector through `POST /connectors`, asserting 201.
    pub fn create(&self, name: &str, config: Value) {
        let (code, body) = self.request(
            "POST",
            "/connectors",
            Some(&serde_json::json!({"name": name, "config": config})),
        );
        assert_eq!(code, 201, "create {name}: {body}");
    }

    /// `GET /connectors/{name}/status`.
    pub fn status(&self, name: &str) -> Value {
        self.request("GET", &format!("/connectors/{name}/status"), None)
            .1
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
        // Its store holds compiled plugins (about 100 MiB): a suite run left gigabytes, and the
        // RocketMQ broker refuses writes above 90 % disk use. A failed test keeps it (the log).
        if !std::thread::panicking()
            && let Some(root) = self.log.parent()
        {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// Runs `scripts/brokers.sh <action>` (e.g. `rocketmq-broker-down`) and asserts it worked: a
/// real fault for the tests that need one. Such tests live in their own test binary, since the
/// fault disturbs every test running beside them.
pub fn brokers(action: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/brokers.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "brokers.sh {action} failed");
}

/// Runs `ferry -c conf` until it exits: its exit code and stderr.
pub fn run_ferry_to_exit(conf: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(ferry_bin())
        .arg("-c")
        .arg(conf)
        .output()
        .expect("the ferry binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Percent-encodes `s` for a query string (the seed's `?config={json}` routes).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minimal HTTP/1.1 client (one request per connection).
pub fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    http_with(addr, method, path, body, &[])
}

/// [`http`] with extra request headers (`Authorization`, `Origin`...).
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let (status, _, body) = http_text(addr, method, path, body, headers);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// [`http_with`] answering the raw head (status line and headers) and body text.
pub fn http_text(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, head.to_string(), body)
}

/// The sum of every sample of metric `name` whose labels include all of `labels`, from
/// OpenMetrics text (`None` when no sample matches).
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(pair) => pair,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels.iter().all(|(k, v)| {
            label_text
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        if matches && let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Reads what file-sink wrote: (key, value, headers, timestamp) per line.
pub fn sink_lines(dir: &Path) -> Vec<Value> {
    let mut lines = Vec::new();
    for (_, text) in sink_files(dir) {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                lines.push(v);
            }
        }
    }
    lines
}

/// The files in `dir` (file-sink's output), as (file name, text); none if `dir` is missing.
fn sink_files(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), text))
        })
        .collect()
}

/// What file-sink wrote into a folder: how many times each datagen record number was seen.
pub fn sink_counts(dir: &Path) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for (_, text) in sink_files(dir) {
        for line in text.lines() {
            // A line being written right now may be incomplete; it is counted next time. A
            // worker killed mid-write leaves part of a line too (its records come again).
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let Some(n) = v["value"]
                .as_str()
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse().ok())
            {
                *counts.entry(n).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// The complete lines in `dir`'s files that are not JSON (file, line number, first bytes): a
/// killed writer's cut line, or two writers' bytes mixed.
pub fn unreadable_lines(dir: &Path) -> Vec<(String, usize, String)> {
    let mut bad = Vec::new();
    for (name, text) in sink_files(dir) {
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if let Some(line) = line.strip_suffix('\n')
                && serde_json::from_str::<Value>(line).is_err()
            {
                bad.push((name.clone(), i + 1, line.chars().take(160).collect()));
            }
        }
    }
    bad
}

/// Waits until the files in `dir` hold every record number below `total`; on timeout, panics
/// naming how many are missing, the first missing numbers and what `context()` says (e.g. the
/// status of the connectors involved), so a failure says where the records stopped.
pub fn wait_for_records(
    what: &str,
    dir: &Path,
    total: u64,
    timeout: Duration,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let counts = sink_counts(dir);
        if counts.len() as u64 >= total {
            return;
        }
        if Instant::now() > deadline {
            let missing: Vec<u64> = (0..total).filter(|n| !counts.contains_key(n)).collect();
            panic!(
                "timed out after {timeout:?} waiting for {what}: {} of {total} missing, first {:?}, last {:?}; lines that are not JSON: {:?}; {}",
                missing.len(),
                &missing[..missing.len().min(20)],
                missing.last(),
                unreadable_lines(dir),
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that `counts` holds every record number below `total`; returns the duplicates.
pub fn assert_complete(counts: &BTreeMap<u64, u32>, total: u64) -> u64 {
    let missing: Vec<u64> = (0..total)
        .filter(|n| !counts.contains_key(n))
        .take(20)
        .collect();
    assert!(
        missing.is_empty(),
        "records lost (first 20 missing): {missing:?}; distinct seen {}",
        counts.len()
    );
    let unexpected: Vec<u64> = counts
        .keys()
        .filter(|n| **n >= total)
        .copied()
        .take(20)
        .collect();
    assert!(
        unexpected.is_empty(),
        "records that were never produced: {unexpected:?}"
    );
    counts.values().map(|c| (*c as u64).saturating_sub(1)).sum()
}
