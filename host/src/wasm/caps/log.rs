//! The `log` capability: guest log lines go to the host's `tracing`, tagged with the task.

use crate::wasm::bindings::imports::log::{Host, Level};
use crate::wasm::state::TaskState;

/// The longest guest log line kept; longer lines are cut so a guest cannot flood the log.
const MAX_LINE: usize = 8 * 1024;

impl Host for TaskState {
    fn log(&mut self, level: Level, message: String) {
        let message = truncate(&message, MAX_LINE);
        let (connector, task) = (self.ids.connector.as_str(), self.ids.task);
        match level {
            Level::Trace => tracing::trace!(connector, task, "guest: {message}"),
            Level::Debug => tracing::debug!(connector, task, "guest: {message}"),
            Level::Info => tracing::info!(connector, task, "guest: {message}"),
            Level::Warn => tracing::warn!(connector, task, "guest: {message}"),
            Level::Error => tracing::error!(connector, task, "guest: {message}"),
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
