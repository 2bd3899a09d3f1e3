//! Kafka helpers for the tests: produce records and read a topic back, with rdkafka against the
//! loopback Tansu broker started by `just test`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// The Kafka bootstrap address (`FERRY_KAFKA`, default 127.0.0.1:9092).
pub fn bootstrap() -> String {
    std::env::var("FERRY_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// One record read back from Kafka.
#[derive(Clone, Debug)]
pub struct Record {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Timestamp (ms).
    pub timestamp: Option<i64>,
}

/// A record to produce.
pub struct Outgoing {
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Timestamp (ms).
    pub timestamp: i64,
}

/// Creates `topic` with `partitions` partitions (Tansu cannot add partitions later).
pub fn create_topic(topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let rt = tokio_runtime();
    let result = rt.block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ));
    result.unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Produces every record to `topic` and waits until all are acknowledged.
pub fn produce(topic: &str, records: impl IntoIterator<Item = Outgoing>) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record = BaseRecord::to(topic)
            .key(&r.key)
            .payload(&r.value)
            .headers(headers)
            .timestamp(r.timestamp);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("every record acknowledged by Kafka");
}

/// Reads `topic` from offset 0 of every partition until `done(records)` or `timeout`.
pub fn read_until(topic: &str, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", crate::unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut assigned: HashMap<i32, ()> = HashMap::new();
    let mut records = Vec::new();
    while Instant::now() < deadline && !done(&records) {
        // Partitions appear once the topic exists; assign new ones from offset 0.
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && let Some(t) = md.topics().first()
        {
            let fresh: Vec<i32> = t
                .partitions()
                .iter()
                .map(|p| p.id())
                .filter(|p| !assigned.contains_key(p))
                .collect();
            if !fresh.is_empty() {
                for p in fresh {
                    assigned.insert(p, ());
                }
                let mut tpl = TopicPartitionList::new();
                for p in assigned.keys() {
                    let current = records
                        .iter()
                        .filter(|r: &&Record| r.partition == *p)
                        .map(|r| r.offset + 1)
                        .max()
                        .unwrap_or(0);
                    tpl.add_partition_offset(topic, *p, Offset::Offset(current))
                        .unwrap();
                }
                consumer.assign(&tpl).unwrap();
            }
        }
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => records.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp: m.timestamp().to_millis(),
                }),
                Some(Err(_)) | None => {}
            }
        }
    }
    records
}
