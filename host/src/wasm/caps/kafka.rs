//! The `kafka` capability: consumers and producers backed by rdkafka in the host. The grant (the
//! bootstrap servers and `kafka.client.*` properties) comes from the connector's own config,
//! never from what the guest sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use wasmtime::component::Resource;

pub use crate::model::{BOOTSTRAP_KEY, CLIENT_PREFIX, KafkaGrant};
use crate::security::kafka_properties;
use crate::wasm::bindings::RecordBatch;
use crate::wasm::bindings::imports::kafka::{Host, HostConsumer, HostProducer, PartitionOffset};
use crate::wasm::state::TaskState;

impl KafkaGrant {
    /// Checks the user's `kafka.client.*` properties with librdkafka itself (a bad property is
    /// named in the error). Creates and drops a client; it does not need the broker.
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap.is_none() && self.properties.is_empty() {
            return Ok(());
        }
        let mut config = ClientConfig::new();
        config.set(
            "bootstrap.servers",
            self.bootstrap.as_deref().unwrap_or("127.0.0.1:9"),
        );
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
            .create::<BaseConsumer>()
            .map(drop)
            .map_err(|e| format!("{CLIENT_PREFIX}*: librdkafka refused the properties: {e}"))
    }

    /// Sets `group`'s committed offsets (topic, partition, next offset to read; `None` = the
    /// partition's earliest offset), as an operator's KIP-875 change. Kafka accepts such a
    /// commit only while the group has no members, so it is done for stopped connectors.
    /// Blocking: run it off the executor.
    pub fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Option<i64>)],
    ) -> Result<(), String> {
        let consumer: BaseConsumer = self
            .client_config(&[("group.id", group), ("enable.auto.commit", "false")], &[])?
            .create()
            .map_err(kafka_err)?;
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in offsets {
            let next = match offset {
                Some(o) => *o,
                None => {
                    consumer
                        .fetch_watermarks(topic, *partition, Duration::from_secs(10))
                        .map_err(kafka_err)?
                        .0
                }
            };
            list.add_partition_offset(topic, *partition, Offset::Offset(next))
                .map_err(kafka_err)?;
        }
        consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .map_err(kafka_err)
    }

    /// Builds a client config: host defaults, then the guest's properties (only those on the
    /// allowlist, see `security::kafka_properties`), then the user's.
    fn client_config(
        &self,
        defaults: &[(&str, &str)],
        guest: &[(String, String)],
    ) -> Result<ClientConfig, String> {
        let bootstrap = self
            .bootstrap
            .as_ref()
            .ok_or_else(|| format!("kafka: the connector config has no `{BOOTSTRAP_KEY}`, so no Kafka access is granted"))?;
        let mut config = ClientConfig::new();
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        let guest = kafka_properties::check(
            &guest.iter().cloned().collect(),
            kafka_properties::Setter::Guest,
            &crate::security::FileRoots::default(),
            "",
        )
        .map_err(|e| format!("kafka: {e}"))?;
        for (k, v) in &guest {
            config.set(k, v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config.set("bootstrap.servers", bootstrap);
        Ok(config)
    }
}

/// How many Kafka partitions a task's consumer owns: unknown (`None`) until the group assigned
/// some, then the count (0 means the task has nothing to read: more tasks than partitions).
/// Shared between the consumer's rebalance callback and the task's status.
/// It also reports the consumer's lag (from librdkafka's statistics) to the task's metrics.
#[derive(Clone, Debug)]
pub struct AssignedPartitions(Arc<AtomicI64>, prometheus_client::metrics::gauge::Gauge);

impl Default for AssignedPartitions {
    fn default() -> Self {
        Self::reporting_lag_to(Default::default())
    }
}

impl AssignedPartitions {
    /// Reports the consumer's lag to `lag`.
    pub fn reporting_lag_to(lag: prometheus_client::metrics::gauge::Gauge) -> Self {
        AssignedPartitions(Arc::new(AtomicI64::new(-1)), lag)
    }

    /// The partitions owned, or `None` before the first assignment and during a rebalance.
    pub fn get(&self) -> Option<u32> {
        u32::try_from(self.0.load(Ordering::Relaxed)).ok()
    }

    pub(crate) fn set(&self, count: Option<usize>) {
        self.0
            .store(count.map_or(-1, |c| c as i64), Ordering::Relaxed);
    }
}

/// A consumer owned by a guest.
pub struct KafkaConsumer {
    inner: Arc<BaseConsumer<AssignFromZero>>,
}

/// A guest's handle on its connector's Kafka producer.
pub struct KafkaProducer {
    shared: Arc<SharedProducer>,
}

/// Delivery reports of records a task queued without waiting (`kafka-pipeline.queue`) and no
/// one has collected yet. A sink task's loop takes them after each `put()` and waits for them
/// off the guest ([`Deliveries::confirm`]), so the next put does not wait for Kafka; the guest's
/// `flush` waits for whatever is left.
#[derive(Default)]
pub struct Deliveries {
    batches: Vec<QueuedBatch>,
    /// The producers that took them: kept open until the reports are in (a replaced producer
    /// closes with its last handle, which would purge what it still holds).
    producers: Vec<HeldProducer>,
}

/// A producer records were queued on, and its generation (to replace it after a failure).
struct HeldProducer {
    shared: Arc<SharedProducer>,
    generation: u64,
    producer: FutureProducer,
}

/// The delivery reports of one batch's records (offset in RocketMQ, report).
struct QueuedBatch {
    topic: String,
    /// Index into [`Deliveries::producers`].
    producer: usize,
    reports: Vec<(i64, DeliveryFuture)>,
}

impl Deliveries {
    /// Whether nothing is waiting for a report.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The index of `producer` (of `generation`) in `producers`, added if new.
    fn holding(
        &mut self,
        shared: &Arc<SharedProducer>,
        generation: u64,
        producer: &FutureProducer,
    ) -> usize {
        let found = self
            .producers
            .iter()
            .position(|p| Arc::ptr_eq(&p.shared, shared) && p.generation == generation);
        found.unwrap_or_else(|| {
            self.producers.push(HeldProducer {
                shared: shared.clone(),
                generation,
                producer: producer.clone(),
            });
            self.producers.len() - 1
        })
    }

    /// Waits for every report. A failure names the first record that failed and replaces the
    /// producer that failed it (the records are sent again, and an idempotent producer can be
    /// fenced or fatal after an outage); everything must then be sent again.
    pub async fn confirm(self) -> Result<(), String> {
        let Deliveries { batches, producers } = self;
        let result = reports(batches).await;
        if let Err((index, e)) = &result
            && let Some(held) = producers.get(*index)
        {
            warn_replacing(&held.producer, e);
            held.shared.replace(held.generation)?;
        }
        // One of them may be the last handle on a replaced producer, and closing one blocks.
        if producers
            .iter()
            .any(|p| p.shared.current().0 != p.generation)
        {
            tokio::task::spawn_blocking(move || drop(producers));
        }
        result.map_err(|(_, e)| e)
    }
}

/// One idempotent producer shared by the tasks of a connector on this worker that open it with
/// the same client config. Four tasks with four producers send four times as many produce
/// requests, each a quarter the size (librdkafka's broker threads used 0.07 of a core with one
/// task, 0.12-0.16 with four: BENCHMARKS.md, "Three alternating rounds"); one producer merges
/// their records into the same requests. Never shared between connectors: one connector's
/// failures must not replace another's producer.
struct SharedProducer {
    /// The producer and its generation: a failed send replaces the producer once, however many
    /// tasks saw the failure.
    current: std::sync::Mutex<(u64, FutureProducer)>,
    /// Kept to replace the producer after a failed send (an idempotent producer whose records
    /// timed out during an outage may never send again).
    config: ClientConfig,
}

/// Which producers can be shared: the connector's name and the whole client config.
type ProducerKey = (String, Vec<(String, String)>);

/// The producers open on this worker. Weak: a producer closes with the last task holding it.
static PRODUCERS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<ProducerKey, std::sync::Weak<SharedProducer>>>,
> = std::sync::LazyLock::new(Default::default);

impl SharedProducer {
    /// The connector's producer for this config: the one already open, or a new one.
    fn open(connector: &str, config: ClientConfig) -> Result<Arc<Self>, String> {
        let key: ProducerKey = (
            connector.to_owned(),
            config
                .config_map()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        let mut open = PRODUCERS.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, p| p.strong_count() > 0);
        if let Some(shared) = open.get(&key).and_then(std::sync::Weak::upgrade) {
            return Ok(shared);
        }
        let producer: FutureProducer = config.create().map_err(kafka_err)?;
        let shared = Arc::new(SharedProducer {
            current: std::sync::Mutex::new((0, producer)),
            config,
        });
        open.insert(key, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// The producer to send with, and its generation (for `replace`).
    fn current(&self) -> (u64, FutureProducer) {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the producer of `generation` with a fresh one; a no-op if another task already
    /// did. The old one is closed off the executor (closing purges its queue and blocks).
    fn replace(&self, generation: u64) -> Result<(), String> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != generation {
            return Ok(());
        }
        let fresh: FutureProducer = self.config.create().map_err(kafka_err)?;
        let old = std::mem::replace(&mut *current, (generation + 1, fresh));
        tokio::task::spawn_blocking(move || drop(old));
        Ok(())
    }
}

/// Starts partitions with no committed offset at offset 0 instead of relying on
/// `auto.offset.reset`: Apache Kafka answers an out-of-range 0 with the reset policy (earliest),
/// and the test broker (Tansu) sometimes reports an earliest offset above the first record.
/// It also publishes the assignment's size to the task's status.
pub struct AssignFromZero(AssignedPartitions);

impl ClientContext for AssignFromZero {
    /// The lag of the partitions this consumer owns (`consumer_lag`, -1 while unknown).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        self.0.1.set(lag);
    }
}

impl ConsumerContext for AssignFromZero {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(10));
                let mut start = TopicPartitionList::new();
                for elem in tpl.elements() {
                    let offset = committed
                        .as_ref()
                        .ok()
                        .and_then(|c| c.find_partition(elem.topic(), elem.partition()))
                        .map(|e| e.offset())
                        .filter(|o| matches!(o, Offset::Offset(_)))
                        .unwrap_or(Offset::Offset(0));
                    let _ = start.add_partition_offset(elem.topic(), elem.partition(), offset);
                }
                tracing::info!(partitions = start.count(), "kafka partitions assigned");
                match consumer.assign(&start) {
                    Ok(()) => self.0.set(Some(start.count())),
                    Err(e) => tracing::error!("kafka assign failed: {e}"),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(partitions = tpl.count(), "kafka partitions revoked");
                self.0.set(None);
                let _ = consumer.unassign();
            }
            other => {
                tracing::error!("kafka rebalance error: {:?}", RDKafkaErrorCode::from(other));
                self.0.set(None);
                let _ = consumer.unassign();
            }
        }
    }
}

