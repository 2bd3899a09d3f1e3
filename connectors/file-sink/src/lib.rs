//! `file-sink`: a sink connector that appends every record as one JSON line to a file.
//!
//! Config `rocketmq.topics` (comma list; read by the host) and `file.dir`, the one directory the
//! host preopens for this task. Task `i` writes `<file.dir>/records-<i>.jsonl`, or `file.name`
//! when set. `put()` returns after the data is written and synced to the file; with
//! `file.buffered=true` it only appends to memory and `flush()` writes and syncs (one sync for
//! many batches: the host calls `flush()` before it commits the consumed offsets).

use std::fs::{File, OpenOptions};
use std::io::Write;

use base64::Engine as _;
use ferry_sdk::{
    Config, ConnectorInfo, Error, PutError, RecordBatch, SinkConnector, SinkTask, config_key, get,
};

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
    file: File,
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
        let path = format!("{}/{}", dir.trim_end_matches('/'), name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::Fatal(format!("file.dir: cannot open {path}: {e}")))?;
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
            .write_all(&self.buffer)
            .and_then(|_| self.file.flush())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::Retriable(format!("write failed: {e}")))?;
        self.buffer.clear();
        Ok(())
    }
}

ferry_sdk::export_sink!(FileSink);
