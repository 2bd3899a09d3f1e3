//! The one `Engine` per process: pooling allocator, epoch interruption with a 10 ms ticker,
//! the compiled-component cache, and the shared `Linker`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::WasmError;
use super::state::TaskState;

/// How often the epoch advances; a guest call yields to the executor at this period.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest linear memory any worker lets a task have (`taskMemoryMaxBytes` is capped here).
pub const MAX_TASK_MEMORY: usize = 4 << 30;

/// The process-wide WebAssembly runtime: engine, linker and compile cache.
#[derive(Clone)]
pub struct WasmRuntime {
    /// Compiles and runs every component; one per process.
    pub engine: Engine,
    /// WASI plus Ferry's capabilities, shared by every instantiation.
    pub linker: Arc<Linker<TaskState>>,
    /// Where compiled components are kept between runs.
    cache_dir: PathBuf,
}

impl WasmRuntime {
    /// Builds the engine (tasks of up to [`MAX_TASK_MEMORY`]) and starts the epoch ticker.
    pub fn new(cache_dir: &Path) -> Result<Self, WasmError> {
        Self::with_memory_ceiling(cache_dir, MAX_TASK_MEMORY)
    }

    /// Builds the engine with memory slots of `max_memory` bytes (the worker's
    /// `taskMemoryMaxBytes`) and starts the epoch ticker thread.
    pub fn with_memory_ceiling(cache_dir: &Path, max_memory: usize) -> Result<Self, WasmError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(1000)
            .total_core_instances(1000)
            .total_memories(1000)
            .total_tables(1000)
            .total_stacks(1000)
            .max_memory_size(max_memory.min(MAX_TASK_MEMORY))
            // A freed slot keeps its module's memory image ("warm") for a later instance of
            // the same module; with the default of 100 such slots, describing each plugin at a
            // scan left every interpreted guest's image (~10 MiB) resident in an idle worker.
            // 0: freed slots are reused least-recently-used first, so the slots in use stay
            // about as many as the instances that ever ran at once.
            .max_unused_warm_slots(0);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .wasm_component_model(true)
            .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("ferry-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| WasmError::Engine(format!("epoch ticker: {e}")))?;
        let mut linker = Linker::new(&engine);
        super::caps::add_to_linker(&mut linker).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        std::fs::create_dir_all(cache_dir).map_err(|e| WasmError::Cache {
            path: cache_dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(WasmRuntime {
            engine,
            linker: Arc::new(linker),
            cache_dir: cache_dir.to_path_buf(),
        })
    }

    /// Where the compiled component of sha256 `sha` is cached for this engine configuration.
    fn cache_path(&self, sha: &str) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        self.cache_dir
            .join(format!("{sha}-{:016x}.cwasm", hasher.finish()))
    }

    /// The component of sha256 `sha` mapped from the compile cache, if it is there (a file
    /// map: milliseconds). Blocking: call it from a blocking thread.
    pub fn cached(&self, sha: &str) -> Option<Component> {
        let cached = self.cache_path(sha);
        if !cached.exists() {
            return None;
        }
        // SAFETY: the file was written by `serialize` of this engine configuration (the name
        // carries its compatibility hash) and is never modified in place.
        match unsafe { Component::deserialize_file(&self.engine, &cached) } {
            Ok(component) => {
                crate::metrics::worker::compile_cache(true);
                Some(component)
            }
            Err(e) => {
                tracing::warn!(path = %cached.display(), "ignoring bad cache entry: {e:#}");
                None
            }
        }
    }

    /// Compiles `wasm` (sha256 `sha`), or loads it from the cache. Blocking: call it from a
    /// blocking thread.
    pub fn compile(&self, wasm: &[u8], sha: &str) -> Result<Component, WasmError> {
        if let Some(component) = self.cached(sha) {
            return Ok(component);
        }
        let cached = self.cache_path(sha);
        crate::metrics::worker::compile_cache(false);
        let component =
            Component::new(&self.engine, wasm).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        let Ok(bytes) = component.serialize() else {
            return Ok(component);
        };
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &bytes).is_err() || std::fs::rename(&tmp, &cached).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return Ok(component);
        }
        // A freshly compiled component holds its machine code (2-3 MiB per connector) in
        // anonymous memory for as long as it lives; the same component mapped from the cache
        // file costs only the pages a task touches, and those the kernel can drop and reread.
        // So the compiled copy is dropped for the mapped one (issue 13: idle worker < 64 MiB).
        drop((component, bytes));
        // SAFETY: as above; the file was just written by this engine's `serialize`.
        unsafe { Component::deserialize_file(&self.engine, &cached) }
            .map_err(|e| WasmError::Compile(format!("reloading {}: {e:#}", cached.display())))
    }
}
