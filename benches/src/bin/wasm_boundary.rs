//! The WebAssembly boundary benchmark, per guest language (Rust, C, Python, JavaScript):
//! nanoseconds per record for `poll()` and `put()` at batch sizes 1, 100 and 500 with 1 KiB
//! values, instantiation time per task, linear memory per task, component size, and compile
//! time cold and from the cache. The connectors are twins (`datagen` / `datagen-c` /
//! `datagen-py` / `datagen-js`, `bench-sink` / `bench-sink-c` / `bench-sink-py` /
//! `bench-sink-js`). A native baseline (building /
//! reading the same batches in plain Rust) runs in the same process so the figures can be read
//! as ratios.
//!
//! Run with `just bench` (builds the plugins first).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry::wasm::bindings::{Message, RecordBatch};
use ferry::wasm::state::TaskIds;
use ferry::wasm::{GuestLimits, PluginCode, SinkGuest, SourceGuest, WasmRuntime};
use sha2::{Digest, Sha256};

/// How long each measurement runs.
const RUN_FOR: Duration = Duration::from_secs(2);
const VALUE_BYTES: usize = 1024;

fn plugin_dir() -> PathBuf {
    std::env::var("FERRY_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("target/plugins"))
}

fn config(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn ids() -> TaskIds {
    TaskIds {
        connector: "bench".into(),
        task: 0,
    }
}

/// A batch like a 1 KiB-value Kafka batch: key, value, one header, timestamp.
fn sample_batch(size: usize) -> Vec<RecordBatch> {
    let messages = (0..size)
        .map(|n| Message {
            offset: n as i64,
            key: Some(format!("k{n}").into_bytes()),
            value: vec![b'x'; VALUE_BYTES],
            headers: vec![("h".into(), b"v".to_vec())],
            timestamp_ms: 1_700_000_000_000,
        })
        .collect();
    vec![RecordBatch {
        topic: "bench".into(),
        partition: 0,
        messages,
    }]
}

fn load(
    runtime: &WasmRuntime,
    name: &str,
) -> anyhow::Result<(PluginCode, Duration, Duration, usize)> {
    let path = plugin_dir().join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path)
        .with_context(|| format!("read {} (run `just build-plugins`)", path.display()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let started = Instant::now();
    let component = runtime.compile(&bytes, &sha)?;
    let cold = started.elapsed();
    let started = Instant::now();
    let component_cached = runtime.compile(&bytes, &sha)?;
    let cached = started.elapsed();
    drop(component);
    Ok((
        PluginCode::new(runtime, &component_cached)?,
        cold,
        cached,
        bytes.len(),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cache = std::env::temp_dir().join(format!("ferry-bench-cache-{}", std::process::id()));
    let runtime = WasmRuntime::new(&cache)?;
    // The interpreted guests leak what crosses the boundary (README "Connectors in other
    // languages"); a worker reopens such a guest near its limit, this loop does not: room for
    // 2 s of calls.
    let limits = GuestLimits {
        memory_max: 2 << 30,
        ..GuestLimits::default()
    };
    println!(
        "Ferry WebAssembly boundary benchmark ({} KiB values, {:?} per figure)",
        VALUE_BYTES / 1024,
        RUN_FOR
    );
    let native = native_baseline();
    let languages = std::env::var("FERRY_BENCH_LANGUAGES")
        .unwrap_or_else(|_| "rust,c,python,javascript".into());
    for language in languages.split(',') {
        let (source, sink) = match language.trim() {
            "rust" => ("datagen", "bench-sink"),
            "c" => ("datagen-c", "bench-sink-c"),
            "python" => ("datagen-py", "bench-sink-py"),
            "javascript" => ("datagen-js", "bench-sink-js"),
            other => anyhow::bail!("FERRY_BENCH_LANGUAGES: unknown language `{other}`"),
        };
        println!();
        println!("== {language} ({source}.wasm, {sink}.wasm)");
        language_figures(&runtime, &limits, source, sink, &native).await?;
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

/// Native ns per record of building (`poll`) and copying + reading (`put`) each batch size.
fn native_baseline() -> Vec<(usize, f64, f64)> {
    [1usize, 100, 500]
        .into_iter()
        .map(|batch| {
            // Build the same records in plain Rust (what datagen does, without the boundary).
            let (mut records, started) = (0u64, Instant::now());
            let mut next = 0u64;
            while started.elapsed() < RUN_FOR {
                let messages: Vec<Message> = (0..batch)
                    .map(|_| {
                        let mut value = format!("{next} ").into_bytes();
                        value.resize(VALUE_BYTES, b'x');
                        let m = Message {
                            offset: next as i64,
                            key: Some(format!("k{next}").into_bytes()),
                            value,
                            headers: Vec::new(),
                            timestamp_ms: 0,
                        };
                        next += 1;
                        m
                    })
                    .collect();
                records += std::hint::black_box(messages).len() as u64;
            }
            let poll_ns = started.elapsed().as_nanos() as f64 / records as f64;
            // Copy the batch (what lowering does) and read it.
            let batches = sample_batch(batch);
            let (mut records, started) = (0u64, Instant::now());
            while started.elapsed() < RUN_FOR {
                let copy = std::hint::black_box(batches.clone());
                let bytes: usize = copy
                    .iter()
                    .flat_map(|b| &b.messages)
                    .map(|m| m.value.len())
                    .sum();
                std::hint::black_box(bytes);
                records += batch as u64;
            }
            let put_ns = started.elapsed().as_nanos() as f64 / records as f64;
            (batch, poll_ns, put_ns)
        })
        .collect()
}

async fn language_figures(
    runtime: &WasmRuntime,
    limits: &GuestLimits,
    source_name: &str,
    sink_name: &str,
    native: &[(usize, f64, f64)],
) -> anyhow::Result<()> {
    let (source, cold, cached, size) = load(runtime, source_name)?;
    println!(
        "compile {source_name}.wasm ({:.1} MB): cold {:.0} ms, from cache {:.1} ms",
        size as f64 / 1e6,
        cold.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3
    );
    let (sink, cold, cached, size) = load(runtime, sink_name)?;
    println!(
        "compile {sink_name}.wasm ({:.1} MB): cold {:.0} ms, from cache {:.1} ms",
        size as f64 / 1e6,
        cold.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3
    );

    // Instantiation: a new Store, WASI context, instance and open() per task.
    let sink_config = config(&[("rocketmq.topics", "bench".into())]);
    let n = 50;
    let started = Instant::now();
    for _ in 0..n {
        let guest = SinkGuest::open(runtime, &sink, ids(), limits, &sink_config).await?;
        drop(guest);
    }
    let per_task = started.elapsed() / n;
    let before = ferry::metrics::worker::guest_memory_bytes();
    let tasks = open_sinks(runtime, &sink, limits, &sink_config, 10).await?;
    let per_task_memory = (ferry::metrics::worker::guest_memory_bytes() - before) as f64 / 10.0;
    drop(tasks);
    println!(
        "instantiate + open one task: {:.2} ms; linear memory per open task: {:.1} MiB",
        per_task.as_secs_f64() * 1e3,
        per_task_memory / (1 << 20) as f64
    );

    println!(
        "{:<8} {:>6} {:>14} {:>16} {:>8}",
        "call", "batch", "wasm ns/rec", "native ns/rec", "ratio"
    );
    for &(batch, native_poll, native_put) in native {
        // poll(): the guest builds `batch` records of 1 KiB; the host lifts them.
        let source_config = config(&[
            ("datagen.topic", "bench".into()),
            ("datagen.size", VALUE_BYTES.to_string()),
            ("datagen.batch", batch.to_string()),
        ]);
        let mut guest =
            SourceGuest::open(runtime, &source, ids(), limits, &source_config, &[]).await?;
        let (mut records, started) = (0u64, Instant::now());
        while started.elapsed() < RUN_FOR {
            let out = guest.poll().await?;
            records += out
                .iter()
                .map(|b| b.records.messages.len() as u64)
                .sum::<u64>();
        }
        let wasm_ns = started.elapsed().as_nanos() as f64 / records as f64;
        println!(
            "{:<8} {:>6} {:>14.0} {:>16.0} {:>8.1}",
            "poll()",
            batch,
            wasm_ns,
            native_poll,
            wasm_ns / native_poll
        );

        // put(): the host lowers `batch` records into the guest, which reads them.
        let batches = sample_batch(batch);
        let mut guest = SinkGuest::open(runtime, &sink, ids(), limits, &sink_config).await?;
        let (mut records, started) = (0u64, Instant::now());
        while started.elapsed() < RUN_FOR {
            guest.put(&batches).await?;
            records += batch as u64;
        }
        let wasm_ns = started.elapsed().as_nanos() as f64 / records as f64;
        println!(
            "{:<8} {:>6} {:>14.0} {:>16.0} {:>8.1}",
            "put()",
            batch,
            wasm_ns,
            native_put,
            wasm_ns / native_put
        );
    }
    Ok(())
}

/// Opens `n` sink tasks and keeps them open (to count their memory).
async fn open_sinks(
    runtime: &WasmRuntime,
    sink: &PluginCode,
    limits: &GuestLimits,
    config: &[(String, String)],
    n: usize,
) -> anyhow::Result<Vec<SinkGuest>> {
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tasks.push(SinkGuest::open(runtime, sink, ids(), limits, &config.to_vec()).await?);
    }
    Ok(tasks)
}
