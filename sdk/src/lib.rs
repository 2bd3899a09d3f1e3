//! Ferry guest SDK: write a Ferry connector in plain Rust.
//!
//! A connector crate implements [`SourceConnector`] + [`SourceTask`] (or [`SinkConnector`] +
//! [`SinkTask`]) and calls [`export_source!`] (or [`export_sink!`]) once. Build it with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` file is the plugin.
//!
//! The WIT contract lives in `wit/connector.wit` at the repository root (`ferry:connector@0.2.0`,
//! which imports its unchanged interfaces from the frozen 0.1.0 in `wit/deps/`); this crate only
//! adapts the generated bindings to ordinary traits (`&mut self`, owned values).
#![deny(missing_docs)]

use std::cell::RefCell;

/// Bindings for the `source-connector` world (generated; used by [`export_source!`]).
#[doc(hidden)]
pub mod source_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "source-connector",
        // The interfaces 0.2.0 imports from ferry:connector@0.1.0 are generated here too.
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_source_world",
        default_bindings_module: "ferry_sdk::source_bindings",
    });
}

/// Bindings for the `sink-connector` world, sharing the types of the source world.
#[doc(hidden)]
pub mod sink_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sink-connector",
        pub_export_macro: true,
        export_macro_name: "export_sink_world",
        default_bindings_module: "ferry_sdk::sink_bindings",
        with: {
            "ferry:connector/types@0.1.0": crate::source_bindings::ferry::connector0_1_0::types,
            "ferry:connector/log@0.1.0": crate::source_bindings::ferry::connector0_1_0::log,
            "ferry:connector/clock@0.1.0": crate::source_bindings::ferry::connector0_1_0::clock,
            "ferry:connector/kafka@0.1.0": crate::source_bindings::ferry::connector0_1_0::kafka,
            "ferry:connector/types@0.2.0": crate::source_bindings::ferry::connector0_2_0::types,
        },
    });
}

pub use source_bindings::ferry::connector0_1_0::types::{Error, Message, Position, RecordBatch};
/// Records read from one source partition, with the offset to resume after them.
pub use source_bindings::ferry::connector0_2_0::types::SourceBatch;
/// What `describe()` returns, and one config key of it (0.2.0: keys can be `secret`).
pub use source_bindings::ferry::connector0_2_0::types::{ConfigKey, ConnectorInfo};
/// Why `put` failed; `PutError::Rejected` names one record the sink can never deliver (the
/// host dead-letters it with `errors.tolerance=all`). An [`Error`] converts into it, so `?`
/// works in `put`.
pub use source_bindings::ferry::connector0_2_0::types::{PutError, RejectedRecord};

/// Kafka clients run by the host: `Consumer::open(group, topics, properties)`,
/// `Producer::open(properties)`. The connector's config must name `kafka.bootstrap.server`.
pub mod kafka {
    /// Sinks only (`kafka-pipeline`, new in 0.2.0): `queue(&producer, &batches)` hands records
    /// to the producer without waiting for their delivery reports, `flush(&producer)` waits for
    /// all of them. A sink whose `put` queues and whose `flush` flushes lets the host send the
    /// next batch while Kafka acknowledges the last one.
    pub use crate::sink_bindings::ferry::connector0_2_0::kafka_pipeline::{flush, queue};
    pub use crate::source_bindings::ferry::connector0_1_0::kafka::{
        Consumer, PartitionOffset, Producer,
    };
}

impl From<Error> for PutError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidConfig(m) => PutError::InvalidConfig(m),
            Error::Retriable(m) => PutError::Retriable(m),
            Error::Fatal(m) => PutError::Fatal(m),
        }
    }
}

impl PutError {
    /// Record `index` of batch `batch` can never be delivered: everything before it (in batch
    /// order) was delivered, nothing after it.
    pub fn rejected(batch: usize, index: usize, reason: impl Into<String>) -> Self {
        PutError::Rejected(RejectedRecord {
            batch: batch as u32,
            index: index as u32,
            reason: reason.into(),
        })
    }
}

/// A connector or task configuration, as string pairs.
pub type Config = Vec<(String, String)>;

