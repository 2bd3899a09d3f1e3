//! Cluster figures: tasks moved per membership change (the allocator alone), config propagation
//! time between worker processes, source throughput with 1, 2 and 3 workers, and failover time
//! (SIGKILL to every task running on the survivors). Needs the brokers (`just bench` starts
//! them).

use std::time::{Duration, Instant};

use ferry::cluster::TaskAllocator;
use ferry_bench::FerryWorker;
use serde_json::{Value, json};

fn main() -> anyhow::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    moved_per_change();
    propagation(stamp)?;
    throughput(stamp)?;
    failover(stamp)?;
    Ok(())
}

/// 240 tasks of 10 connectors, N -> N+1 workers: how many move (ideal 240/(N+1)).
fn moved_per_change() {
    println!("tasks moved when a worker joins (240 tasks, 10 connectors):");
    let tasks: Vec<(String, u32)> = (0..240).map(|i| (format!("c{}", i % 10), i / 10)).collect();
    for n in 1..=6usize {
        let before: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
        let after: Vec<String> = (0..=n).map(|i| format!("w{i}")).collect();
        let (a, b) = (TaskAllocator::new(&before), TaskAllocator::new(&after));
        let moved = tasks
            .iter()
            .filter(|(c, t)| a.owner(c, *t) != b.owner(c, *t))
            .count();
        println!(
            "  {n} -> {} workers: {moved} moved (ideal {})",
            n + 1,
            240 / (n + 1)
        );
    }
}

fn cluster(name: &str, n: usize) -> anyhow::Result<Vec<FerryWorker>> {
    let workers = (0..n)
        .map(|i| FerryWorker::start_in(name, &format!("{name}-w{i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !workers.iter().all(|w| {
        w.http("GET", "/getClusterInfo", "")
            .ok()
            .and_then(|i| {
                i["workers"]
                    .as_array()
                    .map(|m| m.len() == n && m.iter().all(|w| w["restAddress"].is_string()))
            })
            .unwrap_or(false)
    }) {
        anyhow::ensure!(Instant::now() < deadline, "cluster {name} did not form");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(workers)
}

/// Create on one worker, poll another until it lists the connector.
fn propagation(stamp: u64) -> anyhow::Result<()> {
    let workers = cluster(&format!("bprop-{stamp}"), 3)?;
    let mut times = Vec::new();
    for i in 0..10 {
        let name = format!("prop-{i}");
        let started = Instant::now();
        workers[i % 3].create(&name, json!({"connector-class": "datagen", "datagen.topic": format!("bprop-{stamp}"), "datagen.count": "1"}))?;
        let other = &workers[(i + 1) % 3];
        loop {
            if other.http("GET", "/getConnectors", "")?[&name].is_object() {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "{name} never arrived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "config propagation (create on one worker -> listed on another, 10 creates): median {:?}, max {:?}",
        times[5], times[9]
    );
    Ok(())
}

/// datagen (4 tasks, 1 KiB records) -> RocketMQ over a cluster of 1, 2 and 3 workers.
fn throughput(stamp: u64) -> anyhow::Result<()> {
    let total: u64 = std::env::var("FERRY_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    for n in 1..=3 {
        let workers = cluster(&format!("btp{n}-{stamp}"), n)?;
        let elapsed = workers[0].measure(
            "gen",
            json!({"connector-class": "datagen", "datagen.topic": format!("bench-cluster-{n}-{stamp}"),
                   "datagen.count": total.to_string(), "datagen.size": "1024", "tasks.num": "4"}),
            total,
        )?;
        let rate = total as f64 / elapsed.as_secs_f64();
        println!(
            "datagen -> RocketMQ, 4 tasks over {n} worker(s): {rate:>8.0} rec/s {:>6.1} MB/s",
            rate * 1024.0 / 1e6
        );
    }
    Ok(())
}

/// 3 workers, 12 endless tasks; SIGKILL the busiest worker; time until every task runs again.
fn failover(stamp: u64) -> anyhow::Result<()> {
    let name = format!("bfo-{stamp}");
    let mut workers = cluster(&name, 3)?;
    workers[0].create("fo", json!({"connector-class": "datagen", "datagen.topic": format!("bfo-{stamp}"), "datagen.rate": "120", "tasks.num": "12"}))?;
    let placed = |w: &FerryWorker| -> anyhow::Result<Option<Vec<String>>> {
        let status: Value = w.http("GET", "/connectors/fo/status", "")?;
        let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
        Ok(
            (tasks.len() == 12 && tasks.iter().all(|t| t["state"] == "RUNNING")).then(|| {
                tasks
                    .iter()
                    .map(|t| t["worker_id"].as_str().unwrap_or_default().to_string())
                    .collect()
            }),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let owners = loop {
        if let Some(o) = placed(&workers[1])? {
            break o;
        }
        anyhow::ensure!(Instant::now() < deadline, "tasks never ran");
        std::thread::sleep(Duration::from_millis(50));
    };
    let victim = (0..3)
        .max_by_key(|i| {
            owners
                .iter()
                .filter(|o| **o == format!("{name}-w{i}"))
                .count()
        })
        .unwrap();
    let lost = owners
        .iter()
        .filter(|o| **o == format!("{name}-w{victim}"))
        .count();
    workers[victim].kill9();
    let killed = Instant::now();
    let observer = &workers[(victim + 1) % 3];
    loop {
        if let Some(o) = placed(observer)?
            && !o.contains(&format!("{name}-w{victim}"))
        {
            break;
        }
        anyhow::ensure!(killed.elapsed() < Duration::from_secs(60), "no failover");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "failover: SIGKILL of a worker running {lost} of 12 tasks -> all 12 running on the other two after {:?}",
        killed.elapsed()
    );
    Ok(())
}
