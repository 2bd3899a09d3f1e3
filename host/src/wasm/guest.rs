//! Running guests: a compiled plugin ([`PluginCode`]) and one task's live instance
//! ([`SourceGuest`], [`SinkGuest`]). Every call goes through [`Guarded`], which arms the epoch
//! deadline before the call and turns a trap into a [`GuestFault`] that says what happened.

use std::time::Instant;

use wasmtime::component::{Component, ResourceAny};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::AsyncStdoutStream;

use super::bindings::{self, GuestError, Position, PutError, RecordBatch, SourceBatch};
use super::state::{GuestOutput, MemoryLimiter, OutputTail, TaskIds, TaskState};
use super::{ConnectorInfo, GuestFault, GuestLimits, PluginKind, WasmError, WasmRuntime};

type Config = Vec<(String, String)>;

/// The error a deadline callback raises when a call runs out of time.
#[derive(Debug)]
struct CallTimedOut;

impl std::fmt::Display for CallTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("guest call timed out")
    }
}
impl std::error::Error for CallTimedOut {}

/// A source's pre-linked instance, per contract version.
#[derive(Clone)]
enum SourcePre {
    V01(bindings::source_v01::SourceConnectorPre<TaskState>),
    V02(bindings::source::SourceConnectorPre<TaskState>),
}

/// A source instance, per contract version.
enum SourceInstance {
    V01(bindings::source_v01::SourceConnector),
    V02(bindings::source::SourceConnector),
}

/// Runs `$body` with `$api`, the instance's `source` export, whatever its version (the calls
/// have the same names and, but for `poll`, the same types).
macro_rules! on_source {
    ($instance:expr, |$api:ident| $body:expr) => {
        match $instance {
            SourceInstance::V01(b) => {
                let $api = b.ferry_connector0_1_0_source();
                $body
            }
            SourceInstance::V02(b) => {
                let $api = b.ferry_connector0_2_0_source();
                $body
            }
        }
    };
}

/// A sink's pre-linked instance, per contract version.
#[derive(Clone)]
enum SinkPre {
    V01(bindings::sink_v01::SinkConnectorPre<TaskState>),
    V02(bindings::sink::SinkConnectorPre<TaskState>),
}

/// A sink instance, per contract version.
enum SinkInstance {
    V01(bindings::sink_v01::SinkConnector),
    V02(bindings::sink::SinkConnector),
}

/// Runs `$body` with `$api`, the instance's `sink` export, whatever its version (the calls
/// have the same names and, but for `describe`, the same types).
macro_rules! on_sink {
    ($instance:expr, |$api:ident| $body:expr) => {
        match $instance {
            SinkInstance::V01(b) => {
                let $api = b.ferry_connector0_1_0_sink();
                $body
            }
            SinkInstance::V02(b) => {
                let $api = b.ferry_connector0_2_0_sink();
                $body
            }
        }
    };
}

/// One compiled plugin version: the component and its pre-linked instance.
#[derive(Clone)]
pub struct PluginCode {
    /// Source or sink.
    pub kind: PluginKind,
    /// The `ferry:connector` version it was built against.
    pub wit_version: &'static str,
    source_pre: Option<SourcePre>,
    sink_pre: Option<SinkPre>,
}

