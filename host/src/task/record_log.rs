//! The seed's `logMsgDetail`: when on (cluster-wide, at runtime, off by default), one log line
//! per record moved, naming direction, topic, partition or queue, offset, key, value size and
//! the first bytes of the value. A relaxed atomic load per batch when off.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::wasm::bindings::RecordBatch;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// How much of a key or value a line shows.
const HEAD_BYTES: usize = 32;

/// Turns per-record logging on or off in this process.
pub fn set(enabled: bool) {
    if ENABLED.swap(enabled, Ordering::Relaxed) != enabled {
        tracing::info!(enabled, "per-record logging (logMsgDetail) switched");
    }
}

/// Whether per-record logging is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Logs every record of `batches` moved in `direction` (the task's span adds connector and task).
pub fn log_batches(direction: &'static str, batches: &[RecordBatch]) {
    if !enabled() {
        return;
    }
    for batch in batches {
        for m in &batch.messages {
            tracing::info!(
                target: "ferry::records",
                direction,
                topic = %batch.topic,
                partition = batch.partition,
                offset = m.offset,
                key = %m.key.as_deref().map(head).unwrap_or_default(),
                value_bytes = m.value.len(),
                value_head = %head(&m.value),
                "record moved"
            );
        }
    }
}

/// The first bytes, printable (other bytes escaped).
fn head(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(HEAD_BYTES)];
    let mut text: String = shown.escape_ascii().to_string();
    if bytes.len() > HEAD_BYTES {
        text.push_str("...");
    }
    text
}
