//! The native baseline: the fastest at-least-once copiers between Kafka and RocketMQ written
//! directly against the same two client crates (rdkafka, rocketmq-client-rust), independent of
//! Ferry's code paths: no `Hub`, no record conversion module, no task loops. Both pipeline:
//!
//! - Kafka -> RocketMQ: a thread polls Kafka and hands chunks to the async side, which groups
//!   records per RocketMQ queue (by key hash, so per-key order holds), sends batches of
//!   [`Tuning::batch`] records with up to [`Tuning::in_flight`] sends in flight per queue, and
//!   commits Kafka offsets every [`Tuning::commit_every`] up to the first record not yet
//!   acknowledged in each partition.
//! - RocketMQ -> Kafka: a lite-pull consumer's records go to an idempotent producer without
//!   waiting; up to [`Tuning::in_flight`] polls' delivery reports are outstanding, and RocketMQ
//!   offsets are committed, in poll order, every [`Tuning::commit_every`] after their reports.
//!
//! Each copies key, value, timestamp and headers, as Ferry does. Knobs come from the
//! environment (`FERRY_NATIVE_BATCH`, `FERRY_NATIVE_IN_FLIGHT`, `FERRY_NATIVE_COMMIT_MS`,
//! `FERRY_NATIVE_POLL`) so they
//! can be tuned without rebuilding; BENCHMARKS.md records what each choice measured.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cheetah_string::CheetahString;
use futures::FutureExt as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use rocketmq_client_rust::{ClientRuntime, DefaultLitePullConsumer, DefaultMQProducer};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message as MqMessage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// The copiers' knobs.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Records per RocketMQ batch send (Kafka -> RocketMQ).
    pub batch: usize,
    /// Sends in flight per RocketMQ queue (Kafka -> RocketMQ), or polls whose Kafka delivery
    /// reports may be outstanding (RocketMQ -> Kafka).
    pub in_flight: usize,
    /// How often offsets are committed.
    pub commit_every: Duration,
    /// Most records gathered from RocketMQ per poll (RocketMQ -> Kafka).
    pub poll_records: usize,
    /// The Kafka consumer's `fetch.wait.max.ms` (Kafka -> RocketMQ); `None` keeps
    /// librdkafka's 500 ms. The latency runs set the same 10 ms as Ferry's source there (Tansu
    /// holds every fetch for the whole wait, BENCHMARKS.md).
    pub fetch_wait_ms: Option<u32>,
}

impl Tuning {
    /// The measured best (BENCHMARKS.md), overridable from the environment.
    pub fn from_env() -> Self {
        let num = |key: &str, default: u64| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Tuning {
            batch: num("FERRY_NATIVE_BATCH", 256) as usize,
            in_flight: num("FERRY_NATIVE_IN_FLIGHT", 4) as usize,
            commit_every: Duration::from_millis(num("FERRY_NATIVE_COMMIT_MS", 200)),
            poll_records: num("FERRY_NATIVE_POLL", 4096) as usize,
            fetch_wait_ms: None,
        }
    }
}

/// Where the copiers connect.
#[derive(Clone)]
pub struct Brokers {
    /// The copiers' own RocketMQ client runtime.
    pub runtime: Arc<ClientRuntime>,
    /// RocketMQ name server.
    pub namesrv: String,
    /// Kafka bootstrap servers.
    pub kafka: String,
}

/// The record timestamp's RocketMQ property (the same name Ferry uses, so readers agree).
const TIMESTAMP_PROPERTY: &str = "FERRY_TS";

/// Kafka's offsets not yet acknowledged by RocketMQ, per partition.
#[derive(Default)]
struct Unacked {
    pending: HashMap<i32, BTreeSet<i64>>,
    /// The highest offset read per partition.
    seen: HashMap<i32, i64>,
    acked: u64,
}

impl Unacked {
    /// Per partition, the offset to commit: the first one not acknowledged, else one past the
    /// highest read.
    fn frontier(&self) -> Vec<(i32, i64)> {
        self.seen
            .iter()
            .map(|(p, seen)| {
                let first = self.pending.get(p).and_then(|s| s.first().copied());
                (*p, first.unwrap_or(seen + 1))
            })
            .collect()
    }
}

/// One Kafka record on its way to RocketMQ.
struct Polled {
    partition: i32,
    offset: i64,
    message: MqMessage,
    queue: usize,
}