/// A librdkafka error as the guest sees it.
pub(super) fn kafka_err(e: KafkaError) -> String {
    format!("kafka: {e}")
}

impl Host for TaskState {}

impl TaskState {
    /// The rdkafka consumer behind a guest's handle.
    pub(super) fn consumer(
        &self,
        this: &Resource<KafkaConsumer>,
    ) -> Result<Arc<BaseConsumer<AssignFromZero>>, String> {
        let entry = self.table.get(this).map_err(|e| format!("kafka: {e}"))?;
        Ok(entry.inner.clone())
    }

    /// The shared producer behind a guest's handle.
    fn producer(&self, this: &Resource<KafkaProducer>) -> Result<Arc<SharedProducer>, String> {
        let entry = self.table.get(this).map_err(|e| format!("kafka: {e}"))?;
        Ok(entry.shared.clone())
    }
}

impl HostConsumer for TaskState {
    async fn open(
        &mut self,
        group: String,
        topics: Vec<String>,
        properties: Vec<(String, String)>,
    ) -> Result<Resource<KafkaConsumer>, String> {
        kafka_properties::check_group(&self.ids.connector, &group)?;
        let mut config = self.kafka.client_config(
            &[
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("enable.partition.eof", "false"),
                ("queued.min.messages", "100000"),
                // librdkafka's fetch queue, the bulk of a task's memory under traffic: 8 MiB
                // (its default is 64 MiB per consumer). Overridable per connector with
                // `kafka.client.queued.max.messages.kbytes`.
                ("queued.max.messages.kbytes", "8192"),
                ("fetch.queue.backoff.ms", "10"),
                // A subscribed topic created later (or grown) is seen within seconds, not at
                // librdkafka's default 5-minute refresh. One metadata request per 5 s.
                ("topic.metadata.refresh.interval.ms", "5000"),
                // Lag for `ferry_task_lag_records`.
                ("statistics.interval.ms", "5000"),
            ],
            &properties,
        )?;
        config.set("group.id", &group);
        let consumer: BaseConsumer<AssignFromZero> = config
            .create_with_context(AssignFromZero(self.assigned.clone()))
            .map_err(kafka_err)?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(kafka_err)?;
        tracing::info!(connector = %self.ids.connector, task = self.ids.task, group, ?topics, "kafka consumer subscribed");
        self.table
            .push(KafkaConsumer {
                inner: Arc::new(consumer),
            })
            .map_err(|e| format!("kafka: {e}"))
    }

