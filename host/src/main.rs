//! `ferry -c connect.conf`: one worker process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry::config::WorkerConfig;
use ferry::plugin::{PluginRegistry, watch_plugin_dirs};
use ferry::rocketmq::{Hub, HubSettings};
use ferry::store::Store;
use ferry::task::TaskDeps;
use ferry::wasm::WasmRuntime;
use ferry::worker::Worker;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

const USAGE: &str = "usage: ferry -c <connect.conf>";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "info,rocketmq=warn,rocketmq_client_rust=warn,rocketmq_transport=warn,rocketmq_remoting=warn".into()),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = match args.as_slice() {
        [flag, file] if flag == "-c" || flag == "--config" => PathBuf::from(file),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (config, warnings) = match WorkerConfig::load(&file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferry: {e}");
            return ExitCode::from(2);
        }
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    let owner = match RuntimeOwner::plan(RuntimeConfig {
        thread_name: "ferry".into(),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("{e:?}"))
    .and_then(|plan| plan.build().map_err(|e| anyhow::anyhow!("{e}")))
    {
        Ok(owner) => owner,
        Err(e) => {
            eprintln!("ferry: cannot start the runtime: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let context = owner.root_context().component("rocketmq");
    let result = owner.block_on(run(config, context));
    owner.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: WorkerConfig,
    context: rocketmq_runtime::ChildServiceContext,
) -> anyhow::Result<()> {
    let store = Arc::new(Store::open(&config.store_path_root_dir)?);
    let runtime = WasmRuntime::new(&store.dir().join("compile-cache"))?;
    let registry = Arc::new(PluginRegistry::new(runtime, config.plugin_paths.clone()));
    let report = registry.reload().await;
    tracing::info!(
        loaded = report.added.len(),
        failed = report.failures.len(),
        "plugins scanned"
    );
    let hub = Hub::start(
        context,
        HubSettings {
            namesrv_addr: config.namesrv_addr.clone(),
            worker_id: config.worker_id.clone(),
            acl: config.acl_enable.then(|| {
                (
                    config.access_key.clone().unwrap_or_default(),
                    config.secret_key.clone().unwrap_or_default(),
                )
            }),
            auto_create: config.auto_create_group_enable,
        },
    )
    .await?;
    let worker = Worker::new(TaskDeps {
        registry: registry.clone(),
        hub,
        store: store.clone(),
    });
    worker.resume_stored().await;

    let watched = worker.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::spawn(watch_plugin_dirs(registry.clone(), move |report| {
        let worker = watched.clone();
        handle.spawn(async move { worker.plugins_reloaded(&report).await });
    }));
    let flushed = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Err(e) = flushed.flush() {
                tracing::error!("cannot persist positions: {e}");
            }
        }
    });

    let listener = tokio::net::TcpListener::bind((config.http_bind, config.http_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (httpPort)",
                config.http_bind, config.http_port
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(worker = %config.worker_id, %addr, "ferry worker listening");
    println!(
        "ferry: worker {} listening on http://{addr}",
        config.worker_id
    );
    axum::serve(listener, ferry::rest::router(worker.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down: finishing in-flight deliveries");
    worker.shutdown().await;
    store.flush()?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
