//! `file-sink`: a sink connector that appends every record as one JSON line to a file.
//!
//! Config `rocketmq.topics` (comma list; read by the host) and `file.dir`, the one directory the
//! host preopens for this task. Task `i` writes `<file.dir>/records-<i>.jsonl`, or `file.name`
//! when set. `put()` returns after the data is written and synced to the file; with
//! `file.buffered=true` it only appends to memory and `flush()` writes and syncs (one sync for
//! many batches: the host calls `flush()` before it commits the consumed offsets).
//!
//! Lines stay whole when two writers append to the same file: while a task moves between
//! workers its old and new owner both run for a moment, and both append to `records-<i>.jsonl`.
//! Each host write is one atomic append of whole lines (up to the stream's permit, 64 KiB on
//! wasmtime; only a line longer than that is split). Rust's `std::fs` would go through the
//! preview-1 adapter, which cuts every write into 4 KiB appends: another writer's appends then
//! landed inside lines and tore them (a record "lost" from the file, found in a cluster test).
//! A file that ends in part of a line (its writer was killed mid-write) gets a line end before
//! anything else is appended.

use base64::Engine as _;
use ferry_sdk::{
    Config, ConnectorInfo, Error, PutError, RecordBatch, SinkConnector, SinkTask, config_key, get,
};
use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};
use wasip2::io::streams::{OutputStream, StreamError};

struct FileSink;

impl SinkConnector for FileSink {
    type Task = FileSinkTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "file-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec!["FileSinkConnector".into()],
            config_keys: vec![
                config_key(
                    "rocketmq.topics",
                    true,
                    None,
                    "RocketMQ topics to read (comma list)",
                ),
                config_key(
                    "file.dir",
                    true,
                    None,
                    "directory to write into (granted to this task only)",
                ),
                config_key(
                    "file.buffered",
                    false,
                    Some("false"),
                    "true: put() buffers in memory and flush() writes and syncs the file",
                ),
            ],
        }
    }
}

struct FileSinkTask {
    file: Appender,
    /// Lines not yet written (with `file.buffered`, everything since the last `flush()`).
    buffer: Vec<u8>,
    /// `file.buffered`: write on `flush()` instead of on every `put()`.
    buffered: bool,
}

/// Writes `bytes` as a JSON string (escaped) into `out`.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Writes `"name":"text"` or, when `bytes` is not UTF-8, `"name_b64":"base64"`.
fn json_bytes(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            json_str(out, name);
            out.push(b':');
            json_str(out, text);
        }
        Err(_) => {
            json_str(out, &format!("{name}_b64"));
            out.push(b':');
            json_str(
                out,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
    }
}

impl SinkTask for FileSinkTask {
    fn open(config: Config) -> Result<Self, Error> {
        let dir = get(&config, "file.dir")
            .ok_or_else(|| Error::InvalidConfig("file.dir: required".into()))?;
        let index = get(&config, "task.index").unwrap_or("0");
        let name = get(&config, "file.name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("records-{index}.jsonl"));
        let file = Appender::open(dir, &name).map_err(|e| {
            Error::Fatal(format!(
                "file.dir: cannot open {}/{name}: {e}",
                dir.trim_end_matches('/')
            ))
        })?;
        let buffered = match get(&config, "file.buffered").unwrap_or("false") {
            "true" => true,
            "false" => false,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "file.buffered: `{other}` is not true or false"
                )));
            }
        };
        Ok(FileSinkTask {
            file,
            buffer: Vec::with_capacity(1 << 20),
            buffered,
        })
    }

    fn put(&mut self, batches: Vec<RecordBatch>) -> Result<(), PutError> {
        let out = &mut self.buffer;
        for batch in &batches {
            for m in &batch.messages {
                out.extend_from_slice(b"{\"topic\":");
                json_str(out, &batch.topic);
                out.extend_from_slice(
                    format!(",\"queue\":{},\"offset\":{},", batch.partition, m.offset).as_bytes(),
                );
                match &m.key {
                    Some(k) => json_bytes(out, "key", k),
                    None => out.extend_from_slice(b"\"key\":null"),
                }
                out.push(b',');
                json_bytes(out, "value", &m.value);
                out.extend_from_slice(b",\"headers\":{");
                for (i, (name, value)) in m.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_str(out, name);
                    out.push(b':');
                    json_str(out, &String::from_utf8_lossy(value));
                }
                out.extend_from_slice(
                    format!("}},\"timestamp\":{}}}\n", m.timestamp_ms).as_bytes(),
                );
            }
        }
        if self.buffered {
            return Ok(());
        }
        Ok(self.write_out()?)
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.write_out()
    }
}

