//! `ferry -c connect.conf`: one worker process.

// The rocketmq client's futures are deeply nested.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry::cluster::membership::{JoinError, Membership};
use ferry::cluster::peer::{PeerClient, PeerTls};
use ferry::cluster::sync::ClusterSync;
use ferry::cluster::{ClusterNames, ConfigEvent};
use ferry::config::WorkerConfig;
use ferry::plugin::{PluginRegistry, watch_plugin_dirs};
use ferry::rest::RequestGuard;
use ferry::rest::tls::TlsListener;
use ferry::rocketmq::{Hub, HubSettings};
use ferry::store::Store;
use ferry::task::TaskDeps;
use ferry::wasm::WasmRuntime;
use ferry::worker::{Worker, loops};
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

mod tools;

/// `ferry -c connect.conf`: one worker of a Ferry cluster.
#[derive(clap::Parser)]
#[command(
    version,
    about = "Ferry: runs WebAssembly source and sink connectors between Kafka and RocketMQ",
    after_help = "Environment:\n  FERRY_LOG         log filter (tracing syntax), default info\n  \
                  FERRY_LOG_FORMAT  `text` (default) or `json` (one JSON object per line, for log shippers)\n\n\
                  Exit codes: 0 stopped, 1 failed while running, 2 bad settings."
)]
struct Args {
    /// The worker's settings (the seed's connect.conf format; README "Running a worker").
    #[arg(short = 'c', long = "config", value_name = "FILE", required = false)]
    config: Option<PathBuf>,
    /// Tools for connector authors instead of a worker.
    #[command(subcommand)]
    command: Option<tools::Command>,
}

fn main() -> ExitCode {
    ferry::memory::tune_allocator();
    // The RocketMQ client re-balances its consumers every 20 s once balanced, so a sink whose
    // topic is created later would wait up to 20 s for its queues. Read once, from the
    // environment, before any thread exists.
    const REBALANCE_WAIT: &str = "rocketmq.client.rebalance.waitInterval";
    if std::env::var_os(REBALANCE_WAIT).is_none() {
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var(REBALANCE_WAIT, "3000") };
    }
    let args = <Args as clap::Parser>::parse();
    if let Some(command) = args.command {
        // A guest's log lines (and the host's warnings, e.g. a refused HTTP request) go to
        // stderr, as a worker's would.
        init_logging();
        return tools::run(command);
    }
    let Some(file) = args.config else {
        eprintln!(
            "ferry: give the worker's settings with --config <FILE> (-c), or a command: check, new (ferry --help)"
        );
        return ExitCode::from(2);
    };
    init_logging();
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
        Err(e) if e.downcast_ref::<Misconfigured>().is_some() => {
            eprintln!("ferry: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (scrubbed of secrets), filtered by `FERRY_LOG`, as text or, with
/// `FERRY_LOG_FORMAT=json`, one JSON object per line.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        "info,rocketmq=warn,rocketmq_client_rust=warn,rocketmq_transport=warn,rocketmq_remoting=warn"
            .into()
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| ScrubbedStderr);
    match std::env::var("FERRY_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        Ok("text") | Err(_) => builder.init(),
        Ok(other) => {
            builder.init();
            tracing::warn!("FERRY_LOG_FORMAT=`{other}` is not `text` or `json`; logging as text");
        }
    }
}