/// Host logging, tagged by the host with the connector and task ids.
pub mod log {
    use crate::source_bindings::ferry::connector0_1_0::log::{Level, log};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Logs at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Milliseconds since the Unix epoch, from the host's clock.
pub fn now_ms() -> i64 {
    source_bindings::ferry::connector0_1_0::clock::now_ms()
}

/// Looks up `key` in a config.
pub fn get<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Looks up `key` and parses it, with a clear `invalid-config` error naming the key.
pub fn get_parsed<T: std::str::FromStr>(
    config: &[(String, String)],
    key: &str,
    default: Option<T>,
) -> Result<T, Error> {
    match get(config, key) {
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| Error::InvalidConfig(format!("{key}: cannot parse {raw:?}"))),
        None => default.ok_or_else(|| Error::InvalidConfig(format!("{key}: required"))),
    }
}

/// Describes one config key, for [`ConnectorInfo::config_keys`].
pub fn config_key(name: &str, required: bool, default: Option<&str>, doc: &str) -> ConfigKey {
    ConfigKey {
        name: name.into(),
        required,
        default_value: default.map(Into::into),
        doc: doc.into(),
        secret: false,
    }
}

/// Describes a secret config key (a password, an API key): the host shows its value as
/// `[hidden]` in every answer and log, and operators may give it as `${env:NAME}` or
/// `${file:/path:key}`, resolved only on the worker that runs the task.
pub fn secret_config_key(name: &str, required: bool, doc: &str) -> ConfigKey {
    ConfigKey {
        secret: true,
        ..config_key(name, required, None, doc)
    }
}

/// Checks that every required key of `info` is present.
pub fn check_required(info: &ConnectorInfo, config: &[(String, String)]) -> Result<(), Error> {
    for key in info.config_keys.iter().filter(|k| k.required) {
        if get(config, &key.name).is_none() {
            return Err(Error::InvalidConfig(format!("{}: required", key.name)));
        }
    }
    Ok(())
}

/// A source connector: describes itself and splits its config into task configs.
pub trait SourceConnector {
    /// The task type this connector runs.
    type Task: SourceTask;
    /// Name, version, aliases and config schema.
    fn describe() -> ConnectorInfo;
    /// Checks a config. The default checks the required keys of [`Self::describe`].
    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        check_required(&Self::describe(), config)
    }
    /// Splits the config over at most `max_tasks` tasks. The default gives each task the
    /// connector config plus `task.index` ([`one_per_task`]); a connector whose tasks divide
    /// the work by the task count uses [`split_evenly`]. The host restarts a running task only
    /// when its task config changed, so leaving the count out means a `tasks.num` change starts
    /// or stops only the tasks added or removed.
    fn task_configs(config: &[(String, String)], max_tasks: u32) -> Result<Vec<Config>, Error> {
        Ok(one_per_task(config, max_tasks))
    }
}

/// One running source task.
pub trait SourceTask: Sized + 'static {
    /// Opens the task at the positions the host stored for the connector: one per source
    /// partition (`partition`), with the `source_offset` of its last acknowledged batch.
    fn open(config: Config, committed: Vec<Position>) -> Result<Self, Error>;
    /// Returns the next batches, each naming its source partition and the offset to resume
    /// after it; an empty list when idle.
    fn poll(&mut self) -> Result<Vec<SourceBatch>, Error>;
    /// Called after RocketMQ acknowledged every record up to `positions` (source partition,
    /// source offset).
    fn commit(&mut self, _positions: Vec<Position>) {}
}

/// A batch from source partition `partition` whose resume point is `offset`.
pub fn source_batch(
    partition: impl Into<String>,
    offset: impl ToString,
    records: RecordBatch,
) -> SourceBatch {
    SourceBatch {
        source_partition: partition.into(),
        source_offset: offset.to_string(),
        records,
    }
}

