//! End-to-end rate of the connectors written in other languages, one task each, through a
//! worker and the loopback RocketMQ, against a loopback HTTP server in this process:
//! - http-sink (Python): datagen fills a topic with N x 1 KiB records first; then the rate is
//!   timed from http-sink's `delivered` counter;
//! - http-source (JavaScript): the server answers pages of 500 x 1 KiB records; the rate is
//!   timed from http-source's `delivered` counter.
//!
//! Target (issue 11): at least 10,000 records/s each. Run with `just bench` (brokers up).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_bench::FerryWorker;
use ferry_tests::http_server::HttpServer;
use serde_json::json;

const VALUE_BYTES: usize = 1024;

fn main() -> anyhow::Result<()> {
    let total: u64 = std::env::var("FERRY_BENCH_HTTP_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let worker = FerryWorker::start(stamp)?;
    println!(
        "Ferry HTTP connectors, end to end, one task each ({total} x {} KiB)",
        VALUE_BYTES / 1024
    );

    // http-sink (Python).
    let received = Arc::new(AtomicU64::new(0));
    let sink_server = {
        let received = received.clone();
        HttpServer::start_with(false, move |request| {
            let lines = request.body.iter().filter(|b| **b == b'\n').count() as u64;
            received.fetch_add(lines, Ordering::Relaxed);
            (200, b"{}".to_vec())
        })
    };
    let topic = format!("bench-http-{stamp}");
    let datagen = format!("gen-{stamp}");
    worker.create(
        &datagen,
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string(),
               "datagen.size": VALUE_BYTES.to_string()}),
    )?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while worker.delivered(&datagen)? < total {
        anyhow::ensure!(Instant::now() < deadline, "datagen did not fill {topic}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = worker.cpu();
    let took = worker.measure(
        &format!("http-sink-{stamp}"),
        json!({"connector-class": "http-sink", "rocketmq.topics": topic, "http.url": sink_server.url("/in")}),
        total,
    )?;
    let cpu = worker.cpu() - cpu;
    let sink_rate = total as f64 / took.as_secs_f64();
    println!(
        "http-sink (Python):       {sink_rate:>8.0} rec/s, worker CPU {:.1} us/rec, server got {} records (target >= 10,000 rec/s: {})",
        cpu.as_secs_f64() * 1e6 / total as f64,
        received.load(Ordering::Relaxed),
        if sink_rate >= 10_000.0 {
            "pass"
        } else {
            "MISSED"
        }
    );

    // http-source (JavaScript).
    let value = "x".repeat(VALUE_BYTES - 8);
    let source_server = HttpServer::start_with(false, move |request| {
        let after: u64 = request
            .query("after")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let end = (after + 500).min(total);
        let records: Vec<serde_json::Value> = (after..end)
            .map(|n| json!({"key": format!("k{n}"), "value": format!("{n:07} {value}")}))
            .collect();
        (
            200,
            serde_json::to_vec(&json!({"records": records, "cursor": end.to_string()})).unwrap(),
        )
    });
    let cpu = worker.cpu();
    let took = worker.measure(
        &format!("http-source-{stamp}"),
        json!({"connector-class": "http-source", "http.url": source_server.url("/feed"),
               "http.topic": format!("bench-http-src-{stamp}"), "http.poll.interval.ms": "100"}),
        total,
    )?;
    let cpu = worker.cpu() - cpu;
    let source_rate = total as f64 / took.as_secs_f64();
    println!(
        "http-source (JavaScript): {source_rate:>8.0} rec/s, worker CPU {:.1} us/rec (target >= 10,000 rec/s: {})",
        cpu.as_secs_f64() * 1e6 / total as f64,
        if source_rate >= 10_000.0 {
            "pass"
        } else {
            "MISSED"
        }
    );
    println!("worker RSS after both: {:.0} MiB", worker.rss_mib());
    Ok(())
}
