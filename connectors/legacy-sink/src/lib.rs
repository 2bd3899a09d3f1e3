//! `legacy-sink`: a sink connector built against the frozen `ferry:connector@0.1.0` world,
//! straight from the WIT (no SDK: the SDK follows the current version). It proves the host
//! still loads and runs 0.1.0 sinks. Each record's value is appended, one per line, to
//! `<file.dir>/legacy-<task>.txt`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "ferry:connector/sink-connector@0.1.0",
    generate_all,
});

use std::io::Write;

use exports::ferry::connector0_1_0::sink::{Guest, GuestSinkTask, SinkTask};
use ferry::connector0_1_0::types::{Config, ConfigKey, ConnectorInfo, Error, RecordBatch};

struct Legacy;

fn get<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl Guest for Legacy {
    type SinkTask = LegacySinkTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "legacy-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![ConfigKey {
                name: "file.dir".into(),
                required: true,
                default_value: None,
                doc: "where to write".into(),
            }],
        }
    }

    fn validate(config: Config) -> Result<(), Error> {
        get(&config, "file.dir")
            .map(|_| ())
            .ok_or_else(|| Error::InvalidConfig("file.dir: required".into()))
    }

    fn task_configs(config: Config, max_tasks: u32) -> Result<Vec<Config>, Error> {
        Ok((0..max_tasks)
            .map(|t| {
                let mut c = config.clone();
                c.push(("task.index".into(), t.to_string()));
                c
            })
            .collect())
    }
}

struct LegacySinkTask(std::cell::RefCell<std::fs::File>);

impl GuestSinkTask for LegacySinkTask {
    fn open(config: Config) -> Result<SinkTask, Error> {
        let dir = get(&config, "file.dir").unwrap_or(".");
        let task = get(&config, "task.index").unwrap_or("0");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{dir}/legacy-{task}.txt"))
            .map_err(|e| Error::Fatal(format!("open: {e}")))?;
        Ok(SinkTask::new(LegacySinkTask(std::cell::RefCell::new(file))))
    }

    fn put(&self, batches: Vec<RecordBatch>) -> Result<(), Error> {
        let mut file = self.0.borrow_mut();
        for m in batches.iter().flat_map(|b| &b.messages) {
            file.write_all(&m.value)
                .and_then(|_| file.write_all(b"\n"))
                .map_err(|e| Error::Retriable(format!("write: {e}")))?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        self.0
            .borrow_mut()
            .sync_data()
            .map_err(|e| Error::Retriable(format!("sync: {e}")))
    }
}

export!(Legacy);
