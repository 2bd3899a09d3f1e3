//! The `clock` capability: wall-clock milliseconds.

use crate::wasm::bindings::imports::clock::Host;
use crate::wasm::state::TaskState;

impl Host for TaskState {
    fn now_ms(&mut self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
