//! `datagen`: a source connector that generates numbered records, for tests and demos.
//!
//! Record `n` has key `k<n>` and a value that starts with the decimal `n` and a space, padded
//! with `x` to `datagen.size` bytes. With several tasks, task `i` of `c` generates the `n` with
//! `n % c == i`, on partition `i`. Its position is `n`, so a restarted task continues after the
//! last committed record.

use ferry_sdk::{
    Config, ConnectorInfo, Error, Message, Position, RecordBatch, SourceBatch, SourceConnector,
    SourceTask, config_key, get, get_parsed, source_batch,
};

struct Datagen;

impl SourceConnector for Datagen {
    type Task = DatagenTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "datagen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec!["DatagenSourceConnector".into()],
            config_keys: vec![
                config_key("datagen.topic", true, None, "RocketMQ topic to write to"),
                config_key(
                    "datagen.count",
                    false,
                    Some("0"),
                    "records to generate; 0 = endless",
                ),
                config_key("datagen.size", false, Some("100"), "value size in bytes"),
                config_key(
                    "datagen.rate",
                    false,
                    None,
                    "records per second (all tasks); unset = as fast as possible",
                ),
                config_key(
                    "datagen.batch",
                    false,
                    Some("256"),
                    "most records returned by one poll()",
                ),
            ],
        }
    }

    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        ferry_sdk::check_required(&Self::describe(), config)?;
        DatagenTask::settings(config).map(|_| ())
    }

    /// Tasks split the numbers by `task.count`, so a count change changes every task config.
    fn task_configs(config: &[(String, String)], max_tasks: u32) -> Result<Vec<Config>, Error> {
        Ok(ferry_sdk::split_evenly(config, max_tasks))
    }
}

struct Settings {
    topic: String,
    count: u64,
    size: usize,
    rate: Option<f64>,
    batch: u64,
    index: u64,
    tasks: u64,
}

struct DatagenTask {
    settings: Settings,
    /// The next record number this task generates.
    next: u64,
    /// Wall-clock start and records generated since, for rate limiting.
    started_ms: i64,
    generated: u64,
}

impl DatagenTask {
    fn settings(config: &[(String, String)]) -> Result<Settings, Error> {
        let topic = get(config, "datagen.topic")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::InvalidConfig("datagen.topic: required".into()))?
            .to_string();
        let rate: Option<f64> = match get(config, "datagen.rate") {
            Some(_) => Some(get_parsed(config, "datagen.rate", None)?),
            None => None,
        };
        if rate.is_some_and(|r| r <= 0.0) {
            return Err(Error::InvalidConfig(
                "datagen.rate: must be positive".into(),
            ));
        }
        let tasks: u64 = get_parsed(config, "task.count", Some(1))?;
        Ok(Settings {
            topic,
            count: get_parsed(config, "datagen.count", Some(0))?,
            size: get_parsed(config, "datagen.size", Some(100))?,
            rate: rate.map(|r| r / tasks.max(1) as f64),
            batch: get_parsed::<u64>(config, "datagen.batch", Some(256))?.max(1),
            index: get_parsed(config, "task.index", Some(0))?,
            tasks: tasks.max(1),
        })
    }

    fn value(&self, n: u64) -> Vec<u8> {
        let mut value = format!("{n} ").into_bytes();
        if value.len() < self.settings.size {
            value.resize(self.settings.size, b'x');
        }
        value
    }
}

impl SourceTask for DatagenTask {
    fn open(config: Config, committed: Vec<Position>) -> Result<Self, Error> {
        let settings = Self::settings(&config)?;
        let partition = format!("{}/{}", settings.topic, settings.index);
        let next = committed
            .iter()
            .filter(|p| p.partition == partition)
            .filter_map(|p| p.offset.parse::<u64>().ok())
            .max()
            .map(|last| last + settings.tasks)
            .unwrap_or(settings.index);
        Ok(DatagenTask {
            settings,
            next,
            started_ms: ferry_sdk::now_ms(),
            generated: 0,
        })
    }

    fn poll(&mut self) -> Result<Vec<SourceBatch>, Error> {
        let mut budget = self.settings.batch;
        if let Some(rate) = self.settings.rate {
            let elapsed = (ferry_sdk::now_ms() - self.started_ms).max(0) as f64 / 1000.0;
            let allowed = (elapsed * rate) as u64 + 1;
            budget = budget.min(allowed.saturating_sub(self.generated));
        }
        let now = ferry_sdk::now_ms();
        let mut messages = Vec::new();
        while (messages.len() as u64) < budget {
            let n = self.next;
            if self.settings.count != 0 && n >= self.settings.count {
                break;
            }
            messages.push(Message {
                offset: n as i64,
                key: Some(format!("k{n}").into_bytes()),
                value: self.value(n),
                headers: Vec::new(),
                timestamp_ms: now,
            });
            self.next += self.settings.tasks;
        }
        self.generated += messages.len() as u64;
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // One source partition per task (its share of the numbers); the offset is the last
        // number it generated, where a restarted task resumes.
        let last = messages.last().map_or(0, |m| m.offset);
        Ok(vec![source_batch(
            format!("{}/{}", self.settings.topic, self.settings.index),
            last,
            RecordBatch {
                topic: self.settings.topic.clone(),
                partition: self.settings.index as i32,
                messages,
            },
        )])
    }
}

ferry_sdk::export_source!(Datagen);