impl PluginCode {
    /// Pre-links `component` against the host's linker and checks which world it exports.
    pub fn new(runtime: &WasmRuntime, component: &Component) -> Result<Self, WasmError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&runtime.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        let (kind, wit_version) = if has(bindings::SOURCE_EXPORT) {
            (PluginKind::Source, "0.2.0")
        } else if has(bindings::SOURCE_EXPORT_V01) {
            (PluginKind::Source, "0.1.0")
        } else if has(bindings::SINK_EXPORT) {
            (PluginKind::Sink, "0.2.0")
        } else if has(bindings::SINK_EXPORT_V01) {
            (PluginKind::Sink, "0.1.0")
        } else if let Some(other) = exports.iter().find(|e| e.starts_with("ferry:connector/")) {
            return Err(WasmError::UnsupportedVersion(other.clone()));
        } else {
            return Err(WasmError::WrongWorld);
        };
        let pre = runtime
            .linker
            .instantiate_pre(component)
            .map_err(|e| WasmError::Compile(format!("cannot link: {e:#}")))?;
        let link = |e: wasmtime::Error| WasmError::Compile(format!("cannot link: {e:#}"));
        Ok(match (kind, wit_version) {
            (PluginKind::Source, "0.1.0") => PluginCode {
                kind,
                wit_version,
                source_pre: Some(SourcePre::V01(
                    bindings::source_v01::SourceConnectorPre::new(pre).map_err(link)?,
                )),
                sink_pre: None,
            },
            (PluginKind::Source, _) => PluginCode {
                kind,
                wit_version,
                source_pre: Some(SourcePre::V02(
                    bindings::source::SourceConnectorPre::new(pre).map_err(link)?,
                )),
                sink_pre: None,
            },
            (PluginKind::Sink, "0.1.0") => PluginCode {
                kind,
                wit_version,
                source_pre: None,
                sink_pre: Some(SinkPre::V01(
                    bindings::sink_v01::SinkConnectorPre::new(pre).map_err(link)?,
                )),
            },
            (PluginKind::Sink, _) => PluginCode {
                kind,
                wit_version,
                source_pre: None,
                sink_pre: Some(SinkPre::V02(
                    bindings::sink::SinkConnectorPre::new(pre).map_err(link)?,
                )),
            },
        })
    }

    /// Calls `describe()` in a scratch instance.
    // The conversion is needed for 0.1.0 guests only; the macro expands it for both versions.
    #[allow(clippy::useless_conversion)]
    pub async fn describe(&self, runtime: &WasmRuntime) -> Result<ConnectorInfo, GuestFault> {
        let mut guard = Guarded::new(runtime, scratch_ids(), &GuestLimits::default())?;
        match self.kind {
            PluginKind::Source => {
                let b = guard.instantiate_source(self).await?;
                guard.arm();
                let r = on_source!(&b, |api| api
                    .call_describe(&mut guard.store)
                    .await
                    .map(ConnectorInfo::from));
                guard.finish("describe", r)
            }
            PluginKind::Sink => {
                let b = guard.instantiate_sink(self).await?;
                guard.arm();
                let r = on_sink!(&b, |api| api
                    .call_describe(&mut guard.store)
                    .await
                    .map(ConnectorInfo::from));
                guard.finish("describe", r)
            }
        }
    }

    /// Calls `validate(config)` then `task-configs(config, max)` in a scratch instance.
    pub async fn plan_tasks(
        &self,
        runtime: &WasmRuntime,
        config: &Config,
        max_tasks: u32,
        limits: &GuestLimits,
    ) -> Result<Vec<Config>, GuestFault> {
        let mut guard = Guarded::new(runtime, scratch_ids(), limits)?;
        let (validated, planned) = match self.kind {
            PluginKind::Source => {
                let b = guard.instantiate_source(self).await?;
                guard.arm();
                let v = on_source!(&b, |api| api.call_validate(&mut guard.store, config).await);
                let v = guard.finish("validate", v)?;
                if v.is_err() {
                    (v, Ok(Vec::new()))
                } else {
                    guard.arm();
                    let p = on_source!(&b, |api| api
                        .call_task_configs(&mut guard.store, config, max_tasks)
                        .await);
                    (v, guard.finish("task-configs", p)?)
                }
            }
            PluginKind::Sink => {
                let b = guard.instantiate_sink(self).await?;
                guard.arm();
                let v = on_sink!(&b, |api| api.call_validate(&mut guard.store, config).await);
                let v = guard.finish("validate", v)?;
                if v.is_err() {
                    (v, Ok(Vec::new()))
                } else {
                    guard.arm();
                    let p = on_sink!(&b, |api| api
                        .call_task_configs(&mut guard.store, config, max_tasks)
                        .await);
                    (v, guard.finish("task-configs", p)?)
                }
            }
        };
        validated.map_err(returned)?;
        planned.map_err(returned)
    }
}