    async fn poll(
        &mut self,
        this: Resource<KafkaConsumer>,
        max: u32,
        timeout_ms: u32,
    ) -> Result<Vec<RecordBatch>, String> {
        let polled = super::kafka_poll::poll(self.consumer(&this)?, max, timeout_ms).await?;
        Ok(polled.to_batches())
    }

    async fn commit(
        &mut self,
        this: Resource<KafkaConsumer>,
        offsets: Vec<PartitionOffset>,
    ) -> Result<(), String> {
        let consumer = self.consumer(&this)?;
        let mut tpl = TopicPartitionList::new();
        for o in &offsets {
            tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.offset))
                .map_err(kafka_err)?;
        }
        tokio::task::spawn_blocking(move || {
            consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        })
        .await
        .map_err(|e| format!("kafka: commit thread: {e}"))?
        .map_err(kafka_err)
    }

    async fn assignment(
        &mut self,
        this: Resource<KafkaConsumer>,
    ) -> Result<Vec<PartitionOffset>, String> {
        let consumer = self.consumer(&this)?;
        let tpl = consumer.assignment().map_err(kafka_err)?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| PartitionOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset: -1,
            })
            .collect())
    }

    async fn drop(&mut self, this: Resource<KafkaConsumer>) -> wasmtime::Result<()> {
        let consumer = self.table.delete(this)?;
        // Leaving the group blocks until the broker answers: do it off the executor.
        tokio::task::spawn_blocking(move || drop(consumer));
        Ok(())
    }
}

