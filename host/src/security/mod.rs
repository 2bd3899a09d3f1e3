//! What a REST caller, a connector config and a guest may reach, checked in one place:
//! - [`file_roots`]: `fileRoots`, the only directories a connector's `file.dir` may name;
//! - [`kafka_properties`]: the `kafka.client.*` properties a connector (or its guest) may set,
//!   and the consumer groups a guest may open;
//! - [`secrets`]: which config keys are secret (hidden in answers and logs) and the
//!   `${env:..}` / `${file:..}` references resolved on the worker that runs a task;
//! - [`token`]: the REST bearer token, compared in constant time and never printed.
//!
//! SECURITY.md at the repository root states the threat model these checks serve.

pub mod file_roots;
pub mod kafka_properties;
pub mod secrets;
pub mod token;

pub use file_roots::FileRoots;
pub use token::Secret;

/// What this worker lets connector configs reach: the operator's `fileRoots` and
/// `configEnvAllowlist`. One per worker, shared by every check.
#[derive(Clone, Debug, Default)]
pub struct GrantPolicy {
    /// Directories `file.dir`, `ssl.*.location` and `${file:..}` may name.
    pub roots: FileRoots,
    /// Variables `${env:..}` may read.
    pub env: secrets::EnvAllowlist,
    /// Hosts `http.url` and `http.allowed.hosts` may name (`httpEgressAllowlist`; empty = any).
    pub egress: crate::wasm::caps::http::EgressAllowlist,
    /// The most memory and call time a connector may give its tasks.
    pub ceilings: TaskCeilings,
}

/// The worker-wide ceiling on per-connector sandbox limits (`taskMemoryMaxBytes`,
/// `taskCallTimeoutMaxMs`): a connector config may raise `task.memory.max.bytes` and
/// `task.call.timeout.ms` (an interpreted guest needs more than a Rust one) up to these, and
/// the pooling allocator reserves memory slots of the ceiling's size.
#[derive(Clone, Copy, Debug)]
pub struct TaskCeilings {
    /// The largest `task.memory.max.bytes`.
    pub memory_bytes: usize,
    /// The largest `task.call.timeout.ms`.
    pub call_timeout_ms: u64,
}

impl Default for TaskCeilings {
    fn default() -> Self {
        TaskCeilings {
            memory_bytes: 1 << 30,
            call_timeout_ms: 600_000,
        }
    }
}