fn scratch_ids() -> TaskIds {
    TaskIds {
        connector: "(plugin)".into(),
        task: 0,
    }
}

/// Maps a guest's `error` value to a fault.
pub fn returned(e: GuestError) -> GuestFault {
    match e {
        GuestError::InvalidConfig(m) => GuestFault::InvalidConfig(m),
        GuestError::Retriable(m) => GuestFault::Retriable(m),
        GuestError::Fatal(m) => GuestFault::Returned(m),
    }
}

/// Maps a 0.2.0 sink's `put-error` to a fault.
fn put_failed(e: PutError) -> GuestFault {
    match e {
        PutError::InvalidConfig(m) => GuestFault::InvalidConfig(m),
        PutError::Retriable(m) => GuestFault::Retriable(m),
        PutError::Fatal(m) => GuestFault::Returned(m),
        PutError::Rejected(r) => GuestFault::Rejected {
            batch: r.batch,
            index: r.index,
            reason: r.reason,
        },
    }
}

/// A store whose calls are bounded by a deadline and whose traps are classified.
struct Guarded {
    store: Store<TaskState>,
    limits: GuestLimits,
}

impl Guarded {
    /// Whether the guest's linear memory has grown past `recycle_at` of its limit: some
    /// toolchains never free what crosses the boundary (componentize-js and componentize-py
    /// leak buffers), so the task reopens the guest at a safe point before it runs out.
    fn outgrown(&self, recycle_at: f64) -> Option<(usize, usize)> {
        let used = self.store.data().limiter.granted;
        let max = self.limits.memory_max;
        (used as f64 > max as f64 * recycle_at).then_some((used, max))
    }

