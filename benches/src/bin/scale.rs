//! How Ferry's cost grows with the work a worker holds (issue 13, part 5):
//! 1. throughput and RSS with 1, 4, 16 and 64 tasks, datagen -> RocketMQ and RocketMQ ->
//!    file-sink;
//! 2. 100 connectors present and idle (50 sources that wrote their 10 records, 50 sinks that read
//!    them): the worker's idle CPU and RSS, the create-to-running time of one
//!    more, and a 1-task job's throughput next to them (against the same job on a clean worker);
//! 3. a plugin swap (a new `file-sink.wasm` renamed over the old one) while records flow at
//!    10,000 rec/s: the delivery gap it caused and the duplicates it left.
//!
//! Needs the brokers (`just bench` starts them). `FERRY_SCALE_RECORDS` sets the records per
//! throughput run (default 100,000 of 1 KiB).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_bench::FerryWorker;
use serde_json::json;

/// Value bytes of the throughput runs.
const SIZE: u64 = 1024;

fn main() -> anyhow::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let records: u64 = std::env::var("FERRY_SCALE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("ferry-bench-scale-{stamp}"));
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let source = PathBuf::from(
        std::env::var("FERRY_PLUGIN_DIR").unwrap_or_else(|_| "target/plugins".into()),
    );
    for plugin in ["datagen.wasm", "file-sink.wasm"] {
        std::fs::copy(source.join(plugin), plugins.join(plugin))?;
    }
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    let clean = tasks(stamp, &dir, records)?;
    many_connectors(stamp, &dir, records, clean)?;
    plugin_swap(stamp, &dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A worker of its own on the bench's plugin copy, with `<dir>/files` as its file root.
fn worker(dir: &Path, id: &str) -> anyhow::Result<FerryWorker> {
    FerryWorker::start_with(
        id,
        id,
        &dir.join("plugins").display().to_string(),
        &format!("fileRoots={}\n", dir.join("files").display()),
    )
}

/// Waits until connector `name` has delivered `total` records; the rate from its first
/// delivered record (as [`FerryWorker::measure`], without deleting it).
fn wait_delivered(w: &FerryWorker, name: &str, total: u64) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let delivered = w.delivered(name)?;
        if delivered > 0 && first.is_none() {
            first = Some((Instant::now(), delivered));
        }
        if delivered >= total {
            let (at, seen) = first.unwrap();
            let counted = (total - seen.min(total - 1)) as f64;
            return Ok(counted / at.elapsed().as_secs_f64().max(1e-3));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} delivered {delivered} of {total}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every task of `name` reports RUNNING.
fn wait_running(w: &FerryWorker, name: &str, tasks: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status = w.http("GET", &format!("/connectors/{name}/status"), "")?;
        let running = status["tasks"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["state"] == "RUNNING").count())
            .unwrap_or(0);
        if running >= tasks {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{name} not running: {status}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn datagen(topic: &str, tasks: u32, count: u64, extra: serde_json::Value) -> serde_json::Value {
    let mut config = json!({"connector-class": "datagen", "datagen.topic": topic, "tasks.num": tasks.to_string(),
                            "datagen.count": count.to_string(), "datagen.size": SIZE.to_string()});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

/// Part 1; returns the 1-task datagen rate (the clean worker's figure for part 2).
fn tasks(stamp: u64, dir: &Path, records: u64) -> anyhow::Result<f64> {
    println!("tasks on one worker ({records} x {SIZE} B per run; RocketMQ topics have 8 queues):");
    println!("  tasks | datagen -> RocketMQ | RSS after  | RocketMQ -> file-sink | RSS after");
    let mut clean = 0.0;
    for n in [1u32, 4, 16, 64] {
        let w = worker(dir, &format!("scale-{stamp}-{n}"))?;
        let topic = format!("scale-{stamp}-{n}");
        let source = format!("gen-{n}");
        w.create(&source, datagen(&topic, n, records, json!({})))?;
        let produced = wait_delivered(&w, &source, records)?;
        let rss_source = w.rss_mib();
        if n == 1 {
            clean = produced;
        }
        let out = dir.join("files").join(&topic);
        std::fs::create_dir_all(&out)?;
        let sink = format!("sink-{n}");
        w.create(
            &sink,
            json!({"connector-class": "file-sink", "rocketmq.topics": topic, "tasks.num": n.to_string(),
                   "file.dir": out.display().to_string(), "file.buffered": "true"}),
        )?;
        let consumed = wait_delivered(&w, &sink, records)?;
        let rss_sink = w.rss_mib();
        println!(
            "  {n:>5} | {produced:>12.0} rec/s | {rss_source:>6.1} MiB | {consumed:>14.0} rec/s | {rss_sink:>6.1} MiB"
        );
        let _ = std::fs::remove_dir_all(&out);
    }
    Ok(clean)
}

/// Part 2.
fn many_connectors(stamp: u64, dir: &Path, records: u64, clean: f64) -> anyhow::Result<()> {
    const PRESENT: usize = 100;
    let w = worker(dir, &format!("scale-{stamp}-many"))?;
    let idle_topic = format!("scale-{stamp}-idle");
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..PRESENT {
        // Half sources that write 10 records and then poll for more (none come), half sinks that
        // read them and then wait: alive, with no traffic.
        let name = format!("idle-{i}");
        let at = Instant::now();
        let config = match i % 2 {
            0 => datagen(&idle_topic, 1, 10, json!({"datagen.size": "100"})),
            _ => {
                let out = dir.join("files").join(&name);
                std::fs::create_dir_all(&out)?;
                json!({"connector-class": "file-sink", "rocketmq.topics": idle_topic,
                       "file.dir": out.display().to_string()})
            }
        };
        w.create(&name, config)?;
        wait_running(&w, &name, 1)?;
        slowest = slowest.max(at.elapsed());
    }
    println!(
        "{PRESENT} idle connectors (1 task each: datagen of 10 records, file-sinks reading them) created and running in {:.1} s (slowest {} ms)",
        started.elapsed().as_secs_f64(),
        slowest.as_millis()
    );
    // Idle from here: every sink has read the sources' records.
    let all = (PRESENT as u64 / 2) * 10;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (1..PRESENT)
        .step_by(2)
        .any(|i| w.delivered(&format!("idle-{i}")).unwrap_or(0) < all)
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the idle sinks did not read {all} records each in 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (cpu0, t0) = (w.cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let cpu = (w.cpu() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    println!(
        "  idle with {PRESENT} connectors: {:.1} % of a core, RSS {:.1} MiB",
        cpu * 100.0,
        w.rss_mib()
    );
    let at = Instant::now();
    let topic = format!("scale-{stamp}-next");
    w.create("next", datagen(&topic, 1, records, json!({})))?;
    wait_running(&w, "next", 1)?;
    let to_running = at.elapsed();
    let rate = wait_delivered(&w, "next", records)?;
    println!(
        "  connector {}: create -> running {} ms; 1-task datagen {rate:.0} rec/s ({:.2} of the clean worker's {clean:.0})",
        PRESENT + 1,
        to_running.as_millis(),
        rate / clean
    );
    Ok(())
}

/// Part 3.
fn plugin_swap(stamp: u64, dir: &Path) -> anyhow::Result<()> {
    const RATE: u64 = 10_000;
    const SECONDS: u64 = 20;
    let total = RATE * SECONDS;
    let w = worker(dir, &format!("scale-{stamp}-swap"))?;
    let topic = format!("scale-{stamp}-swap");
    let out = dir.join("files").join(&topic);
    std::fs::create_dir_all(&out)?;
    w.create(
        "sink",
        json!({"connector-class": "file-sink", "rocketmq.topics": topic,
               "file.dir": out.display().to_string(), "file.buffered": "true"}),
    )?;
    w.create(
        "gen",
        datagen(
            &topic,
            1,
            total,
            json!({"datagen.rate": RATE.to_string(), "datagen.size": "100"}),
        ),
    )?;
    // Swap once the pipeline has run for a third of the time.
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.delivered("sink")? < total / 3 {
        anyhow::ensure!(Instant::now() < deadline, "the sink did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A new version: the same code with one more custom section (a component may carry custom
    // sections anywhere), written next to the old file and renamed over it.
    let plugin = dir.join("plugins").join("file-sink.wasm");
    let mut bytes = std::fs::read(&plugin)?;
    let name = b"ferry-bench-version";
    let payload = stamp.to_le_bytes();
    bytes.push(0);
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    let tmp = dir.join("plugins").join("file-sink.wasm.new");
    std::fs::write(&tmp, &bytes)?;
    let lines = |out: &Path| -> u64 {
        std::fs::read_dir(out)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
                    .sum()
            })
            .unwrap_or(0)
    };
    use sha2::Digest as _;
    let version: String = hex::encode(sha2::Sha256::digest(&bytes))
        .chars()
        .take(12)
        .collect();
    let swapped = Instant::now();
    std::fs::rename(&tmp, &plugin)?;
    // Until the task runs the new version and 2 s after: the longest stretch without a new
    // line in the sink's files.
    let (mut last, mut last_change, mut gap) = (lines(&out), Instant::now(), Duration::ZERO);
    let mut switched = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while switched.is_none_or(|at: Duration| swapped.elapsed() < at + Duration::from_secs(2)) {
        std::thread::sleep(Duration::from_millis(10));
        let now = lines(&out);
        if now != last {
            gap = gap.max(last_change.elapsed());
            last = now;
            last_change = Instant::now();
        }
        if switched.is_none() {
            let status = w.http("GET", "/connectors/sink/status", "")?;
            if status["tasks"][0]["plugin_version"] == version.as_str()
                && status["tasks"][0]["state"] == "RUNNING"
            {
                switched = Some(swapped.elapsed());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink never ran the new plugin"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while w.delivered("gen")? < total || lines(&out) < total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink stopped at {} of {total}",
            lines(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen = HashSet::new();
    let mut written = 0u64;
    for entry in std::fs::read_dir(&out)? {
        for line in std::fs::read_to_string(entry?.path())?.lines() {
            let record: serde_json::Value = serde_json::from_str(line)?;
            written += 1;
            seen.insert(record["key"].as_str().unwrap_or_default().to_string());
        }
    }
    anyhow::ensure!(
        seen.len() as u64 == total,
        "{} of {total} records arrived",
        seen.len()
    );
    println!(
        "plugin swap of file-sink at {RATE} rec/s: running the new version {} ms after the rename; longest \
         delivery gap {} ms; {} duplicates in {total} records",
        switched.unwrap_or_default().as_millis(),
        gap.as_millis(),
        written - total
    );
    Ok(())
}