impl FileSinkTask {
    /// Writes and syncs the buffered lines. On failure they stay buffered: the host retries
    /// (a partial write may then repeat lines: at-least-once).
    fn write_out(&mut self) -> Result<(), Error> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file
            .append(&self.buffer)
            .map_err(|e| Error::Retriable(format!("write failed: {e}")))?;
        self.buffer.clear();
        Ok(())
    }
}

/// The output file, appended to through `wasi:filesystem` itself (see the module doc: whole
/// lines per host write).
struct Appender {
    file: Descriptor,
    stream: OutputStream,
}

impl Appender {
    /// Opens (creating) `name` in `dir`, the directory the host granted this task: its
    /// preopen is named `dir` (canonical); a task is granted one directory, so a `dir` spelled
    /// differently (a trailing `/`, a symlink) still finds it.
    fn open(dir: &str, name: &str) -> Result<Self, String> {
        let mut granted = get_directories();
        let wanted = dir.trim_end_matches('/');
        let at = granted
            .iter()
            .position(|(_, path)| path.trim_end_matches('/') == wanted)
            .or((granted.len() == 1).then_some(0))
            .ok_or_else(|| "the directory is not granted to this task".to_string())?;
        let (root, _) = granted.swap_remove(at);
        let file = root
            .open_at(
                PathFlags::empty(),
                name,
                OpenFlags::CREATE,
                DescriptorFlags::READ | DescriptorFlags::WRITE,
            )
            .map_err(|e| e.to_string())?;
        let stream = file.append_via_stream().map_err(|e| e.to_string())?;
        let appender = Appender { file, stream };
        appender.end_a_cut_line()?;
        Ok(appender)
    }

    /// A writer killed in the middle of a write leaves the file ending in part of a line (the
    /// kernel stops a write at a page boundary on SIGKILL; its records are delivered again,
    /// as they were never acknowledged). The next line must not be glued to that part, or
    /// both become one line no reader can parse: end it first.
    fn end_a_cut_line(&self) -> Result<(), String> {
        let size = self.file.stat().map_err(|e| e.to_string())?.size;
        if size == 0 {
            return Ok(());
        }
        let (last, _) = self.file.read(1, size - 1).map_err(|e| e.to_string())?;
        if last.as_slice() == b"\n" {
            return Ok(());
        }
        self.append(b"\n")
    }

    /// Appends `lines` (whole lines, each ending in `\n`) and syncs them to disk. Every host
    /// write ends at a line end unless one line exceeds the stream's permit.
    fn append(&self, mut lines: &[u8]) -> Result<(), String> {
        while !lines.is_empty() {
            let permit = loop {
                match self.stream.check_write().map_err(stream_error)? {
                    0 => self.stream.subscribe().block(),
                    n => break usize::try_from(n).unwrap_or(usize::MAX),
                }
            };
            let take = write_len(lines, permit);
            self.stream.write(&lines[..take]).map_err(stream_error)?;
            lines = &lines[take..];
        }
        self.stream.blocking_flush().map_err(stream_error)?;
        self.file.sync_data().map_err(|e| e.to_string())
    }
}

/// How much of `lines` one write of at most `permit` bytes takes: all of it if it fits, else
/// up to the last line end that fits, else (one line longer than `permit`) `permit` bytes.
fn write_len(lines: &[u8], permit: usize) -> usize {
    if lines.len() <= permit {
        return lines.len();
    }
    match lines[..permit].iter().rposition(|b| *b == b'\n') {
        Some(end) => end + 1,
        None => permit,
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
        StreamError::Closed => "the file's stream was closed".into(),
    }
}

ferry_sdk::export_sink!(FileSink);

#[cfg(test)]
mod tests {
    use super::write_len;

    #[test]
    fn a_write_ends_at_a_line_end_unless_one_line_is_longer_than_the_permit() {
        let lines = b"aaaa\nbbbb\ncccc\n";
        assert_eq!(write_len(lines, 64), lines.len());
        assert_eq!(write_len(lines, 12), 10, "two whole lines, not 12 bytes");
        assert_eq!(write_len(lines, 5), 5);
        assert_eq!(
            write_len(b"aaaaaaaa\nb\n", 4),
            4,
            "a line longer than the permit"
        );
    }
}
