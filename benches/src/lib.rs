//! Helpers shared by the benchmark binaries: a `ferry` worker process driven over REST.

pub mod native;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The loopback name server `just bench` starts.
pub const NAMESRV: &str = "127.0.0.1:9876";

/// A `ferry` worker process for the measurement.
pub struct FerryWorker {
    child: std::process::Child,
    addr: String,
}

impl FerryWorker {
    /// Starts a worker alone in its own cluster.
    pub fn start(stamp: u64) -> anyhow::Result<Self> {
        Self::start_in(&format!("bench-{stamp}"), &format!("bench-{stamp}"))
    }

    /// Starts worker `worker_id` in cluster `cluster` (`clusterName`).
    pub fn start_in(cluster: &str, worker_id: &str) -> anyhow::Result<Self> {
        let plugins = std::env::var("FERRY_PLUGIN_DIR").unwrap_or_else(|_| "target/plugins".into());
        Self::start_with(cluster, worker_id, &plugins, "")
    }

    /// Starts worker `worker_id` in cluster `cluster` on the plugin folder `plugins`, with
    /// `extra` lines appended to its config file.
    pub fn start_with(
        cluster: &str,
        worker_id: &str,
        plugins: &str,
        extra: &str,
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ferry-bench-{worker_id}"));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("connect.conf");
        std::fs::write(
            &conf,
            format!(
                "workerId={worker_id}\nstorePathRootDir={}\nhttpPort=0\nnamesrvAddr={NAMESRV}\npluginPaths={plugins}\n\
                 autoCreateGroupEnable=true\nclusterName={cluster}\n{extra}",
                dir.join("store").display()
            ),
        )?;
        let exe = std::env::current_exe()?.with_file_name("ferry");
        let mut child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("worker.log"))?)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("worker exited"))??;
            if let Some(at) = line.find("http://") {
                break line[at + 7..].trim().to_string();
            }
        };
        Ok(FerryWorker { child, addr })
    }

    /// One HTTP request to the worker; the JSON answer (or Null).
    pub fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let body = self.http_text(method, path, body)?;
        Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// One HTTP request to the worker; the answer's body as text.
    fn http_text(&self, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
        let mut s = std::net::TcpStream::connect(&self.addr)?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)?;
        Ok(raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
            .to_owned())
    }

    /// Where connector `name`'s tasks spent their time, from the worker's `/metrics`: per
    /// timed call (guest poll, put, RocketMQ send, commit) the number of calls, the mean and
    /// the bucket bound under which 99 % of them fell, summed over the tasks. Read it before
    /// the connector is deleted (its series go with it).
    pub fn timings(&self, name: &str) -> anyhow::Result<String> {
        let text = self.http_text("GET", "/metrics", "")?;
        let label = format!("connector=\"{name}\"");
        let mut parts = Vec::new();
        for call in ["poll", "put", "put_age", "flush", "send", "commit"] {
            let family = format!("ferry_task_{call}_seconds");
            let (mut count, mut sum) = (0.0, 0.0);
            let mut buckets: std::collections::BTreeMap<u64, f64> = Default::default();
            for line in text.lines().filter(|l| l.contains(&label)) {
                let Some((series, value)) = line.rsplit_once(' ') else {
                    continue;
                };
                let value: f64 = value.parse().unwrap_or(0.0);
                if series.starts_with(&format!("{family}_count{{")) {
                    count += value;
                } else if series.starts_with(&format!("{family}_sum{{")) {
                    sum += value;
                } else if series.starts_with(&format!("{family}_bucket{{")) {
                    let bound = series
                        .split("le=\"")
                        .nth(1)
                        .and_then(|b| b.split('"').next())
                        .and_then(|b| b.parse::<f64>().ok())
                        .unwrap_or(f64::INFINITY);
                    // Microseconds as the key: bounds are exact multiples of 0.5 ms.
                    *buckets
                        .entry((bound * 1e6).min(u64::MAX as f64) as u64)
                        .or_default() += value;
                }
            }
            if count == 0.0 {
                continue;
            }
            let p99 = buckets
                .iter()
                .find(|(_, below)| **below >= 0.99 * count)
                .map_or("-".to_owned(), |(bound, _)| match *bound {
                    u64::MAX => "inf".to_owned(),
                    b => format!("{}", b as f64 / 1000.0),
                });
            parts.push(format!(
                "{call} {count:.0} x {:.2} ms (p99 <= {p99} ms)",
                sum / count * 1000.0
            ));
        }
        Ok(parts.join(", "))
    }

    /// Creates a connector.
    pub fn create(&self, name: &str, config: serde_json::Value) -> anyhow::Result<()> {
        let answer = self.http(
            "POST",
            "/connectors",
            &serde_json::json!({"name": name, "config": config}).to_string(),
        )?;
        anyhow::ensure!(answer.get("error").is_none(), "create {name}: {answer}");
        Ok(())
    }

    /// Creates a connector, times it from its first delivered record to `total`, and deletes it.
    pub fn measure(
        &self,
        name: &str,
        config: serde_json::Value,
        total: u64,
    ) -> anyhow::Result<Duration> {
        self.create(name, config)?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut started = None;
        loop {
            let status = self.http("GET", &format!("/connectors/{name}/status"), "")?;
            let delivered: u64 = status["tasks"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["delivered"].as_u64()).sum())
                .unwrap_or(0);
            if delivered > 0 && started.is_none() {
                started = Some((Instant::now(), delivered));
            }
            if delivered >= total {
                let (at, first) = started.unwrap();
                // Scale for the records already delivered when the first count was seen.
                let elapsed = at.elapsed();
                println!("    {name}: {}", self.timings(name)?);
                self.http("DELETE", &format!("/connectors/{name}"), "")?;
                return Ok(elapsed.mul_f64(total as f64 / (total - first.min(total - 1)) as f64));
            }
            anyhow::ensure!(Instant::now() < deadline, "{name} did not finish: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Records delivered so far by the tasks of connector `name` (0 while it has none).
    pub fn delivered(&self, name: &str) -> anyhow::Result<u64> {
        let status = self.http("GET", &format!("/connectors/{name}/status"), "")?;
        Ok(status["tasks"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["delivered"].as_u64()).sum())
            .unwrap_or(0))
    }

    /// CPU time (user + system) the process has used.
    pub fn cpu(&self) -> Duration {
        cpu_of(self.child.id())
    }

    /// Waits until every plugin of the folder `plugins` is listed (scanned and compiled).
    pub fn wait_for_plugins(&self, plugins: &str) -> anyhow::Result<()> {
        let files = std::fs::read_dir(plugins)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
            .count();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let listed = self.http("GET", "/connector-plugins", "")?;
            let loaded = listed["plugins"].as_array().map_or(0, Vec::len)
                + listed["failed"].as_array().map_or(0, Vec::len);
            if loaded >= files {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "plugins not loaded within 300 s");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Resident size once the worker is idle: every plugin of `plugins` scanned, then 35 s,
    /// so freed heap is handed back by the periodic trim (every 30 s). Start the worker on a
    /// warm compile cache for this: compiling a component leaves heap the trim cannot return
    /// (BENCHMARKS.md, "Memory of idle plugins").
    pub fn idle_rss_mib(&self, plugins: &str) -> anyhow::Result<f64> {
        self.wait_for_plugins(plugins)?;
        std::thread::sleep(Duration::from_secs(35));
        Ok(self.rss_mib())
    }

    /// Resident size of the worker process, MiB.
    pub fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }
}

impl FerryWorker {
    /// Kills the process with SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FerryWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) process `pid` has used, from `/proc/<pid>/stat` (zero if unreadable):
/// the benchmarks report CPU per record beside rates, a figure the brokers' noise does not move.
pub fn cpu_of(pid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the `(comm)`: state is field 3, utime 14, stime 15 (1-based).
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            // SAFETY: sysconf only reads a constant.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
            Some(Duration::from_millis(ticks * 1000 / hz))
        })
        .unwrap_or_default()
}
