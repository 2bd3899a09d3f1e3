//! `kafka-sink`: RocketMQ -> Kafka. The host consumes `rocketmq.topics` in group
//! `connector-consumer-group-<connector>` and commits RocketMQ offsets after `put()` returned,
//! which happens only once Kafka acknowledged every record (idempotent producer).
//!
//! A record that kafka-source copied from Kafka topic `K` carries `ferry.origin` = `kafka:K`; it
//! is not copied back into `K` (no loops when a topic is synced both ways). Every copied record
//! gets `ferry.origin` = `rocketmq:<its RocketMQ topic>`.

use ferry_sdk::kafka::Producer;
use ferry_sdk::{
    Config, ConnectorInfo, Error, RecordBatch, SinkConnector, SinkTask, TopicMapper, config_key,
};

struct KafkaSink;

impl SinkConnector for KafkaSink {
    type Task = KafkaSinkTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "kafka-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![
                "org.apache.rocketmq.connect.rocketmq.connector.RocketMQSinkConnector".into(),
                "KafkaSinkConnector".into(),
            ],
            config_keys: vec![
                config_key(
                    "rocketmq.topics",
                    true,
                    None,
                    "RocketMQ topics to copy (comma list)",
                ),
                config_key(
                    "kafka.bootstrap.server",
                    true,
                    None,
                    "Kafka bootstrap servers",
                ),
                config_key("topic.rename", false, None, "from:to,... Kafka topic names"),
                config_key("topic.prefix", false, None, "prefix for Kafka topic names"),
            ],
        }
    }

    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        ferry_sdk::check_required(&Self::describe(), config)?;
        TopicMapper::from_config(config).map(|_| ())
    }
}

struct KafkaSinkTask {
    producer: Producer,
    mapper: TopicMapper,
}

impl SinkTask for KafkaSinkTask {
    fn open(config: Config) -> Result<Self, Error> {
        Ok(KafkaSinkTask {
            producer: Producer::open(&[]).map_err(Error::InvalidConfig)?,
            mapper: TopicMapper::from_config(&config)?,
        })
    }

    fn put(&mut self, batches: Vec<RecordBatch>) -> Result<(), Error> {
        let mut out = Vec::with_capacity(batches.len());
        for mut batch in batches {
            let target = self.mapper.map(&batch.topic);
            if !ferry_sdk::mark_origin(&mut batch, "rocketmq", "kafka", &target) {
                continue;
            }
            batch.topic = target;
            out.push(batch);
        }
        if out.is_empty() {
            return Ok(());
        }
        // Kafka unreachable or refusing: the host keeps the batch and retries with backoff.
        self.producer.send(&out).map_err(Error::Retriable)
    }
}

ferry_sdk::export_sink!(KafkaSink);
