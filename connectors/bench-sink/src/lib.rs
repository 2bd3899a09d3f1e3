//! `bench-sink`: a sink that only counts what it receives, to measure the WebAssembly boundary.

use ferry_sdk::{
    Config, ConnectorInfo, Error, PutError, RecordBatch, SinkConnector, SinkTask, config_key,
};

struct BenchSink;

impl SinkConnector for BenchSink {
    type Task = CountingTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "bench-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![config_key(
                "rocketmq.topics",
                true,
                None,
                "RocketMQ topics to read (comma list)",
            )],
        }
    }
}

struct CountingTask {
    records: u64,
    bytes: u64,
}

impl SinkTask for CountingTask {
    fn open(_config: Config) -> Result<Self, Error> {
        Ok(CountingTask {
            records: 0,
            bytes: 0,
        })
    }

    fn put(&mut self, batches: Vec<RecordBatch>) -> Result<(), PutError> {
        for batch in &batches {
            for m in &batch.messages {
                self.records += 1;
                self.bytes += m.value.len() as u64 + m.key.as_ref().map_or(0, |k| k.len() as u64);
            }
        }
        std::hint::black_box((self.records, self.bytes));
        Ok(())
    }
}

ferry_sdk::export_sink!(BenchSink);