impl HostProducer for TaskState {
    async fn open(
        &mut self,
        properties: Vec<(String, String)>,
    ) -> Result<Resource<KafkaProducer>, String> {
        let config = self.kafka.client_config(
            &[
                ("enable.idempotence", "true"),
                // kafka-sink queues without waiting (`kafka-pipeline`), so lingering fills the
                // produce requests: at 10,000 rec/s R->K p99 was 40 ms with 5 and 119 ms with 1
                // (tiny requests queue behind the idempotent producer's 5 in flight), while a
                // `send` that waits for its reports was faster with 1 (BENCHMARKS.md).
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                ("queue.buffering.max.messages", "200000"),
                ("message.timeout.ms", "30000"),
            ],
            &properties,
        )?;
        let shared = SharedProducer::open(&self.ids.connector, config)?;
        self.table
            .push(KafkaProducer { shared })
            .map_err(|e| format!("kafka: {e}"))
    }

    async fn send(
        &mut self,
        this: Resource<KafkaProducer>,
        batches: Vec<RecordBatch>,
    ) -> Result<(), String> {
        let shared = self.producer(&this)?;
        let mut deliveries = Deliveries::default();
        if let Err(e) = queue_into(&shared, &batches, &mut deliveries).await {
            // Possibly the last handles on the replaced producer: closed off the executor.
            tokio::task::spawn_blocking(move || drop(deliveries));
            return Err(e);
        }
        deliveries.confirm().await
    }

    async fn drop(&mut self, this: Resource<KafkaProducer>) -> wasmtime::Result<()> {
        let producer = self.table.delete(this)?;
        tokio::task::spawn_blocking(move || drop(producer));
        Ok(())
    }
}

impl crate::wasm::bindings::kafka_pipeline::Host for TaskState {
    async fn queue(
        &mut self,
        this: Resource<KafkaProducer>,
        batches: Vec<RecordBatch>,
    ) -> Result<(), String> {
        let shared = self.producer(&this)?;
        queue_into(&shared, &batches, &mut self.deliveries).await
    }

    async fn flush(&mut self, _this: Resource<KafkaProducer>) -> Result<(), String> {
        std::mem::take(&mut self.deliveries).confirm().await
    }
}

