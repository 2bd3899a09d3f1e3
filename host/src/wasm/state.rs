//! What one task's `Store` holds: WASI context, resource table, memory limiter, call deadline
//! and the tail of the guest's stderr (to explain a panic).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Which task a store belongs to, for logs and errors.
#[derive(Clone, Debug)]
pub struct TaskIds {
    /// Connector name.
    pub connector: String,
    /// Task index within the connector.
    pub task: u32,
}

/// The data of one task's `Store`.
pub struct TaskState {
    /// Connector and task ids, carried into every log line of the guest.
    pub ids: TaskIds,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// Denies memory growth past the connector's `task.memory.max.bytes` and records it.
    pub(crate) limiter: MemoryLimiter,
    /// When the current guest call runs out of time; checked on every epoch tick.
    pub(crate) deadline: Instant,
    /// The last bytes the guest wrote to stdout/stderr, to name a panic's message.
    pub(crate) output_tail: OutputTail,
    /// Which Kafka servers and properties this task may use.
    pub(crate) kafka: super::caps::kafka::KafkaGrant,
    /// Where the task's Kafka consumer publishes how many partitions it owns.
    pub(crate) assigned: super::caps::kafka::AssignedPartitions,
    /// Outgoing HTTP, limited to the connector's granted origins.
    pub(crate) http: super::caps::http::HttpAccess,
    /// Kafka delivery reports of records the guest queued (`kafka-pipeline`), not collected yet.
    pub(crate) deliveries: super::caps::kafka::Deliveries,
}

impl Drop for TaskState {
    /// A guest that faulted (or a task that stopped) leaves its Kafka clients in the table (and
    /// producers held for uncollected delivery reports);
    /// closing one waits for the broker (leaving a consumer group can take a session timeout),
    /// so the table is dropped on a blocking thread, never on the executor.
    fn drop(&mut self) {
        let held = (
            std::mem::take(&mut self.table),
            std::mem::take(&mut self.deliveries),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(held))),
            Err(_) => drop(held),
        }
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Records denied memory growth so an out-of-memory trap is reported as such.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// The most linear memory one task may have.
    pub max_bytes: usize,
    /// The first growth request that was denied: (current, desired).
    pub denied: Option<(usize, usize)>,
    /// Bytes granted so far, counted in the guest memory metric until the store is dropped.
    pub granted: usize,
}

impl MemoryLimiter {
    /// A limiter for guests of at most `max_bytes` of linear memory.
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            denied: None,
            granted: 0,
        }
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        crate::metrics::worker::guest_memory(-(self.granted as i64));
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.denied.get_or_insert((current, desired));
            return Ok(false);
        }
        let grown = desired.saturating_sub(current);
        self.granted += grown;
        crate::metrics::worker::guest_memory(grown as i64);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The last few KiB of guest output, shared between the output stream and the store.
#[derive(Clone, Default)]
pub struct OutputTail(Arc<Mutex<Vec<u8>>>);

/// How much guest output is kept for error reports.
const TAIL_BYTES: usize = 4096;

impl OutputTail {
    /// The kept output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Forgets the kept output (done before each call, so a report names this call's output).
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap();
        tail.extend_from_slice(bytes);
        if tail.len() > TAIL_BYTES {
            let cut = tail.len() - TAIL_BYTES;
            tail.drain(..cut);
        }
    }
}

/// Guest stdout/stderr: each line goes to the log with the task's ids, and the tail is kept.
pub struct GuestOutput {
    ids: TaskIds,
    stream: &'static str,
    tail: OutputTail,
    line: Vec<u8>,
}

impl GuestOutput {
    /// A writer for one of the guest's output streams.
    pub fn new(ids: TaskIds, stream: &'static str, tail: OutputTail) -> Self {
        GuestOutput {
            ids,
            stream,
            tail,
            line: Vec::new(),
        }
    }

    fn emit_lines(&mut self) {
        while let Some(end) = self.line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            tracing::info!(
                connector = %self.ids.connector,
                task = self.ids.task,
                stream = self.stream,
                "guest: {}",
                super::caps::log::truncate(&text, 8192)
            );
        }
        if self.line.len() > 64 * 1024 {
            self.line.clear();
        }
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.tail.push(buf);
        self.line.extend_from_slice(buf);
        self.emit_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