/// The log's destination: stderr, with every secret value this process has seen replaced by
/// `[hidden]` (a guest or librdkafka may echo one in an error).
struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(ferry::security::secrets::scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A startup error the operator must fix in the settings (exit code 2, like a bad config).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Misconfigured(String);

async fn run(
    config: WorkerConfig,
    context: rocketmq_runtime::ChildServiceContext,
) -> anyhow::Result<()> {
    for secret in [&config.rest_auth_token, &config.secret_key]
        .into_iter()
        .flatten()
    {
        ferry::security::secrets::remember(secret.expose());
    }
    let tls = match &config.http_tls {
        Some(files) => {
            Some(ferry::rest::tls::acceptor(files).map_err(|e| Misconfigured(e.to_string()))?)
        }
        None => None,
    };
    let peers = PeerClient::new(
        config.rest_auth_token.clone(),
        config.http_tls.as_ref().map(|_| PeerTls {
            ca_file: config.http_tls_ca_file.clone(),
        }),
    )
    .map_err(|e| Misconfigured(format!("httpTlsCaFile: {e}")))?;
    let store = Arc::new(Store::open(&config.store_path_root_dir)?);
    let runtime = WasmRuntime::with_memory_ceiling(
        &store.dir().join("compile-cache"),
        config.grants.ceilings.memory_bytes,
    )?;
    let registry = Arc::new(PluginRegistry::new(runtime, config.plugin_paths.clone()));
    let report = registry.reload().await;
    let scanned = (report.added.len(), report.failures.len());
    tracing::info!(
        loaded = report.added.len(),
        failed = report.failures.len(),
        "plugins scanned"
    );
    // Compiling the plugins leaves the compiler's freed memory with the allocator.
    ferry::memory::release_unused();
    let hub = Hub::start(
        context,
        HubSettings {
            namesrv_addr: config.namesrv_addr.clone(),
            worker_id: config.worker_id.clone(),
            acl: config.acl_enable.then(|| {
                (
                    config.access_key.clone().unwrap_or_default(),
                    config
                        .secret_key
                        .as_ref()
                        .map(|k| k.expose().to_string())
                        .unwrap_or_default(),
                )
            }),
            auto_create: config.auto_create_group_enable,
        },
    )
    .await?;
    let names = ClusterNames::new(config.cluster_name.as_deref());
    ferry::cluster::ensure_internal_topics(&hub, &names, config.auto_create_group_enable)
        .await
        .map_err(|e| Misconfigured(e.to_string()))?;
    let membership = match Membership::join(hub.clone(), names.clone(), &config.worker_id).await {
        Ok(m) => m,
        Err(e @ JoinError::Duplicate(..)) => return Err(Misconfigured(e.to_string()).into()),
        Err(e) => return Err(e).context("cannot join the cluster"),
    };
    let sync = Arc::new(ClusterSync::new(hub.clone(), names, &config.worker_id));
    let worker = Worker::new(
        TaskDeps {
            registry: registry.clone(),
            hub,
            store: store.clone(),
            grants: Arc::new(config.grants.clone()),
        },
        &config.worker_id,
        Some(sync.clone()),
        peers,
        config.cluster_name.clone(),
    );
    worker.readiness().plugins_scanned(scanned.0, scanned.1);
    if let Ok(mut members) = membership.read().await {
        members.insert(config.worker_id.clone());
        worker.members_changed(members).await;
    }
    worker.reconcile_now().await;
    let reader = sync
        .reader()
        .await
        .context("cannot read the config topic")?;
    // Test knob: skip sync messages stored before this time, as if retention had deleted them.
    let ignore_before = std::env::var("FERRY_TEST_SYNC_IGNORE_BEFORE_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    tokio::spawn(loops::read_sync_topics(
        reader,
        sync.clone(),
        worker.clone(),
        ignore_before,
    ));
    tokio::spawn(loops::publish_positions(sync.clone(), store.clone()));
    tokio::spawn(loops::publish_snapshots(
        sync.clone(),
        worker.clone(),
        config.state_snapshot_interval,
    ));

    let watched = worker.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::spawn(watch_plugin_dirs(registry.clone(), move |report| {
        let worker = watched.clone();
        handle.spawn(async move { worker.plugins_reloaded(&report).await });
    }));
    tokio::spawn(ferry::memory::release_periodically(
        ferry::task::records_delivered,
    ));
    let flushed = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let store = flushed.clone();
            match tokio::task::spawn_blocking(move || store.flush()).await {
                Ok(Err(e)) => tracing::error!("cannot persist positions: {e}"),
                Err(e) => tracing::error!("cannot persist positions: {e}"),
                Ok(Ok(())) => {}
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(worker = %config.worker_id, %addr, scheme, auth = config.rest_auth_token.is_some(), "ferry worker listening");
    println!(
        "ferry: worker {} listening on {scheme}://{addr}",
        config.worker_id
    );
    let advertised = ferry::cluster::advertise::rest_address(
        config.http_advertised_address.as_deref(),
        addr,
        ferry::cluster::advertise::machine_address,
    );
    tracing::info!(address = %advertised.address, chosen_by = advertised.reason, "REST address announced to the cluster");
    let announcement = ConfigEvent::Worker {
        worker: config.worker_id.clone(),
        rest: advertised.address,
    };
    worker.apply_remote(announcement.clone()).await;
    tokio::spawn(loops::follow_members(
        membership,
        worker.clone(),
        sync.clone(),
        announcement,
    ));
    let guard = RequestGuard::new(
        config.rest_auth_token.clone(),
        config.legacy_get_writes,
        config.http_limits.clone(),
    );
    let app = ferry::rest::router(worker.clone(), guard);
    match tls {
        Some(acceptor) => {
            axum::serve(TlsListener::new(listener, acceptor)?, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?
        }
    }
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