/// Queues `batches` on `shared`'s current producer, their delivery reports into `deliveries`
/// (which holds the producer until they are in). A record the producer refuses replaces the
/// producer: the caller sends the records again.
async fn queue_into(
    shared: &Arc<SharedProducer>,
    batches: &[RecordBatch],
    deliveries: &mut Deliveries,
) -> Result<(), String> {
    let (generation, producer) = shared.current();
    let index = deliveries.holding(shared, generation, &producer);
    let queued = queue_all(&producer, index, batches, &mut deliveries.batches).await;
    if let Err(e) = &queued {
        warn_replacing(&producer, e);
        shared.replace(generation)?;
    }
    queued
}

/// After a failed send the caller sends the same records again, with a fresh producer: after an
/// outage an idempotent producer can be fenced or in a fatal state and never send again (Tansu
/// answers ProducerFenced after librdkafka bumps the epoch). The task's span names the
/// connector and task.
fn warn_replacing(producer: &FutureProducer, error: &str) {
    tracing::warn!(
        fatal = ?producer.client().fatal_error(),
        "kafka send failed ({error}); replacing the producer"
    );
}

/// Hands every record to `producer` (waiting only while its queue is full), adding one
/// [`QueuedBatch`] of delivery reports per batch to `queued`.
async fn queue_all(
    producer: &FutureProducer,
    index: usize,
    batches: &[RecordBatch],
    queued: &mut Vec<QueuedBatch>,
) -> Result<(), String> {
    for batch in batches {
        let mut reports = Vec::with_capacity(batch.messages.len());
        let mut failed = None;
        for m in &batch.messages {
            let mut headers = OwnedHeaders::new_with_capacity(m.headers.len());
            for (k, v) in &m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(&batch.topic)
                .payload(&m.value)
                .headers(headers);
            if let Some(k) = &m.key {
                record = record.key(k);
            }
            if m.timestamp_ms >= 0 {
                record = record.timestamp(m.timestamp_ms);
            }
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        reports.push((m.offset, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        failed = Some(format!("kafka: send to {} failed: {e}", batch.topic));
                        break;
                    }
                }
            }
            if failed.is_some() {
                break;
            }
        }
        queued.push(QueuedBatch {
            topic: batch.topic.clone(),
            producer: index,
            reports,
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

/// Waits for the delivery reports; the first failure names its record and the index of the
/// producer that failed it.
async fn reports(queued: Vec<QueuedBatch>) -> Result<(), (usize, String)> {
    for batch in queued {
        for (offset, delivery) in batch.reports {
            let failure = match delivery.await {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => format!(
                    "kafka: record {offset} to {} not delivered: {e}",
                    batch.topic
                ),
                Err(_) => format!("kafka: record {offset} to {}: producer closed", batch.topic),
            };
            return Err((batch.producer, failure));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(pairs: &[(&str, &str)]) -> KafkaGrant {
        KafkaGrant {
            bootstrap: Some("127.0.0.1:9".into()),
            properties: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[tokio::test]
    async fn tasks_of_a_connector_share_one_producer_per_config() {
        let config = |linger: &str| {
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", "127.0.0.1:9")
                .set("linger.ms", linger);
            c
        };
        let a = SharedProducer::open("share-a", config("5")).unwrap();
        let same = SharedProducer::open("share-a", config("5")).unwrap();
        let other_config = SharedProducer::open("share-a", config("6")).unwrap();
        let other_connector = SharedProducer::open("share-b", config("5")).unwrap();
        assert!(Arc::ptr_eq(&a, &same));
        assert!(!Arc::ptr_eq(&a, &other_config));
        assert!(!Arc::ptr_eq(&a, &other_connector));

        // A failure seen by two tasks replaces the producer once.
        let (generation, _) = a.current();
        a.replace(generation).unwrap();
        a.replace(generation).unwrap();
        assert_eq!(same.current().0, generation + 1);

        // The producer closes with the last handle; the next open makes a new one.
        let weak = Arc::downgrade(&a);
        drop((a, same));
        assert_eq!(weak.strong_count(), 0);
        let again = SharedProducer::open("share-a", config("5")).unwrap();
        assert_eq!(again.current().0, 0);
    }

    #[test]
    fn librdkafka_accepts_tls_and_sasl_scram() {
        // librdkafka is built with OpenSSL (`ssl-vendored`), so production security settings work.
        grant(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ])
        .validate()
        .unwrap();
        let err = grant(&[("security.protocol", "carrier-pigeon")])
            .validate()
            .unwrap_err();
        assert!(err.contains("security.protocol"), "{err}");
    }
}