/// A sink connector: describes itself and splits its config into task configs.
pub trait SinkConnector {
    /// The task type this connector runs.
    type Task: SinkTask;
    /// Name, version, aliases and config schema.
    fn describe() -> ConnectorInfo;
    /// Checks a config. The default checks the required keys of [`Self::describe`].
    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        check_required(&Self::describe(), config)
    }
    /// Splits the config over at most `max_tasks` tasks (see [`SourceConnector::task_configs`]).
    fn task_configs(config: &[(String, String)], max_tasks: u32) -> Result<Vec<Config>, Error> {
        Ok(one_per_task(config, max_tasks))
    }
}

/// One running sink task.
pub trait SinkTask: Sized + 'static {
    /// Opens the task.
    fn open(config: Config) -> Result<Self, Error>;
    /// Delivers batches: returns once the destination acknowledged them, or once they are
    /// buffered if `flush` waits for the acknowledgements (the host calls `flush` before it
    /// commits, and puts everything since the last good `flush` again if one fails). A record
    /// that can never be delivered is answered with [`PutError::rejected`] after the records
    /// before it were delivered.
    fn put(&mut self, batches: Vec<RecordBatch>) -> Result<(), PutError>;
    /// Makes everything `put` so far durable.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// For tasks that divide the work by count: `max_tasks` copies of the config, each with
/// `task.index` and `task.count`.
pub fn split_evenly(config: &[(String, String)], max_tasks: u32) -> Vec<Config> {
    let count = max_tasks.max(1);
    one_per_task(config, count)
        .into_iter()
        .map(|mut task| {
            task.push(("task.count".into(), count.to_string()));
            task
        })
        .collect()
}

/// The default task split: `max_tasks` copies of the config, each with `task.index`.
pub fn one_per_task(config: &[(String, String)], max_tasks: u32) -> Vec<Config> {
    (0..max_tasks.max(1))
        .map(|index| {
            let mut task = config.to_vec();
            task.push(("task.index".into(), index.to_string()));
            task
        })
        .collect()
}

/// Adapts a [`SourceTask`] to the generated resource trait (which takes `&self`).
#[doc(hidden)]
pub struct SourceTaskAdapter<T>(pub RefCell<T>);

/// Adapts a [`SinkTask`] to the generated resource trait (which takes `&self`).
#[doc(hidden)]
pub struct SinkTaskAdapter<T>(pub RefCell<T>);

impl<T: SourceTask> source_bindings::exports::ferry::connector0_2_0::source::GuestSourceTask
    for SourceTaskAdapter<T>
{
    fn open(
        config: Config,
        committed: Vec<Position>,
    ) -> Result<source_bindings::exports::ferry::connector0_2_0::source::SourceTask, Error> {
        let task = T::open(config, committed)?;
        Ok(
            source_bindings::exports::ferry::connector0_2_0::source::SourceTask::new(
                SourceTaskAdapter(RefCell::new(task)),
            ),
        )
    }
    fn poll(&self) -> Result<Vec<SourceBatch>, Error> {
        self.0.borrow_mut().poll()
    }
    fn commit(&self, positions: Vec<Position>) {
        self.0.borrow_mut().commit(positions)
    }
}

impl<T: SinkTask> sink_bindings::exports::ferry::connector0_2_0::sink::GuestSinkTask
    for SinkTaskAdapter<T>
{
    fn open(
        config: Config,
    ) -> Result<sink_bindings::exports::ferry::connector0_2_0::sink::SinkTask, Error> {
        let task = T::open(config)?;
        Ok(
            sink_bindings::exports::ferry::connector0_2_0::sink::SinkTask::new(SinkTaskAdapter(
                RefCell::new(task),
            )),
        )
    }
    fn put(&self, batches: Vec<RecordBatch>) -> Result<(), PutError> {
        self.0.borrow_mut().put(batches)
    }
    fn flush(&self) -> Result<(), Error> {
        self.0.borrow_mut().flush()
    }
}