/// Starts a RocketMQ producer and returns it with `topic`'s queues (created with 8 when missing).
async fn producer(
    runtime: Arc<ClientRuntime>,
    namesrv: &str,
    topic: &str,
) -> anyhow::Result<(DefaultMQProducer, Vec<MessageQueue>)> {
    let mut producer = DefaultMQProducer::builder(runtime)
        .producer_group(format!("native-{topic}"))
        .name_server_addr(namesrv.to_string())
        .send_msg_timeout(10_000)
        .build();
    producer.start().await?;
    let queues = match producer.fetch_publish_message_queues(topic).await {
        Ok(q) if !q.is_empty() => q,
        _ => {
            producer
                .create_topic("TBW102", topic, 8, HashMap::new())
                .await?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match producer.fetch_publish_message_queues(topic).await {
                    Ok(q) if !q.is_empty() => break q,
                    _ if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(200)).await
                    }
                    other => anyhow::bail!("no route for {topic}: {other:?}"),
                }
            }
        }
    };
    Ok((producer, queues))
}

/// FNV-1a, to pick a queue per key.
fn key_hash(key: &[u8]) -> u32 {
    key.iter().fold(0x811c9dc5u32, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x01000193)
    })
}

/// Copies `total` records of Kafka topic `from` (every partition from offset 0) to RocketMQ
/// topic `to`; returns the time from the first record read to the last acknowledged.
pub async fn kafka_to_rocketmq(
    brokers: &Brokers,
    from: &str,
    partitions: i32,
    to: &str,
    total: u64,
    tuning: Tuning,
) -> anyhow::Result<Duration> {
    let (producer, queues) = producer(brokers.runtime.clone(), &brokers.namesrv, to).await?;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &brokers.kafka)
        .set("group.id", format!("{to}-native"))
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "10");
    if let Some(ms) = tuning.fetch_wait_ms {
        config.set("fetch.wait.max.ms", ms.to_string());
    }
    let consumer: Arc<BaseConsumer> = Arc::new(config.create()?);
    let mut start = TopicPartitionList::new();
    for p in 0..partitions {
        start.add_partition_offset(from, p, Offset::Offset(0))?;
    }
    consumer.assign(&start)?;

    // Kafka is polled on a thread of its own; chunks of records cross a bounded channel.
    let (tx, mut rx) = mpsc::channel::<Vec<Polled>>(64);
    let started: Arc<Mutex<Option<Instant>>> = Arc::default();
    let unacked: Arc<Mutex<Unacked>> = Arc::default();
    let poller = {
        let (consumer, started, unacked) = (consumer.clone(), started.clone(), unacked.clone());
        let (to, nqueues) = (to.to_string(), queues.len());
        std::thread::spawn(move || {
            let mut read = 0u64;
            while read < total {
                let mut chunk = Vec::with_capacity(1024);
                while chunk.len() < 1024 {
                    let timeout = if chunk.is_empty() { 100 } else { 0 };
                    match consumer.poll(Duration::from_millis(timeout)) {
                        Some(Ok(m)) => {
                            started.lock().unwrap().get_or_insert_with(Instant::now);
                            let value = m.payload().unwrap_or_default();
                            let mut b = MqMessage::builder().topic(to.as_str()).body_slice(value);
                            let queue = match m.key() {
                                Some(k) => {
                                    if let Ok(text) = std::str::from_utf8(k) {
                                        b = b.key(text);
                                    }
                                    key_hash(k) as usize % nqueues
                                }
                                None => m.partition() as usize % nqueues,
                            };
                            let ts = m.timestamp().to_millis().unwrap_or(0).to_string();
                            b = b.raw_property(TIMESTAMP_PROPERTY, ts).expect("plain name");
                            if let Some(headers) = m.headers() {
                                for h in headers.iter() {
                                    let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                                    b = b.raw_property(h.key, v.into_owned()).expect("plain name");
                                }
                            }
                            chunk.push(Polled {
                                partition: m.partition(),
                                offset: m.offset(),
                                message: b.build_unchecked(),
                                queue,
                            });
                        }
                        _ => break,
                    }
                }
                if chunk.is_empty() {
                    continue;
                }
                read += chunk.len() as u64;
                {
                    let mut u = unacked.lock().unwrap();
                    for r in &chunk {
                        u.pending.entry(r.partition).or_default().insert(r.offset);
                        let seen = u.seen.entry(r.partition).or_insert(r.offset);
                        *seen = (*seen).max(r.offset);
                    }
                }
                if tx.blocking_send(chunk).is_err() {
                    return;
                }
            }
        })
    };

    // Commits the acknowledged frontier every `commit_every`.
    let committer = {
        let (consumer, unacked, from) = (consumer.clone(), unacked.clone(), from.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tuning.commit_every).await;
                let frontier = unacked.lock().unwrap().frontier();
                let mut list = TopicPartitionList::new();
                for (p, next) in frontier {
                    let _ = list.add_partition_offset(&from, p, Offset::Offset(next));
                }
                if list.count() > 0 {
                    let _ = consumer.commit(&list, CommitMode::Async);
                }
            }
        })
    };

    let permits: Vec<Arc<Semaphore>> = (0..queues.len())
        .map(|_| Arc::new(Semaphore::new(tuning.in_flight)))
        .collect();
    let mut buffers: Vec<Vec<(i32, i64, MqMessage)>> = vec![Vec::new(); queues.len()];
    let mut sends = futures::stream::FuturesUnordered::new();
    // Sends one batch with a permit already held; resolves to its queue.
    let send = |queue: usize, permit: OwnedSemaphorePermit, records: Vec<(i32, i64, MqMessage)>| {
        let (producer, mq, unacked) = (producer.clone(), queues[queue].clone(), unacked.clone());
        async move {
            let _permit = permit;
            let (offsets, messages): (Vec<(i32, i64)>, Vec<MqMessage>) =
                records.into_iter().map(|(p, o, m)| ((p, o), m)).unzip();
            loop {
                match producer
                    .send_batch_to_queue(messages.clone(), mq.clone())
                    .await
                {
                    Ok(r) if r.send_status == rocketmq_client_rust::SendStatus::SendOk => break,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            let mut u = unacked.lock().unwrap();
            for (p, o) in &offsets {
                if let Some(set) = u.pending.get_mut(p) {
                    set.remove(o);
                }
            }
            u.acked += offsets.len() as u64;
            anyhow::Ok(queue)
        }
    };
    // A queue's records go out as soon as it has a free send slot, up to `batch` per send;
    // while all its slots are busy they gather, so the next send carries them all (sending
    // each small chunk at once queued tiny sends behind the slots: 2 s of latency at 10,000
    // rec/s).
    macro_rules! flush {
        ($queue:expr) => {{
            let queue = $queue;
            while !buffers[queue].is_empty() {
                let Ok(permit) = permits[queue].clone().try_acquire_owned() else {
                    break;
                };
                let n = buffers[queue].len().min(tuning.batch);
                let records: Vec<_> = buffers[queue].drain(..n).collect();
                sends.push(send(queue, permit, records).boxed());
            }
        }};
    }
    // Stop reading while a queue has this many records waiting (the poller then blocks on the
    // channel, and librdkafka's fetch queue bounds the rest).
    let backlog_limit = tuning.batch * tuning.in_flight;
    let mut done = false;
    loop {
        let backlogged = buffers.iter().any(|b| b.len() >= backlog_limit);
        tokio::select! {
            chunk = rx.recv(), if !done && !backlogged => match chunk {
                Some(chunk) => {
                    for r in chunk {
                        buffers[r.queue].push((r.partition, r.offset, r.message));
                    }
                    for queue in 0..buffers.len() {
                        flush!(queue);
                    }
                }
                None => done = true,
            },
            Some(r) = futures::StreamExt::next(&mut sends) => flush!(r?),
            else => break,
        }
    }
    anyhow::ensure!(buffers.iter().all(Vec::is_empty), "records left unsent");
    let elapsed = started
        .lock()
        .unwrap()
        .map(|s| s.elapsed())
        .unwrap_or_default();
    let _ = poller.join();
    committer.abort();
    let frontier = unacked.lock().unwrap().frontier();
    let mut list = TopicPartitionList::new();
    for (p, next) in frontier {
        list.add_partition_offset(from, p, Offset::Offset(next))?;
    }
    consumer.commit(&list, CommitMode::Sync)?;
    anyhow::ensure!(
        unacked.lock().unwrap().acked >= total,
        "not every record was acknowledged"
    );
    Ok(elapsed)
}

/// Copies `total` records of RocketMQ topic `from` to Kafka topic `to`; returns the time from
/// the first record read to the last delivery report.
pub async fn rocketmq_to_kafka(
    brokers: &Brokers,
    from: &str,
    to: &str,
    total: u64,
    tuning: Tuning,
) -> anyhow::Result<Duration> {
    let consumer = DefaultLitePullConsumer::builder(brokers.runtime.clone())
        .consumer_group(format!("{to}-native"))
        .name_server_addr(brokers.namesrv.clone())
        .instance_name(format!("native-{to}"))
        .auto_commit(false)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .pull_batch_size(256)
        .build()?;
    consumer.subscribe(from).await?;
    consumer.start().await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers.kafka)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .create()?;
    // The idempotent producer's id before timing (it can take 500 ms on first use).
    producer
        .send(
            FutureRecord::<[u8], [u8]>::to(to).payload(b"warmup"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;

    type Offsets = HashMap<MessageQueue, i64>;
    let mut in_flight: VecDeque<(Vec<rdkafka::producer::DeliveryFuture>, Offsets)> =
        VecDeque::new();
    let mut ready: Offsets = HashMap::new();
    let mut last_commit = Instant::now();
    let (mut read, mut delivered, mut started) = (0u64, 0u64, None);
    while delivered < total {
        // Settle every poll whose reports are all in (in order), waiting when the pipeline is
        // full or everything was read.
        loop {
            let full = in_flight.len() >= tuning.in_flight || read >= total;
            let Some((reports, _)) = in_flight.front_mut() else {
                break;
            };
            let mut pending = Vec::new();
            for mut report in std::mem::take(reports) {
                match (&mut report).now_or_never() {
                    Some(r) => {
                        r?.map_err(|(e, _)| e)?;
                        delivered += 1;
                    }
                    None => pending.push(report),
                }
            }
            if !pending.is_empty() && full {
                for report in pending {
                    report.await?.map_err(|(e, _)| e)?;
                    delivered += 1;
                }
            } else if !pending.is_empty() {
                in_flight.front_mut().unwrap().0 = pending;
                break;
            }
            let (_, offsets) = in_flight.pop_front().unwrap();
            for (q, o) in offsets {
                let e = ready.entry(q).or_insert(o);
                *e = (*e).max(o);
            }
        }
        if !ready.is_empty() && (last_commit.elapsed() >= tuning.commit_every || delivered >= total)
        {
            consumer
                .commit_sync_with_map(std::mem::take(&mut ready), true)
                .await;
            last_commit = Instant::now();
        }
        if read >= total {
            continue;
        }
        let mut messages = consumer
            .poll_with_timeout(if in_flight.is_empty() { 200 } else { 5 })
            .await;
        // One lite-pull poll is one pull (tens of records): gather what is already fetched.
        while !messages.is_empty() && messages.len() < tuning.poll_records {
            let more = consumer.poll_with_timeout(1).await;
            if more.is_empty() {
                break;
            }
            messages.extend(more);
        }
        if messages.is_empty() {
            continue;
        }
        started.get_or_insert_with(Instant::now);
        let mut reports = Vec::with_capacity(messages.len());
        let mut offsets: Offsets = HashMap::new();
        for ext in &messages {
            let body = ext.body().map(|b| b.to_vec()).unwrap_or_default();
            let mut key = None;
            let mut headers = OwnedHeaders::new();
            let mut timestamp = None;
            for (name, value) in ext.properties() {
                if name.as_str() == "KEYS" {
                    key = Some(value.as_bytes());
                } else if name.as_str() == TIMESTAMP_PROPERTY {
                    timestamp = value.as_str().parse::<i64>().ok();
                } else if !matches!(name.as_str(), "KEYS" | "TAGS" | "WAIT" | "UNIQ_KEY") {
                    headers = headers.insert(Header {
                        key: name.as_str(),
                        value: Some(value.as_bytes()),
                    });
                }
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(to)
                .payload(&body)
                .headers(headers);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(ts) = timestamp {
                record = record.timestamp(ts);
            }
            loop {
                match producer.send_result(record) {
                    Ok(report) => {
                        reports.push(report);
                        break;
                    }
                    Err((_, back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            let queue = MessageQueue::from_parts(
                CheetahString::from_string(ext.topic().to_string()),
                CheetahString::from_string(ext.broker_name().to_string()),
                ext.queue_id(),
            );
            let e = offsets.entry(queue).or_insert(0);
            *e = (*e).max(ext.queue_offset() + 1);
        }
        read += messages.len() as u64;
        in_flight.push_back((reports, offsets));
    }
    let elapsed = started.map(|s: Instant| s.elapsed()).unwrap_or_default();
    if !ready.is_empty() {
        consumer.commit_sync_with_map(ready, true).await;
    }
    tokio::spawn(async move { consumer.shutdown().await });
    Ok(elapsed)
}