    fn new(runtime: &WasmRuntime, ids: TaskIds, limits: &GuestLimits) -> Result<Self, GuestFault> {
        let tail = OutputTail::default();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(AsyncStdoutStream::new(
            16 * 1024,
            GuestOutput::new(ids.clone(), "stdout", tail.clone()),
        ))
        .stderr(AsyncStdoutStream::new(
            16 * 1024,
            GuestOutput::new(ids.clone(), "stderr", tail.clone()),
        ))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        if let Some(dir) = &limits.preopen_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                GuestFault::InvalidConfig(format!("file.dir: cannot create {}: {e}", dir.display()))
            })?;
            // The grant was checked (symlinks resolved) when the config was planned; a symlink
            // planted since then must not widen it.
            let resolved = std::fs::canonicalize(dir).map_err(|e| {
                GuestFault::InvalidConfig(format!(
                    "file.dir: cannot resolve {}: {e}",
                    dir.display()
                ))
            })?;
            if &resolved != dir {
                return Err(GuestFault::InvalidConfig(format!(
                    "file.dir: {} now resolves to {}; refusing the changed grant",
                    dir.display(),
                    resolved.display()
                )));
            }
            let guest_path = dir.to_string_lossy().into_owned();
            wasi.preopened_dir(dir, guest_path, FsPerms::ReadWrite)
                .map_err(|e| {
                    GuestFault::InvalidConfig(format!(
                        "file.dir: cannot grant {}: {e:#}",
                        dir.display()
                    ))
                })?;
        }
        let state = TaskState {
            http: super::caps::http::HttpAccess::new(
                ids.clone(),
                limits.http.clone(),
                limits.call_timeout,
            ),
            ids,
            wasi: wasi.build(),
            table: Default::default(),
            limiter: MemoryLimiter::new(limits.memory_max),
            deadline: Instant::now() + limits.call_timeout,
            output_tail: tail,
            kafka: limits.kafka.clone(),
            assigned: limits.assigned.clone(),
            deliveries: Default::default(),
        };
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                return Err(wasmtime::Error::new(CallTimedOut));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        Ok(Guarded {
            store,
            limits: limits.clone(),
        })
    }

    /// Starts the clock for the next call.
    fn arm(&mut self) {
        let data = self.store.data_mut();
        data.deadline = Instant::now() + self.limits.call_timeout;
        data.output_tail.clear();
        self.store.set_epoch_deadline(1);
    }

    /// Turns a call's outcome into the value or a classified fault.
    fn finish<R>(&mut self, call: &'static str, r: wasmtime::Result<R>) -> Result<R, GuestFault> {
        r.map_err(|e| self.classify(call, e))
    }

    fn classify(&mut self, call: &'static str, e: wasmtime::Error) -> GuestFault {
        let data = self.store.data();
        if e.downcast_ref::<CallTimedOut>().is_some() {
            return GuestFault::Timeout {
                call,
                limit: self.limits.call_timeout,
            };
        }
        if let Some((current, desired)) = data.limiter.denied {
            return GuestFault::OutOfMemory {
                current,
                desired,
                limit: data.limiter.max_bytes,
            };
        }
        let output = data.output_tail.text();
        if let Some(at) = output.find("panicked at") {
            let message: String = output[at..].lines().take(2).collect::<Vec<_>>().join(": ");
            return GuestFault::Panic(message);
        }
        GuestFault::Trap {
            call,
            detail: format!("{e:?}")
                .lines()
                .take(12)
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    async fn instantiate_source(
        &mut self,
        code: &PluginCode,
    ) -> Result<SourceInstance, GuestFault> {
        let pre = code
            .source_pre
            .as_ref()
            .ok_or(GuestFault::Returned("not a source".into()))?;
        self.arm();
        let r = match pre {
            SourcePre::V01(pre) => pre
                .instantiate_async(&mut self.store)
                .await
                .map(SourceInstance::V01),
            SourcePre::V02(pre) => pre
                .instantiate_async(&mut self.store)
                .await
                .map(SourceInstance::V02),
        };
        self.finish("instantiate", r)
    }

    async fn instantiate_sink(&mut self, code: &PluginCode) -> Result<SinkInstance, GuestFault> {
        let pre = code
            .sink_pre
            .as_ref()
            .ok_or(GuestFault::Returned("not a sink".into()))?;
        self.arm();
        let r = match pre {
            SinkPre::V01(pre) => pre
                .instantiate_async(&mut self.store)
                .await
                .map(SinkInstance::V01),
            SinkPre::V02(pre) => pre
                .instantiate_async(&mut self.store)
                .await
                .map(SinkInstance::V02),
        };
        self.finish("instantiate", r)
    }
}

/// A live source task in its own store.
pub struct SourceGuest {
    guard: Guarded,
    bindings: SourceInstance,
    task: ResourceAny,
}

impl SourceGuest {
    /// Instantiates the plugin and opens a task at `committed`.
    pub async fn open(
        runtime: &WasmRuntime,
        code: &PluginCode,
        ids: TaskIds,
        limits: &GuestLimits,
        config: &Config,
        committed: &[Position],
    ) -> Result<Self, GuestFault> {
        let mut guard = Guarded::new(runtime, ids, limits)?;
        let bindings = guard.instantiate_source(code).await?;
        guard.arm();
        let r = on_source!(&bindings, |api| api
            .source_task()
            .call_open(&mut guard.store, config, committed)
            .await);
        let task = guard.finish("open", r)?.map_err(returned)?;
        Ok(SourceGuest {
            guard,
            bindings,
            task,
        })
    }

    /// `poll()`: the next batches, or an empty list when idle. A 0.1.0 guest's batches are
    /// given the position 0.1.0 defined: source partition `<topic>/<partition>`, offset the
    /// last record's.
    pub async fn poll(&mut self) -> Result<Vec<SourceBatch>, GuestFault> {
        self.guard.arm();
        let (store, task) = (&mut self.guard.store, self.task);
        match &self.bindings {
            SourceInstance::V01(b) => {
                let r = b
                    .ferry_connector0_1_0_source()
                    .source_task()
                    .call_poll(store, task)
                    .await;
                let batches = self.guard.finish("poll", r)?.map_err(returned)?;
                Ok(batches
                    .into_iter()
                    .filter_map(legacy_source_batch)
                    .collect())
            }
            SourceInstance::V02(b) => {
                let r = b
                    .ferry_connector0_2_0_source()
                    .source_task()
                    .call_poll(store, task)
                    .await;
                self.guard.finish("poll", r)?.map_err(returned)
            }
        }
    }

    /// The guest's memory and its limit, when it has grown past `recycle_at` of the limit.
    pub fn outgrown(&self, recycle_at: f64) -> Option<(usize, usize)> {
        self.guard.outgrown(recycle_at)
    }

    /// `commit(positions)`, after RocketMQ acknowledged them.
    pub async fn commit(&mut self, positions: &[Position]) -> Result<(), GuestFault> {
        self.guard.arm();
        let r = on_source!(&self.bindings, |api| api
            .source_task()
            .call_commit(&mut self.guard.store, self.task, positions)
            .await);
        self.guard.finish("commit", r)
    }
}

/// The position a 0.1.0 source batch stands for (none for an empty batch).
fn legacy_source_batch(records: RecordBatch) -> Option<SourceBatch> {
    let last = records.messages.last()?.offset;
    Some(SourceBatch {
        source_partition: format!("{}/{}", records.topic, records.partition),
        source_offset: last.to_string(),
        records,
    })
}

/// A live sink task in its own store.
pub struct SinkGuest {
    guard: Guarded,
    bindings: SinkInstance,
    task: ResourceAny,
}

impl SinkGuest {
    /// Instantiates the plugin and opens a task.
    pub async fn open(
        runtime: &WasmRuntime,
        code: &PluginCode,
        ids: TaskIds,
        limits: &GuestLimits,
        config: &Config,
    ) -> Result<Self, GuestFault> {
        let mut guard = Guarded::new(runtime, ids, limits)?;
        let bindings = guard.instantiate_sink(code).await?;
        guard.arm();
        let r = on_sink!(&bindings, |api| api
            .sink_task()
            .call_open(&mut guard.store, config)
            .await);
        let task = guard.finish("open", r)?.map_err(returned)?;
        Ok(SinkGuest {
            guard,
            bindings,
            task,
        })
    }

    /// `put(batches)`: returns once the destination acknowledged. A 0.2.0 sink may answer
    /// [`GuestFault::Rejected`] for one record.
    pub async fn put(&mut self, batches: &[RecordBatch]) -> Result<(), GuestFault> {
        self.guard.arm();
        match &self.bindings {
            SinkInstance::V01(b) => {
                let r = b
                    .ferry_connector0_1_0_sink()
                    .sink_task()
                    .call_put(&mut self.guard.store, self.task, batches)
                    .await;
                self.guard.finish("put", r)?.map_err(returned)
            }
            SinkInstance::V02(b) => {
                let r = b
                    .ferry_connector0_2_0_sink()
                    .sink_task()
                    .call_put(&mut self.guard.store, self.task, batches)
                    .await;
                self.guard.finish("put", r)?.map_err(put_failed)
            }
        }
    }

    /// The guest's memory and its limit, when it has grown past `recycle_at` of the limit.
    pub fn outgrown(&self, recycle_at: f64) -> Option<(usize, usize)> {
        self.guard.outgrown(recycle_at)
    }

    /// The Kafka delivery reports of what the guest queued (`kafka-pipeline.queue`) since they
    /// were last taken; `None` if it queued nothing. The sink loop waits for them off the guest.
    pub fn take_deliveries(&mut self) -> Option<crate::wasm::caps::kafka::Deliveries> {
        let deliveries = std::mem::take(&mut self.guard.store.data_mut().deliveries);
        (!deliveries.is_empty()).then_some(deliveries)
    }

    /// `flush()`: makes everything `put()` so far durable; called before offsets are committed,
    /// so a sink that buffers in `put()` loses nothing.
    pub async fn flush(&mut self) -> Result<(), GuestFault> {
        self.guard.arm();
        let r = on_sink!(&self.bindings, |api| api
            .sink_task()
            .call_flush(&mut self.guard.store, self.task)
            .await);
        self.guard.finish("flush", r)?.map_err(returned)
    }
}