/// Exports a [`SourceConnector`] as the component's `source` interface.
#[macro_export]
macro_rules! export_source {
    ($connector:ty) => {
        struct __FerrySourceExport;
        impl $crate::source_bindings::exports::ferry::connector0_2_0::source::Guest
            for __FerrySourceExport
        {
            type SourceTask =
                $crate::SourceTaskAdapter<<$connector as $crate::SourceConnector>::Task>;
            fn describe() -> $crate::ConnectorInfo {
                <$connector as $crate::SourceConnector>::describe()
            }
            fn validate(config: $crate::Config) -> Result<(), $crate::Error> {
                <$connector as $crate::SourceConnector>::validate(&config)
            }
            fn task_configs(
                config: $crate::Config,
                max_tasks: u32,
            ) -> Result<Vec<$crate::Config>, $crate::Error> {
                <$connector as $crate::SourceConnector>::task_configs(&config, max_tasks)
            }
        }
        $crate::source_bindings::export_source_world!(__FerrySourceExport);
    };
}

/// Exports a [`SinkConnector`] as the component's `sink` interface.
#[macro_export]
macro_rules! export_sink {
    ($connector:ty) => {
        struct __FerrySinkExport;
        impl $crate::sink_bindings::exports::ferry::connector0_2_0::sink::Guest
            for __FerrySinkExport
        {
            type SinkTask = $crate::SinkTaskAdapter<<$connector as $crate::SinkConnector>::Task>;
            fn describe() -> $crate::ConnectorInfo {
                <$connector as $crate::SinkConnector>::describe()
            }
            fn validate(config: $crate::Config) -> Result<(), $crate::Error> {
                <$connector as $crate::SinkConnector>::validate(&config)
            }
            fn task_configs(
                config: $crate::Config,
                max_tasks: u32,
            ) -> Result<Vec<$crate::Config>, $crate::Error> {
                <$connector as $crate::SinkConnector>::task_configs(&config, max_tasks)
            }
        }
        $crate::sink_bindings::export_sink_world!(__FerrySinkExport);
    };
}

/// Topic renaming shared by the Kafka connectors: `topic.rename` (`from:to,...`) first, else
/// `topic.prefix` + the name.
#[derive(Clone, Debug, Default)]
pub struct TopicMapper {
    renames: Vec<(String, String)>,
    prefix: String,
}

impl TopicMapper {
    /// Reads `topic.rename` and `topic.prefix`.
    pub fn from_config(config: &[(String, String)]) -> Result<Self, Error> {
        let mut renames = Vec::new();
        for pair in get(config, "topic.rename")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match pair.split_once(':') {
                Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                    renames.push((from.trim().to_string(), to.trim().to_string()))
                }
                _ => {
                    return Err(Error::InvalidConfig(format!(
                        "topic.rename: `{pair}` is not from:to"
                    )));
                }
            }
        }
        Ok(TopicMapper {
            renames,
            prefix: get(config, "topic.prefix").unwrap_or("").to_string(),
        })
    }

    /// The destination topic of `topic`.
    pub fn map(&self, topic: &str) -> String {
        match self.renames.iter().find(|(from, _)| from == topic) {
            Some((_, to)) => to.clone(),
            None => format!("{}{topic}", self.prefix),
        }
    }
}

/// The header that marks where a copied record came from, so it is never copied back.
pub const ORIGIN_HEADER: &str = "ferry.origin";

/// Loop prevention for a copy from system `from` (e.g. `kafka`) to system `to`: drops the
/// records of `batch` that were copied out of `to`'s topic `target` (they carry
/// `ferry.origin` = `<to>:<target>`), and marks the others `<from>:<batch topic>`. Returns false
/// when nothing is left to copy.
pub fn mark_origin(batch: &mut RecordBatch, from: &str, to: &str, target: &str) -> bool {
    let echo = format!("{to}:{target}");
    batch.messages.retain(|m| {
        !m.headers
            .iter()
            .any(|(k, v)| k == ORIGIN_HEADER && v == echo.as_bytes())
    });
    let origin = format!("{from}:{}", batch.topic).into_bytes();
    for m in &mut batch.messages {
        m.headers.retain(|(k, _)| k != ORIGIN_HEADER);
        m.headers.push((ORIGIN_HEADER.into(), origin.clone()));
    }
    !batch.messages.is_empty()
}

/// Splits a comma list config value.
pub fn list(config: &[(String, String)], key: &str) -> Vec<String> {
    get(config, key)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}
