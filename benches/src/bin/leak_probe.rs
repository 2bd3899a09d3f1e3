//! Does a guest free what crosses the boundary? Calls `poll()` (a datagen twin) or `put()` (a
//! bench-sink twin) in rounds of 2,000 calls with 1 KiB records and prints the guest's linear
//! memory after each round: flat for a guest that frees, growing for one that leaks.
//!
//! `leak-probe <plugin> <batch>` (e.g. `leak-probe datagen-py 10`); `ROUNDS` (default 5).
//! Results are in README "Connectors in other languages" and BENCHMARKS.md.

use anyhow::Context;
use ferry::wasm::bindings::{Message, RecordBatch};
use ferry::wasm::state::TaskIds;
use ferry::wasm::{GuestLimits, PluginCode, SinkGuest, SourceGuest, WasmRuntime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(batch)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: leak-probe <plugin> <batch>");
    };
    let batch: usize = batch.parse().context("batch")?;
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let plugins = std::env::var("FERRY_PLUGIN_DIR").unwrap_or_else(|_| "target/plugins".into());
    let cache = std::env::temp_dir().join(format!("ferry-leak-probe-{}", std::process::id()));
    let runtime = WasmRuntime::new(&cache)?;
    let path = format!("{plugins}/{name}.wasm");
    let bytes = std::fs::read(&path).with_context(|| path.clone())?;
    let code = PluginCode::new(
        &runtime,
        &runtime.compile(&bytes, &format!("probe-{name}"))?,
    )?;
    let limits = GuestLimits {
        memory_max: 1 << 30,
        ..GuestLimits::default()
    };
    let ids = TaskIds {
        connector: "leak-probe".into(),
        task: 0,
    };
    let before = ferry::metrics::worker::guest_memory_bytes();
    let report = |round: usize, call: &str| {
        let grown = ferry::metrics::worker::guest_memory_bytes() - before;
        println!(
            "{name} batch {batch}: after {} {call}: {:.1} MiB",
            (round + 1) * 2000,
            grown as f64 / (1 << 20) as f64
        );
    };
    if code.kind == ferry::wasm::PluginKind::Source {
        let config = vec![
            ("datagen.topic".to_string(), "probe".to_string()),
            ("datagen.size".into(), "1024".into()),
            ("datagen.batch".into(), batch.to_string()),
        ];
        let mut guest = SourceGuest::open(&runtime, &code, ids, &limits, &config, &[]).await?;
        for round in 0..rounds {
            for _ in 0..2000 {
                guest.poll().await?;
            }
            report(round, "polls");
        }
    } else {
        let config = vec![("rocketmq.topics".to_string(), "probe".to_string())];
        let mut guest = SinkGuest::open(&runtime, &code, ids, &limits, &config).await?;
        let batches = vec![RecordBatch {
            topic: "probe".into(),
            partition: 0,
            messages: (0..batch)
                .map(|n| Message {
                    offset: n as i64,
                    key: Some(b"k".to_vec()),
                    value: vec![b'x'; 1024],
                    headers: vec![("h".into(), b"v".to_vec())],
                    timestamp_ms: 0,
                })
                .collect(),
        }];
        for round in 0..rounds {
            for _ in 0..2000 {
                guest.put(&batches).await?;
            }
            report(round, "puts");
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}
