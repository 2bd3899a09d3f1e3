//! The WebAssembly side of the host: one engine, generated bindings, host capabilities, the
//! per-task store state, and [`guest`] wrappers that turn guest faults into typed errors.

pub mod bindings;
pub mod caps;
pub mod engine;
pub mod guest;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

pub use engine::WasmRuntime;
pub use guest::{PluginCode, SinkGuest, SourceGuest};

/// Whether a connector brings records in (source) or takes them out (sink).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Exports `ferry:connector/source`.
    Source,
    /// Exports `ferry:connector/sink`.
    Sink,
}

/// What a plugin's `describe()` said, whichever contract version it was built against: the
/// 0.2.0 record (a 0.1.0 plugin's info converts into it, its keys never secret).
pub use bindings::source::ferry::connector0_2_0::types::{ConfigKey, ConnectorInfo};

impl ConnectorInfo {
    /// The keys the plugin declared secret.
    pub fn secret_keys(&self) -> Vec<String> {
        self.config_keys
            .iter()
            .filter(|k| k.secret)
            .map(|k| k.name.clone())
            .collect()
    }
}

impl From<bindings::source_v01::ferry::connector0_1_0::types::ConnectorInfo> for ConnectorInfo {
    fn from(i: bindings::source_v01::ferry::connector0_1_0::types::ConnectorInfo) -> Self {
        ConnectorInfo {
            name: i.name,
            version: i.version,
            aliases: i.aliases,
            config_keys: i
                .config_keys
                .into_iter()
                .map(|k| ConfigKey {
                    name: k.name,
                    required: k.required,
                    default_value: k.default_value,
                    doc: k.doc,
                    secret: false,
                })
                .collect(),
        }
    }
}

/// Errors of the engine and of loading a component.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The engine could not be configured.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The compile cache folder is unusable.
    #[error("compile cache {path}: {reason}")]
    Cache {
        /// The cache folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The bytes are not a valid component for this engine.
    #[error("does not compile: {0}")]
    Compile(String),
    /// A core module, not a component.
    #[error("is a core WebAssembly module, not a component (build for wasm32-wasip2)")]
    CoreModule,
    /// Not WebAssembly at all.
    #[error("is not a WebAssembly file (no \\0asm header)")]
    NotWasm,
    /// A component that exports neither Ferry world.
    #[error(
        "exports neither {} ({}) nor {} ({})",
        bindings::SOURCE_EXPORT,
        bindings::SOURCE_EXPORT_V01,
        bindings::SINK_EXPORT,
        bindings::SINK_EXPORT_V01
    )]
    WrongWorld,
    /// A Ferry connector built against a contract version this host does not run.
    #[error(
        "was built against `{0}`, which this host does not run (it runs ferry:connector {versions}): rebuild it with this release's SDK and wit/",
        versions = bindings::SUPPORTED_VERSIONS.join(" and ")
    )]
    UnsupportedVersion(String),
    /// The component failed while instantiating or describing itself.
    #[error("{0}")]
    Guest(#[from] GuestFault),
}

/// Why a guest call failed. Every variant fails the task, never the worker.
#[derive(Debug, thiserror::Error, Clone)]
pub enum GuestFault {
    /// The guest panicked (its message is kept).
    #[error("guest panicked: {0}")]
    Panic(String),
    /// The guest tried to grow its memory past `task.memory.max.bytes`.
    #[error(
        "out of memory: guest asked to grow memory from {current} to {desired} bytes, limit is {limit} bytes (task.memory.max.bytes)"
    )]
    OutOfMemory {
        /// Memory size before the denied growth.
        current: usize,
        /// The size the guest asked for.
        desired: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A call ran longer than `task.call.timeout.ms`.
    #[error("timeout: guest call `{call}` ran longer than {}ms (task.call.timeout.ms)", .limit.as_millis())]
    Timeout {
        /// Which export was called.
        call: &'static str,
        /// The configured budget.
        limit: Duration,
    },
    /// Any other trap (unreachable, out-of-bounds access, ...).
    #[error("guest trapped in `{call}`: {detail}")]
    Trap {
        /// Which export was called.
        call: &'static str,
        /// The trap and its backtrace.
        detail: String,
    },
    /// The guest returned an error value.
    #[error("{0}")]
    Returned(String),
    /// The guest said the configuration is invalid.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The guest reported a transient failure.
    #[error("retriable: {0}")]
    Retriable(String),
    /// A sink's `put` refused one record for good (0.2.0 `put-error.rejected`): the records
    /// before it were delivered, none after it.
    #[error("record {index} of batch {batch} rejected: {reason}")]
    Rejected {
        /// Index of the batch in the `put` call.
        batch: u32,
        /// Index of the record in that batch.
        index: u32,
        /// The guest's reason.
        reason: String,
    },
}

impl GuestFault {
    /// A short machine-readable kind, shown in the status API.
    pub fn kind(&self) -> &'static str {
        match self {
            GuestFault::Panic(_) => "panic",
            GuestFault::OutOfMemory { .. } => "out-of-memory",
            GuestFault::Timeout { .. } => "timeout",
            GuestFault::Trap { .. } => "trap",
            GuestFault::Returned(_) => "fatal",
            GuestFault::InvalidConfig(_) => "invalid-config",
            GuestFault::Retriable(_) => "retriable",
            GuestFault::Rejected { .. } => "rejected",
        }
    }
}

/// Sandbox settings of one task, from its connector config.
#[derive(Clone, Debug)]
pub struct GuestLimits {
    /// `task.memory.max.bytes`.
    pub memory_max: usize,
    /// `task.call.timeout.ms`.
    pub call_timeout: Duration,
    /// The one directory granted to the task (`file.dir`), if any.
    pub preopen_dir: Option<PathBuf>,
    /// The Kafka servers and properties granted to the task.
    pub kafka: caps::kafka::KafkaGrant,
    /// Shared with the task's status: the partitions its Kafka consumer owns.
    pub assigned: caps::kafka::AssignedPartitions,
    /// The origins the task may send HTTP requests to (`http.url`, `http.allowed.hosts`).
    pub http: caps::http::HttpGrant,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            memory_max: 64 << 20,
            call_timeout: Duration::from_secs(30),
            preopen_dir: None,
            kafka: Default::default(),
            assigned: Default::default(),
            http: Default::default(),
        }
    }
}
