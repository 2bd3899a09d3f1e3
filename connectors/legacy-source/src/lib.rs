//! `legacy-source`: a source connector built against the frozen `ferry:connector@0.1.0` world,
//! straight from the WIT (no SDK: the SDK follows the current version). It proves the host still
//! loads and runs 0.1.0 components. Record `n` (0 <= n < `legacy.count`) goes to
//! `legacy.topic` with key `k<n>` and value `<n> legacy`; 0.1.0 positions are derived by the
//! host from the batches (`<topic>/<partition>`, the last offset), and a reopened task resumes
//! after the committed one.

wit_bindgen::generate!({
    path: "../../wit",
    world: "ferry:connector/source-connector@0.1.0",
    generate_all,
});

use exports::ferry::connector0_1_0::source::{Guest, GuestSourceTask, SourceTask};
use ferry::connector0_1_0::types::{
    Config, ConfigKey, ConnectorInfo, Error, Message, Position, RecordBatch,
};

struct Legacy;

fn get<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn key(name: &str, required: bool, doc: &str) -> ConfigKey {
    ConfigKey {
        name: name.into(),
        required,
        default_value: None,
        doc: doc.into(),
    }
}

impl Guest for Legacy {
    type SourceTask = LegacyTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "legacy-source".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![
                key("legacy.topic", true, "RocketMQ topic to write"),
                key("legacy.count", true, "how many records"),
            ],
        }
    }

    fn validate(config: Config) -> Result<(), Error> {
        for k in ["legacy.topic", "legacy.count"] {
            if get(&config, k).is_none() {
                return Err(Error::InvalidConfig(format!("{k}: required")));
            }
        }
        Ok(())
    }

    fn task_configs(config: Config, _max_tasks: u32) -> Result<Vec<Config>, Error> {
        Ok(vec![config])
    }
}

struct LegacyTask {
    topic: String,
    count: i64,
    next: std::cell::Cell<i64>,
}

impl GuestSourceTask for LegacyTask {
    fn open(config: Config, committed: Vec<Position>) -> Result<SourceTask, Error> {
        let topic = get(&config, "legacy.topic")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::InvalidConfig("legacy.topic: required".into()))?
            .to_string();
        let count = get(&config, "legacy.count")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| Error::InvalidConfig("legacy.count: not a number".into()))?;
        let partition = format!("{topic}/0");
        let next = committed
            .iter()
            .filter(|p| p.partition == partition)
            .filter_map(|p| p.offset.parse::<i64>().ok())
            .max()
            .map_or(0, |last| last + 1);
        Ok(SourceTask::new(LegacyTask {
            topic,
            count,
            next: std::cell::Cell::new(next),
        }))
    }

    fn poll(&self) -> Result<Vec<RecordBatch>, Error> {
        let start = self.next.get();
        let end = (start + 100).min(self.count);
        if start >= end {
            return Ok(Vec::new());
        }
        self.next.set(end);
        let messages = (start..end)
            .map(|n| Message {
                offset: n,
                key: Some(format!("k{n}").into_bytes()),
                value: format!("{n} legacy").into_bytes(),
                headers: Vec::new(),
                timestamp_ms: 0,
            })
            .collect();
        Ok(vec![RecordBatch {
            topic: self.topic.clone(),
            partition: 0,
            messages,
        }])
    }

    fn commit(&self, _positions: Vec<Position>) {}
}

export!(Legacy);
