//! `kafka-source`: Kafka -> RocketMQ. Reads `kafka.topics` in the consumer group
//! `connector-consumer-group-<connector>` (so Kafka spreads partitions over the tasks), and
//! commits Kafka offsets only when the host says RocketMQ acknowledged the records.
//!
//! A record that kafka-sink copied from RocketMQ topic `R` carries `ferry.origin` =
//! `rocketmq:R`; it is not copied back into `R` (no loops when a topic is synced both ways).
//! Every copied record gets `ferry.origin` = `kafka:<its Kafka topic>`.

use ferry_sdk::kafka::{Consumer, PartitionOffset};
use ferry_sdk::{
    Config, ConnectorInfo, Error, Position, SourceBatch, SourceConnector, SourceTask, TopicMapper,
    config_key, get, get_parsed, list, source_batch,
};

struct KafkaSource;

impl SourceConnector for KafkaSource {
    type Task = KafkaSourceTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "kafka-source".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![
                "org.apache.rocketmq.connect.kafka.connector.KafkaSourceConnector".into(),
                "KafkaSourceConnector".into(),
            ],
            config_keys: vec![
                config_key(
                    "kafka.topics",
                    true,
                    None,
                    "Kafka topics to copy (comma list)",
                ),
                config_key(
                    "kafka.bootstrap.server",
                    true,
                    None,
                    "Kafka bootstrap servers",
                ),
                config_key(
                    "topic.rename",
                    false,
                    None,
                    "from:to,... RocketMQ topic names",
                ),
                config_key(
                    "topic.prefix",
                    false,
                    None,
                    "prefix for RocketMQ topic names",
                ),
                config_key(
                    "kafka.poll.max.records",
                    false,
                    Some("4096"),
                    "records per poll (the host keeps at most 8 MiB of polled records in flight to RocketMQ)",
                ),
            ],
        }
    }

    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        ferry_sdk::check_required(&Self::describe(), config)?;
        if list(config, "kafka.topics").is_empty() {
            return Err(Error::InvalidConfig("kafka.topics: no topic named".into()));
        }
        TopicMapper::from_config(config).map(|_| ())
    }
}

struct KafkaSourceTask {
    consumer: Consumer,
    mapper: TopicMapper,
    max: u32,
}

impl SourceTask for KafkaSourceTask {
    fn open(config: Config, _committed: Vec<Position>) -> Result<Self, Error> {
        // Kafka's committed offsets are the source of truth; the host's positions are not needed.
        let connector = get(&config, "connector.name").unwrap_or("kafka-source");
        let group = format!("connector-consumer-group-{connector}");
        let topics = list(&config, "kafka.topics");
        let consumer = Consumer::open(&group, &topics, &[]).map_err(Error::InvalidConfig)?;
        Ok(KafkaSourceTask {
            consumer,
            mapper: TopicMapper::from_config(&config)?,
            max: get_parsed(&config, "kafka.poll.max.records", Some(4096))?,
        })
    }

    fn poll(&mut self) -> Result<Vec<SourceBatch>, Error> {
        let batches = self
            .consumer
            .poll(self.max, 100)
            .map_err(Error::Retriable)?;
        let mut out = Vec::with_capacity(batches.len());
        for mut batch in batches {
            // The source partition is the Kafka partition, whatever RocketMQ topic it goes to
            // (two Kafka topics renamed to one keep their own positions); the offset is the
            // next Kafka offset to read, which commit() hands back to Kafka as it is.
            let Some(last) = batch.messages.last().map(|m| m.offset) else {
                continue;
            };
            let source = format!("{}/{}", batch.topic, batch.partition);
            let target = self.mapper.map(&batch.topic);
            if !ferry_sdk::mark_origin(&mut batch, "kafka", "rocketmq", &target) {
                // Nothing to copy (every record is an echo), but the offsets are consumed: the
                // empty batch still moves this partition's position, so they are committed.
                batch.messages.clear();
            }
            batch.topic = target;
            out.push(source_batch(source, last + 1, batch));
        }
        Ok(out)
    }

    fn commit(&mut self, positions: Vec<Position>) {
        let offsets: Vec<PartitionOffset> = positions
            .iter()
            .filter_map(|p| {
                let (topic, partition) = p.partition.rsplit_once('/')?;
                Some(PartitionOffset {
                    topic: topic.to_string(),
                    partition: partition.parse().ok()?,
                    offset: p.offset.parse::<i64>().ok()?,
                })
            })
            .collect();
        if offsets.is_empty() {
            return;
        }
        if let Err(e) = self.consumer.commit(&offsets) {
            // Not fatal: the next commit covers these offsets; a crash before it re-reads them.
            ferry_sdk::log::warn(&format!("kafka commit failed: {e}"));
        }
    }
}

ferry_sdk::export_source!(KafkaSource);
