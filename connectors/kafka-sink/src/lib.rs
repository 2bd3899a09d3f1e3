//! `kafka-sink`: RocketMQ -> Kafka. The host consumes `rocketmq.topics` in group
//! `connector-consumer-group-<connector>`. `put()` queues the records on an idempotent producer
//! and returns without waiting for Kafka (`kafka-pipeline.queue`); `flush()` waits for every
//! delivery report since the last flush, and the host commits RocketMQ offsets only after a
//! successful `flush()` (a failed one makes the host put those records again).
//!
//! A record that kafka-source copied from Kafka topic `K` carries `ferry.origin` = `kafka:K`; it
//! is not copied back into `K` (no loops when a topic is synced both ways). Every copied record
//! gets `ferry.origin` = `rocketmq:<its RocketMQ topic>`.
//!
//! A record larger than the producer's `message.max.bytes` (`kafka.client.message.max.bytes`,
//! librdkafka's default 1,000,000) can never be sent: `put` delivers the records before it and
//! rejects it (`put-error.rejected`), so the host can dead-letter it instead of retrying forever.

use ferry_sdk::kafka::{self, Producer};
use ferry_sdk::{
    Config, ConnectorInfo, Error, PutError, RecordBatch, SinkConnector, SinkTask, TopicMapper,
    config_key,
};

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;
/// What librdkafka adds to key, value and headers when it checks a record against
/// `message.max.bytes` (record v2 framing, varints at their widest), plus the `ferry.origin`
/// header this sink adds.
const RECORD_OVERHEAD: usize = 64;

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
    /// The producer's `message.max.bytes`.
    max_message_bytes: usize,
}

/// The first record (batch, index, size) Kafka would refuse as too large.
fn first_oversized(batches: &[RecordBatch], limit: usize) -> Option<(usize, usize, usize)> {
    batches.iter().enumerate().find_map(|(b, batch)| {
        batch.messages.iter().enumerate().find_map(|(i, m)| {
            let headers: usize = m.headers.iter().map(|(n, v)| n.len() + v.len() + 10).sum();
            let size = m.key.as_ref().map_or(0, Vec::len)
                + m.value.len()
                + headers
                + RECORD_OVERHEAD
                + batch.topic.len();
            (size > limit).then_some((b, i, size))
        })
    })
}

impl SinkTask for KafkaSinkTask {
    fn open(config: Config) -> Result<Self, Error> {
        Ok(KafkaSinkTask {
            producer: Producer::open(&[]).map_err(Error::InvalidConfig)?,
            mapper: TopicMapper::from_config(&config)?,
            max_message_bytes: ferry_sdk::get_parsed(
                &config,
                "kafka.client.message.max.bytes",
                Some(DEFAULT_MAX_MESSAGE_BYTES),
            )?,
        })
    }

    fn put(&mut self, mut batches: Vec<RecordBatch>) -> Result<(), PutError> {
        // Deliver what comes before a record Kafka would refuse, then reject that record.
        let oversized = first_oversized(&batches, self.max_message_bytes);
        if let Some((b, i, _)) = oversized {
            batches.truncate(b + 1);
            batches[b].messages.truncate(i);
        }
        self.send(batches)?;
        match oversized {
            Some((b, i, size)) => Err(PutError::rejected(
                b,
                i,
                format!(
                    "a record of about {size} bytes is larger than the producer's message.max.bytes ({}); Kafka would refuse it",
                    self.max_message_bytes
                ),
            )),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        // A record Kafka did not take: the host puts everything since the last flush again.
        kafka::flush(&self.producer).map_err(Error::Retriable)
    }
}

impl KafkaSinkTask {
    fn send(&mut self, batches: Vec<RecordBatch>) -> Result<(), Error> {
        let mut out = Vec::with_capacity(batches.len());
        for mut batch in batches.into_iter().filter(|b| !b.messages.is_empty()) {
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
        kafka::queue(&self.producer, &out).map_err(Error::Retriable)
    }
}

ferry_sdk::export_sink!(KafkaSink);
